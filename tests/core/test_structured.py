"""Prompted structured output, the neutral part: schema sketches, finding the JSON, the budget."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from janus_space import InvalidInputError
from janus_space.prompt import DEFAULT_TOKEN_BUDGET, estimate_tokens
from janus_space.structured import (
    MAX_PROBLEM_CHARS,
    AnswerProblem,
    answer_format,
    describe_validation_error,
    find_json_object,
)


class Item(BaseModel):
    name: str
    price: float = Field(description="in euros, tax included")


class Receipt(BaseModel):
    """A shop receipt."""

    merchant: str = Field(description="the shop's name as printed at the top")
    items: list[Item]
    total: float
    paid_by: Literal["cash", "card"] = "card"
    note: str | None = None


class Node(BaseModel):
    """A tree."""

    label: str
    children: list[Node] = []


RECEIPT = {"merchant": "Aldi Süd", "items": [{"name": "milk", "price": 1.19}], "total": 1.19}

# What small instruction-following models really answer, around the object asked for.
SHAPES = {
    "bare": json.dumps(RECEIPT),
    "fenced": f"```json\n{json.dumps(RECEIPT, indent=2)}\n```",
    "fenced without a language": f"```\n{json.dumps(RECEIPT)}\n```",
    "prose before": f"Sure! Here is the JSON you asked for:\n{json.dumps(RECEIPT)}",
    "prose after, with braces": f"{json.dumps(RECEIPT)}\n\nNote: the {{total}} was hard to read.",
    "prose around a fence": f"Here you go:\n```json\n{json.dumps(RECEIPT)}\n```\nAnything else?",
    "single quotes": repr(RECEIPT),
    "the form echoed first": (
        'Form: {"merchant": string, "total": number}\nAnswer: ' + json.dumps(RECEIPT)
    ),
    "a raw newline inside a string": json.dumps(RECEIPT, ensure_ascii=False).replace(
        " Süd", "\nSüd"
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_object_is_found_in_realistic_answers(shape: str) -> None:
    found = find_json_object(SHAPES[shape])
    expected = dict(RECEIPT, merchant="Aldi\nSüd") if "newline" in shape else RECEIPT
    assert found == expected
    assert Receipt.model_validate(found).items[0].name == "milk"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ('{"merchant": "Aldi", "items": [{"name": "milk", "pri', "cut off"),
        ('```json\n{"merchant": "Aldi", "total": 1', "cut off"),
        ('{"merchant": "Aldi", "note": "it was', "cut off"),
        ("The receipt is from Aldi and the total is 1.19 euros.", "no JSON object"),
        ('{"merchant": "Aldi", "total": one euro}', "not valid JSON"),
        # a broken outer object: the valid inner one is not taken for the answer
        ('{"items": [{"name": "milk", "price": 1.19}], "total": twelve}', "not valid JSON"),
        ("{'merchant': 'Aldi', 'total': true}", "not valid JSON"),  # mixed Python and JSON
    ],
)
def test_answers_without_a_usable_object_say_why(answer: str, problem: str) -> None:
    with pytest.raises(AnswerProblem, match=problem):
        find_json_object(answer)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
prose = st.text(
    st.characters(blacklist_characters="{}\"'`", blacklist_categories=("Cs",)), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(obj=objects, before=prose, after=st.text(max_size=40), fence=st.booleans())
def test_any_object_survives_prose_fences_and_trailing_text(
    obj: dict[str, Any], before: str, after: str, fence: bool
) -> None:
    body = json.dumps(obj, ensure_ascii=False)
    if fence:
        body = f"```json\n{body}\n```"
    assert find_json_object(f"{before}{body}{after}") == obj


@settings(max_examples=100, deadline=None)
@given(obj=objects, before=prose, after=prose)
def test_python_literals_are_read_too(obj: dict[str, Any], before: str, after: str) -> None:
    assert find_json_object(f"{before}{obj!r}{after}") == obj


def test_the_sketch_names_every_field_and_is_much_shorter_than_the_schema() -> None:
    schema = Receipt.model_json_schema()
    fmt = answer_format(schema)
    lines = fmt.instructions.splitlines()
    assert lines[0] == "Answer with only a JSON object and no other text."
    assert "The object: A shop receipt." in lines
    sketch = lines[lines.index("Its form, with a type in place of each value:") + 1]
    assert sketch == (
        '{"merchant": string, "items": [{"name": string, "price": number}, ...], '
        '"total": number, "paid_by": "cash" or "card" (optional), '
        '"note": string or null (optional)}'
    )
    assert "- merchant: the shop's name as printed at the top" in lines
    assert "- items[].price: in euros, tax included" in lines
    assert fmt.name == "schema 'Receipt'"
    full = estimate_tokens(json.dumps(schema))
    assert estimate_tokens(fmt.instructions) < full * 0.75


def test_recursive_and_odd_schemas_terminate() -> None:
    sketch = answer_format(Node.model_json_schema()).instructions
    assert '{"label": string, "children": [<same form as Node>, ...] (optional)}' in sketch
    itself = answer_format({"type": "object", "properties": {"next": {"$ref": "#"}}})
    assert '"next": <same form as the whole object> (optional)' in itself.instructions
    free = answer_format({"type": "object", "additionalProperties": {"type": "integer"}})
    assert "{string: integer, ...}" in free.instructions
    bare = answer_format(None)
    assert bare.instructions == "Answer with only a JSON object and no other text."


@pytest.mark.parametrize(
    "schema",
    [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
)
def test_only_object_schemas_are_accepted(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="JSON object"):
        answer_format(schema)


def test_a_dangling_ref_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="points nowhere"):
        answer_format({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}})


def test_the_repair_request_quotes_the_problem_within_bounds() -> None:
    fmt = answer_format(Receipt.model_json_schema())
    text = fmt.repair_request("total: Input should be a valid number.")
    assert text.startswith("Your previous answer could not be used: total: Input should be a")
    assert text.endswith(fmt.instructions)
    long = fmt.repair_request("x" * 5000)
    assert len(long) <= MAX_PROBLEM_CHARS + len(fmt.instructions) + 100


def test_the_budget_check_counts_system_question_and_repair_turn() -> None:
    fmt = answer_format(Receipt.model_json_schema())
    fmt.check_fits("Read this receipt.", ["You read receipts."])
    question = "Read this receipt."
    while estimate_tokens(fmt.add_to(question + " word" * 50)) <= DEFAULT_TOKEN_BUDGET:
        question += " word" * 50
    fmt.check_fits(question, repair=False)  # the largest question that still fits
    with pytest.raises(InvalidInputError, match="structured-output prompt for schema 'Receipt'"):
        fmt.check_fits(question + " word" * 50, repair=False)
    with pytest.raises(InvalidInputError, match="structured-output prompt"):
        fmt.check_fits("Read it.", [question])  # the system prompt is never trimmed either
    huge = {
        "title": "Huge",
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": "x" * 60} for i in range(200)
        },
    }
    with pytest.raises(InvalidInputError, match=r"schema's instructions alone about \d+"):
        answer_format(huge).check_fits("Fill it in.")


def test_validation_errors_become_one_short_line_each() -> None:
    with pytest.raises(ValidationError) as caught:
        Receipt.model_validate({"merchant": "Aldi", "items": [{"name": "milk"}], "total": "x"})
    text = describe_validation_error(caught.value)
    assert text == (
        "items.0.price: Field required; total: Input should be a valid number, unable to parse "
        'string as a number (got "x")'
    )
