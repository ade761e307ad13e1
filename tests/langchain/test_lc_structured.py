"""ChatJanus.with_structured_output: prompted, parsed tolerantly, validated, one repair round.

The replica's stand-in cannot follow instructions, so every JSON answer here is scripted with
``reply_marker`` (the stand-in answers the text the test chose instead of its report). The
transport, the prompt that reached the Space, the parsing, the validation and the repair round
are real; ``{{report}}`` inside a scripted answer is replaced by the stand-in's report, so the
parsed object itself says what the Space received. Nothing here says Janus-Pro writes good
JSON: that was not measured.
"""

from __future__ import annotations

from typing import Any

import pytest
from cassette_support import CassetteSession
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from lc_support import SAMPLE_B64
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from janus_space import InvalidInputError
from janus_space.replica import parse_understanding_report, reply_marker
from langchain_janus import ChatJanus

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a test using it proves no request was made


class Item(BaseModel):
    name: str
    price: float = Field(description="in euros")


class Receipt(BaseModel):
    """A shop receipt."""

    merchant: str = Field(description="the shop's name")
    items: list[Item]
    total: float
    replica_report: str = ""


INSTRUCTIONS = (
    "Answer with only a JSON object and no other text.\n"
    "The object: A shop receipt.\n"
    "Its form, with a type in place of each value:\n"
    '{"merchant": string, "items": [{"name": string, "price": number}, ...], "total": number, '
    '"replica_report": string (optional)}\n'
    "Fields:\n"
    "- merchant: the shop's name\n"
    "- items[].price: in euros"
)
GOOD = (
    "Here is the receipt as JSON:\n```json\n"
    '{"merchant": "Aldi", "items": [{"name": "milk", "price": 1.19}], "total": 1.19, '
    '"replica_report": {{report}}}\n```\nLet me know if you need anything else.'
)
BAD_TOTAL = '{"merchant": "Aldi", "items": [{"name": "milk", "price": 1.19}], "total": "one"}'
TRUNCATED = '{"merchant": "Aldi", "items": [{"name": "milk", "price": 1.1'
PROBLEM = 'total: Input should be a valid number, unable to parse string as a number (got "one")'

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You read shop receipts."),
        (
            "human",
            [
                {"type": "text", "text": "{question}"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,{image}"}},
            ],
        ),
    ]
)


class ModelCalls(BaseCallbackHandler):
    """The conversations the chain sent to the chat model: one per request to the Space."""

    def __init__(self) -> None:
        self.sent: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.sent.append(list(messages[0]))


def space_jobs(cassette: CassetteSession | None) -> int | None:
    """Jobs the Space was asked to run, from the cassette (replay and record tiers)."""
    if cassette is None:
        return None
    return sum(1 for request in cassette.cassette.requests if "/queue/join" in request.path)


def check_jobs(cassette: CassetteSession | None, expected: int) -> None:
    jobs = space_jobs(cassette)
    assert jobs in (None, expected)
    if cassette is not None and cassette.cassette.record_mode == "none":  # replaying
        assert cassette.all_played


def inputs(*replies: str) -> dict[str, str]:
    return {"question": "Read this receipt. " + reply_marker(*replies), "image": SAMPLE_B64}


def test_the_extraction_chain_reads_a_receipt_in_one_request(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt)
        receipt = chain.invoke(inputs(GOOD), config={"callbacks": [calls]})
    assert isinstance(receipt, Receipt)
    assert (receipt.merchant, receipt.total, receipt.items[0].name) == ("Aldi", 1.19, "milk")
    assert len(calls.sent) == 1
    check_jobs(space_cassette, 1)
    report = parse_understanding_report(receipt.replica_report)
    assert (report.width, report.height) == (160, 120)  # the image went with the question
    marker = reply_marker(GOOD)
    assert report.question == (
        f"You read shop receipts.\n\nRead this receipt. {marker}\n\n{INSTRUCTIONS}"
    )


def test_an_invalid_answer_gets_one_repair_round_with_the_same_image(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt)
        receipt = chain.invoke(inputs(BAD_TOTAL, GOOD), config={"callbacks": [calls]})
    assert receipt.total == 1.19
    assert len(calls.sent) == 2
    check_jobs(space_cassette, 2)
    first, second = calls.sent
    original = PROMPT.invoke(inputs(BAD_TOTAL, GOOD)).to_messages()
    assert first[0] == original[0] and first[1].text.endswith(INSTRUCTIONS)
    assert second[:2] == original  # the original messages again, image included
    assert [b["type"] for b in second[1].content_blocks] == ["text", "image"]
    assert isinstance(second[2], AIMessage) and second[2].text == BAD_TOTAL
    repair = f"Your previous answer could not be used: {PROBLEM}. Answer the question above again."
    assert second[3].text == f"{repair}\n{INSTRUCTIONS}"
    report = parse_understanding_report(receipt.replica_report)  # what the second request sent
    assert (report.width, report.height) == (160, 120)
    marker = reply_marker(BAD_TOTAL, GOOD)
    assert report.question == (
        "You read shop receipts.\n\nEarlier conversation:\n"
        f"User: Read this receipt. {marker}\nAssistant: {BAD_TOTAL}\n\n"
        f"{repair}\n{INSTRUCTIONS}"
    )


def test_two_bad_answers_raise_after_two_requests(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt)
        with pytest.raises(OutputParserException) as caught:
            chain.invoke(inputs(BAD_TOTAL), config={"callbacks": [calls]})
    assert len(calls.sent) == 2
    check_jobs(space_cassette, 2)
    assert str(caught.value).startswith(
        f"Janus's answer does not match schema 'Receipt' after one repair round: {PROBLEM}"
    )
    assert caught.value.llm_output == BAD_TOTAL


def test_include_raw_reports_instead_of_raising(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt, include_raw=True)
        good = chain.invoke(inputs(GOOD), config={"callbacks": [calls]})
        bad = chain.invoke(
            inputs(TRUNCATED, "Sorry, no JSON today."), config={"callbacks": [calls]}
        )
    assert set(good) == {"raw", "parsed", "parsing_error"}
    assert good["parsing_error"] is None and isinstance(good["parsed"], Receipt)
    assert isinstance(good["raw"], AIMessage) and good["raw"].text.startswith("Here is the")
    assert bad["parsed"] is None and bad["raw"].text == "Sorry, no JSON today."
    assert isinstance(bad["parsing_error"], OutputParserException)
    assert "holds no JSON object" in str(bad["parsing_error"])
    assert len(calls.sent) == 3  # one for the good answer, two for the bad one
    check_jobs(space_cassette, 3)
    repair_turn = calls.sent[2][-1].text
    assert repair_turn.startswith(
        "Your previous answer could not be used: the JSON object is cut off before its end"
    )


def test_repair_false_makes_exactly_one_request(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt, repair=False)
        with pytest.raises(OutputParserException, match=r"\(no repair round\)"):
            chain.invoke(inputs(BAD_TOTAL, GOOD), config={"callbacks": [calls]})
    assert len(calls.sent) == 1
    check_jobs(space_cassette, 1)


class Count(TypedDict):
    """How many of a thing the picture shows."""

    thing: str
    count: int


async def test_async_typed_dict_and_json_schema_dict(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    schema = {
        "title": "Colour",
        "type": "object",
        "properties": {"name": {"type": "string"}, "rgb": {"type": "array", "maxItems": 3}},
        "required": ["name", "rgb"],
    }
    async with ChatJanus(base_url=space_url) as llm:
        counted = await llm.with_structured_output(Count).ainvoke(
            "How many circles? " + reply_marker("{'thing': 'circle', 'count': '3'}"),
            config={"callbacks": [calls]},
        )
        colour = await llm.with_structured_output(schema).ainvoke(
            [
                HumanMessage(
                    [
                        {"type": "text", "text": "Which colour? "},
                        {"type": "image", "base64": SAMPLE_B64, "mime_type": "image/png"},
                        {
                            "type": "text",
                            "text": reply_marker(
                                '{"name": "teal", "rgb": [0, 128, 128, 0]}',
                                'Sure: {"name": "teal", "rgb": [0, 128, 128]}',
                            ),
                        },
                    ]
                )
            ],
            config={"callbacks": [calls]},
        )
    assert counted == {"thing": "circle", "count": 3}  # single quotes read, "3" coerced
    assert colour == {"name": "teal", "rgb": [0, 128, 128]}
    assert len(calls.sent) == 3
    check_jobs(space_cassette, 3)
    assert calls.sent[2][-1].text.startswith(
        "Your previous answer could not be used: rgb: [0, 128, 128, 0] is too long"
    )


def test_json_mode_without_a_schema_returns_the_object(
    space_url: str, space_cassette: CassetteSession | None
) -> None:
    calls = ModelCalls()
    reply = 'I think {"animal": "cat", "legs": 4} is right (it has {many} whiskers).'
    with ChatJanus(base_url=space_url) as llm:
        chain = llm.with_structured_output(method="json_mode")
        value = chain.invoke(
            [SystemMessage("Be brief."), HumanMessage("Describe it. " + reply_marker(reply))],
            config={"callbacks": [calls]},
        )
    assert value == {"animal": "cat", "legs": 4}
    assert calls.sent[0][-1].text.endswith("\n\nAnswer with only a JSON object and no other text.")
    check_jobs(space_cassette, 1)


# -- bad input: clear errors before any request (NOWHERE has no server) --------------------------


def test_a_schema_too_large_for_the_context_fails_before_any_request() -> None:
    fields = {f"field_{n}": (str, Field(description="a long description " * 4)) for n in range(150)}
    from pydantic import create_model

    huge = create_model("Huge", **fields)  # type: ignore[call-overload]
    with ChatJanus(base_url=NOWHERE) as llm:
        chain = llm.with_structured_output(huge)
        with pytest.raises(
            InvalidInputError, match=r"needs about \d+ tokens.*use a smaller schema"
        ):
            chain.invoke("Fill it in.")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"schema": Receipt, "method": "function_calling"}, "no function calling"),
        ({"schema": Receipt, "method": "xml"}, "method must be"),
        ({"schema": Receipt, "tools": []}, r"unsupported arguments \['tools'\]"),
        ({"schema": None}, "needs a schema"),
        ({"schema": 42}, "schema must be a pydantic model"),
        ({"schema": {"type": "array"}}, "a schema for a JSON object"),
        ({"schema": {"type": "object", "properties": {"a": {"type": 12}}}}, "not valid"),
    ],
)
def test_unusable_arguments_are_refused_at_once(kwargs: dict[str, Any], problem: str) -> None:
    with ChatJanus(base_url=NOWHERE) as llm, pytest.raises(InvalidInputError, match=problem):
        llm.with_structured_output(**kwargs)


def test_the_image_model_and_a_last_assistant_message_are_refused() -> None:
    drawer = ChatJanus(base_url=NOWHERE, model="janus-pro-7b-image")
    with drawer, pytest.raises(InvalidInputError, match="draws images"):
        drawer.with_structured_output(Receipt)
    with ChatJanus(base_url=NOWHERE) as llm:
        chain = llm.with_structured_output(Receipt)
        with pytest.raises(InvalidInputError, match="last message must come from the user"):
            chain.invoke([HumanMessage("Read it."), AIMessage("Sure.")])


def test_strict_takes_only_booleans() -> None:
    with ChatJanus(base_url=NOWHERE) as llm:
        for strict in (None, False, True):  # every answer is validated whatever its value
            llm.with_structured_output(Receipt, strict=strict)
        with pytest.raises(InvalidInputError, match="strict must be"):
            llm.with_structured_output(Receipt, strict="yes")  # type: ignore[arg-type]


async def test_the_repair_request_is_traced_as_its_own_tagged_model_run(space_url: str) -> None:
    async with ChatJanus(base_url=space_url) as llm:
        chain = PROMPT | llm.with_structured_output(Receipt)
        events = [e async for e in chain.astream_events(inputs(BAD_TOTAL, GOOD), version="v2")]
    starts = [e for e in events if e["event"] == "on_chat_model_start"]
    assert len(starts) == 2
    assert "janus:structured-output-repair" not in starts[0]["tags"]
    assert "janus:structured-output-repair" in starts[1]["tags"]
    (end,) = [e for e in events if e["event"] == "on_chain_end" and not e["parent_ids"]]
    assert isinstance(end["data"]["output"], Receipt)
