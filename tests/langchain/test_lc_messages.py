"""Pure conversion of LangChain messages and content blocks to the core's messages (no network)."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from PIL import Image

from janus_space import InvalidInputError, Message, flatten_conversation
from langchain_janus._messages import generation_prompt, to_janus_message, to_janus_messages


def _png(width: int = 7, height: int = 5, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
B64 = base64.b64encode(PNG).decode()
URL = "https://example.com/cat.png"


def _human(*blocks: Any) -> HumanMessage:
    return HumanMessage(content=[{"type": "text", "text": "what is this?"}, *blocks])


# --- every image form LangChain users send -----------------------------------------------------

IMAGE_FORMS = {
    "openai-data-uri": {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}},
    "v1-base64": {"type": "image", "base64": B64, "mime_type": "image/png"},
    "legacy-source-type": {
        "type": "image",
        "source_type": "base64",
        "data": B64,
        "mime_type": "image/png",
    },
    "anthropic-source": {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": B64},
    },
}


@pytest.mark.parametrize("form", sorted(IMAGE_FORMS))
def test_inline_image_forms_become_the_image_bytes(form: str) -> None:
    converted = to_janus_message(_human(IMAGE_FORMS[form]))
    assert converted == Message("user", "what is this?", (PNG,))


URL_FORMS = {
    "openai-url": {"type": "image_url", "image_url": {"url": URL}},
    "openai-bare-string": {"type": "image_url", "image_url": URL},
    "v1-url": {"type": "image", "url": URL},
    "legacy-url": {"type": "image", "source_type": "url", "url": URL},
}


@pytest.mark.parametrize("form", sorted(URL_FORMS))
def test_url_image_forms_are_left_for_the_core_to_fetch(form: str) -> None:
    assert to_janus_message(_human(URL_FORMS[form])).images == (URL,)


def test_a_data_uri_in_a_v1_url_is_passed_through() -> None:
    uri = f"data:image/png;base64,{B64}"
    assert to_janus_message(_human({"type": "image", "url": uri})).images == (uri,)


@pytest.mark.parametrize("url", ["/etc/passwd", "file:///etc/passwd", "gs://bucket/cat.png"])
def test_image_urls_that_would_read_local_files_or_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match=r"messages\[0\]\.content\[1\].*not supported"):
        to_janus_messages([_human({"type": "image", "url": url})])


def test_invalid_base64_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="base64 data is invalid"):
        to_janus_message(
            _human({"type": "image", "base64": "not base64!", "mime_type": "image/png"})
        )


def test_provider_file_ids_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="file_id"):
        to_janus_message(_human({"type": "image", "file_id": "file-123"}))


# --- unsupported blocks raise, naming the block -------------------------------------------------

UNSUPPORTED = {
    "v1-audio": ({"type": "audio", "base64": B64, "mime_type": "audio/wav"}, "'audio'"),
    "openai-audio": (
        {"type": "input_audio", "input_audio": {"data": B64, "format": "wav"}},
        "'audio'",
    ),
    "v1-file": ({"type": "file", "base64": B64, "mime_type": "application/pdf"}, "'file'"),
    "openai-file": (
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{B64}"},
        },
        "'file'",
    ),
    "video": ({"type": "video", "url": "https://example.com/v.mp4"}, "'video'"),
    "text-plain": ({"type": "text-plain", "text": "x", "mime_type": "text/plain"}, "'text-plain'"),
    "anthropic-tool-result": (
        {"type": "tool_result", "tool_use_id": "1", "content": "green"},
        "'tool_result'",
    ),
    "made-up": ({"type": "hologram", "data": 1}, "'hologram'"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_blocks_raise_naming_the_block(name: str) -> None:
    block, kind = UNSUPPORTED[name]
    with pytest.raises(InvalidInputError, match=r"messages\[1\]\.content\[1\].*" + kind):
        to_janus_messages([SystemMessage("be brief"), _human(block)])


# --- roles, history, tools ---------------------------------------------------------------------


def test_roles_and_order_are_kept() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("be brief"),
        HumanMessage("hi"),
        AIMessage("hello"),
        ChatMessage(role="developer", content="no emojis"),
        ChatMessage(role="user", content="and now?"),
    ]
    assert to_janus_messages(messages) == [
        Message("system", "be brief"),
        Message("user", "hi"),
        Message("assistant", "hello"),
        Message("system", "no emojis"),
        Message("user", "and now?"),
    ]


def test_unknown_chat_message_roles_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="role 'narrator'"):
        to_janus_message(ChatMessage(role="narrator", content="once upon a time"))


def test_other_message_types_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="RemoveMessage"):
        to_janus_message(RemoveMessage(id="1"))


def test_text_blocks_and_strings_in_a_list_are_joined_by_newlines() -> None:
    message = HumanMessage(content=["first", {"type": "text", "text": "second"}])
    assert to_janus_message(message).text == "first\nsecond"


def test_an_image_in_an_earlier_turn_stays_with_its_message() -> None:
    messages = [
        _human(IMAGE_FORMS["v1-base64"]),
        AIMessage("A red square."),
        HumanMessage("What colour was it again?"),
    ]
    converted = to_janus_messages(messages)
    assert [m.images for m in converted] == [(PNG,), (), ()]
    prepared = flatten_conversation(converted)
    assert prepared.image == PNG
    assert prepared.question.endswith("What colour was it again?")
    assert "Assistant: A red square." in prepared.question


def test_tool_calls_and_tool_results_become_text_turns() -> None:
    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "fox"}, "id": "c1"}])
    result = ToolMessage("a small canid", tool_call_id="c1", name="lookup")
    failed = ToolMessage("boom", tool_call_id="c2", status="error")
    assert to_janus_messages([call, result, failed]) == [
        Message("assistant", '[called tool lookup with {"q": "fox"}]'),
        Message("user", "[result of tool lookup]\na small canid"),
        Message("user", "[result of tool c2 (error)]\nboom"),
    ]


def test_images_in_tool_results_are_kept() -> None:
    result = ToolMessage(content=[IMAGE_FORMS["openai-data-uri"]], tool_call_id="c1", name="camera")
    assert to_janus_message(result) == Message("user", "[result of tool camera]", (PNG,))


def test_reasoning_of_earlier_assistant_turns_is_not_replayed() -> None:
    thinking = AIMessage(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "reasoning", "reasoning": "more"},
            {"type": "text", "text": "Hello!"},
        ]
    )
    assert to_janus_message(thinking) == Message("assistant", "Hello!")


def test_reasoning_sent_by_the_user_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="'reasoning'"):
        to_janus_message(HumanMessage([{"type": "reasoning", "reasoning": "x"}]))


def test_names_on_messages_are_ignored() -> None:
    assert to_janus_message(HumanMessage("hello", name="example_user")) == Message("user", "hello")


def test_empty_conversations_are_refused_before_anything_else() -> None:
    with pytest.raises(InvalidInputError, match="no messages"):
        to_janus_messages([])


# --- the image-generation prompt ---------------------------------------------------------------


def test_generation_prompt_is_system_text_plus_the_last_user_message() -> None:
    messages = [
        SystemMessage("watercolour style"),
        HumanMessage("a cat"),
        AIMessage("Generated 5 images"),
        HumanMessage("a red fox in snow"),
    ]
    assert generation_prompt(messages) == "watercolour style\na red fox in snow"


def test_generation_refuses_images_and_non_user_endings() -> None:
    with pytest.raises(InvalidInputError, match="text prompt only"):
        generation_prompt([_human(IMAGE_FORMS["v1-base64"])])
    with pytest.raises(InvalidInputError, match="last message must come from the user"):
        generation_prompt([HumanMessage("a cat"), AIMessage("done")])
    with pytest.raises(InvalidInputError, match="needs a prompt"):
        generation_prompt([SystemMessage("style"), HumanMessage("  ")])
