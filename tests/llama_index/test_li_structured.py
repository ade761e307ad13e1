"""JanusPro.structured_predict and friends: prompted, parsed tolerantly, validated, one repair.

Every JSON answer is scripted with the replica's ``reply_marker`` (its stand-in cannot follow
instructions); the transport, the prompt that reached the Space, the parsing, the validation
and the repair round are real, and ``{{report}}`` in a scripted answer carries the stand-in's
report of what it received. Nothing here says Janus-Pro writes good JSON.
"""

from __future__ import annotations

import json

import pytest
from li_support import EventRecorder, make_png
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.instrumentation.events.llm import (
    LLMChatStartEvent,
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.output_parsers.base import OutputParserException
from llama_index.core.output_parsers.pydantic import PydanticOutputParser
from llama_index.core.prompts import ChatPromptTemplate, PromptTemplate
from pydantic import BaseModel, Field

from janus_space import InvalidInputError
from janus_space.replica import parse_understanding_report, reply_marker
from llama_index_janus import JanusOutputParser, JanusPro

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
    'Sure! {"merchant": "Aldi", "items": [{"name": "milk", "price": 1.19}], "total": 1.19, '
    '"replica_report": {{report}}} (prices read from the {bottom} line)'
)
BAD = "{'merchant': 'Aldi', 'items': [{'name': 'milk'}], 'total': 1.19}"
PROBLEM = "items.0.price: Field required"
PICTURE = make_png(120, 90, "white")
PROMPT = ChatPromptTemplate(
    message_templates=[
        ChatMessage(role=MessageRole.SYSTEM, content="You read shop receipts."),
        ChatMessage(
            role=MessageRole.USER,
            blocks=[
                ImageBlock(image=PICTURE, image_mimetype="image/png"),
                TextBlock(text="Read the receipt from {shop}. {marker}"),
            ],
        ),
    ]
)


def chat_starts(events: EventRecorder) -> list[LLMChatStartEvent]:
    """One per chat call JanusPro made, i.e. per request to the Space (a StructuredLLM
    wrapping it reports its own chat start too)."""
    starts: list[LLMChatStartEvent] = events.of(LLMChatStartEvent)
    return [e for e in starts if e.model_dict.get("class_name") == JanusPro.class_name()]


def test_structured_predict_reads_a_receipt_from_an_image_in_one_request(
    llm: JanusPro, events: EventRecorder
) -> None:
    receipt = llm.structured_predict(Receipt, PROMPT, shop="Aldi", marker=reply_marker(GOOD))
    assert (receipt.merchant, receipt.items[0].price, receipt.total) == ("Aldi", 1.19, 1.19)
    assert len(chat_starts(events)) == 1
    assert len(events.of(LLMStructuredPredictStartEvent)) == 1
    assert [e.output for e in events.of(LLMStructuredPredictEndEvent)] == [receipt]
    report = parse_understanding_report(receipt.replica_report)
    assert (report.width, report.height) == (120, 90)
    assert report.question == (
        "You read shop receipts.\n\n"
        f"Read the receipt from Aldi. {reply_marker(GOOD)}\n\n{INSTRUCTIONS}"
    )
    # the template keeps no parser and its blocks were not changed
    assert PROMPT.output_parser is None
    assert PROMPT.message_templates[1].blocks[1].text == "Read the receipt from {shop}. {marker}"


def test_an_invalid_answer_gets_one_repair_round_with_the_same_image(
    llm: JanusPro, events: EventRecorder
) -> None:
    receipt = llm.structured_predict(Receipt, PROMPT, shop="Aldi", marker=reply_marker(BAD, GOOD))
    assert receipt.total == 1.19
    first, second = chat_starts(events)
    assert len(second.messages) == len(first.messages) + 2
    assert second.messages[-2].role == MessageRole.ASSISTANT and second.messages[-2].content == BAD
    repair = f"Your previous answer could not be used: {PROBLEM}. Answer the question above again."
    assert second.messages[-1].content == f"{repair}\n{INSTRUCTIONS}"
    report = parse_understanding_report(receipt.replica_report)  # what the second request sent
    assert (report.width, report.height) == (120, 90)
    assert report.question == (
        "You read shop receipts.\n\nEarlier conversation:\n"
        f"User: Read the receipt from Aldi. {reply_marker(BAD, GOOD)}\nAssistant: {BAD}\n\n"
        f"{repair}\n{INSTRUCTIONS}"
    )


async def test_two_bad_answers_raise_after_two_requests(
    llm: JanusPro, events: EventRecorder
) -> None:
    with pytest.raises(OutputParserException) as caught:
        await llm.astructured_predict(Receipt, PROMPT, shop="Aldi", marker=reply_marker(BAD))
    assert len(chat_starts(events)) == 2
    assert str(caught.value).startswith(
        f"Janus's answer does not match schema 'Receipt' after one repair round: {PROBLEM}"
    )
    assert repr(BAD) in str(caught.value)


async def test_as_structured_llm_chats_with_image_messages(
    llm: JanusPro, events: EventRecorder
) -> None:
    structured = llm.as_structured_llm(Receipt)
    messages = PROMPT.format_messages(shop="Lidl", marker=reply_marker(GOOD))
    response = await structured.achat(messages)
    assert isinstance(response.raw, Receipt) and response.raw.merchant == "Aldi"
    assert json.loads(response.message.content or "")["total"] == 1.19
    assert len(chat_starts(events)) == 1
    report = parse_understanding_report(response.raw.replica_report)
    assert (report.width, report.height) == (120, 90)
    assert "Read the receipt from Lidl." in report.question and INSTRUCTIONS in report.question


def test_streaming_and_plain_text_prompts(llm: JanusPro, events: EventRecorder) -> None:
    prompt = PromptTemplate("Describe {thing}. {marker}")
    streamed = list(
        llm.stream_structured_predict(Receipt, prompt, thing="it", marker=reply_marker(GOOD))
    )
    assert [type(s) for s in streamed] == [Receipt]  # Janus answers in one piece
    report = parse_understanding_report(streamed[0].replica_report)
    assert (report.width, report.height) == (384, 384)  # no image: the placeholder
    assert report.question == f"Describe it. {reply_marker(GOOD)}\n\n{INSTRUCTIONS}"
    assert len(chat_starts(events)) == 1


# -- parsing: what LlamaIndex's stock parser misses ---------------------------------------------

RECEIPT = {"merchant": "Aldi", "items": [{"name": "milk", "price": 1.19}], "total": 1.19}
SHAPES = {
    "fenced": f"```json\n{json.dumps(RECEIPT)}\n```",
    "prose before": f"Here it is: {json.dumps(RECEIPT)}",
    "prose after, with braces": f"{json.dumps(RECEIPT)} (the {{total}} was faint)",
    "single quotes": repr(RECEIPT),
    "the form echoed first": 'Form: {"merchant": string}. Answer: ' + json.dumps(RECEIPT),
}
STOCK_FAILS = {"prose after, with braces", "single quotes", "the form echoed first"}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_janus_parser_reads_shapes_the_stock_parser_misses(shape: str) -> None:
    assert JanusOutputParser(Receipt).parse(SHAPES[shape]) == Receipt.model_validate(RECEIPT)
    stock = PydanticOutputParser(Receipt)
    if shape in STOCK_FAILS:
        with pytest.raises(ValueError):
            stock.parse(SHAPES[shape])
    else:
        assert stock.parse(SHAPES[shape]) == Receipt.model_validate(RECEIPT)


def test_a_cut_off_answer_is_reported_not_completed() -> None:
    with pytest.raises(OutputParserException, match="cut off before its end"):
        JanusOutputParser(Receipt).parse('{"merchant": "Aldi", "items": [{"name": "mi')


def test_the_parser_formats_after_the_last_user_text_without_touching_the_messages() -> None:
    parser = JanusOutputParser(Receipt)
    messages = PROMPT.format_messages(shop="Aldi", marker="")
    formatted = parser.format_messages(messages)
    assert [m.role for m in formatted] == [MessageRole.SYSTEM, MessageRole.USER]
    assert formatted[0].content == "You read shop receipts."  # not in the system message
    assert formatted[1].blocks[-1].text == "\n" + INSTRUCTIONS  # type: ignore[union-attr]
    assert len(messages[1].blocks) == 2  # the caller's message is unchanged
    assert parser.format("Read it.") == f"Read it.\n\n{INSTRUCTIONS}"
    assert "{{" in parser.get_format_string() and "{{" not in parser.get_format_string(False)


# -- bad input: clear errors before any request -------------------------------------------------


async def test_a_schema_too_large_for_the_context_fails_before_any_request() -> None:
    from pydantic import create_model

    fields = {f"field_{n}": (str, Field(description="a long description " * 4)) for n in range(150)}
    huge = create_model("Huge", **fields)  # type: ignore[call-overload]
    llm = JanusPro(base_url=NOWHERE)
    with pytest.raises(InvalidInputError, match=r"needs about \d+ tokens.*use a smaller schema"):
        llm.structured_predict(huge, PromptTemplate("Fill it in."))
    with pytest.raises(InvalidInputError, match="last message must come from the user"):
        await llm.astructured_predict(
            Receipt,
            ChatPromptTemplate(
                message_templates=[ChatMessage(role=MessageRole.ASSISTANT, content="Hi.")]
            ),
        )
    await llm.aclose()
    llm.close()
