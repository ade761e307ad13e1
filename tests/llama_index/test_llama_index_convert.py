"""Pure conversion of LlamaIndex messages/blocks/nodes to the core's messages (no network)."""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    CitableBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    VideoBlock,
)
from llama_index.core.schema import ImageDocument, ImageNode, TextNode
from PIL import Image

from janus_space import ImagesDroppedWarning, InvalidInputError, Message
from llama_index_janus._convert import (
    choose_image,
    image_block_to_input,
    image_documents_to_blocks,
    to_janus_message,
    to_janus_messages,
)


def _png(width: int, height: int, color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png(7, 5)


def test_text_blocks_are_joined_by_newlines() -> None:
    message = ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")])
    assert to_janus_message(message) == Message("user", "a\nb")


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (MessageRole.SYSTEM, "system"),
        (MessageRole.DEVELOPER, "system"),
        (MessageRole.USER, "user"),
        (MessageRole.ASSISTANT, "assistant"),
        (MessageRole.MODEL, "assistant"),
        (MessageRole.CHATBOT, "assistant"),
        (MessageRole.TOOL, "user"),
        (MessageRole.FUNCTION, "user"),
    ],
)
def test_roles(role: MessageRole, expected: str) -> None:
    assert to_janus_message(ChatMessage(role=role, content="x")).role == expected


def test_image_from_bytes_keeps_the_exact_bytes() -> None:
    message = ChatMessage(role="user", blocks=[ImageBlock(image=PNG), TextBlock(text="what?")])
    converted = to_janus_message(message)
    assert converted.text == "what?"
    assert converted.images == (PNG,)


def test_image_from_path(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(PNG)
    assert image_block_to_input(ImageBlock(path=path)) == PNG


def test_image_from_data_url() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert image_block_to_input(ImageBlock(url=url)) == PNG


def test_image_from_file_object() -> None:
    assert image_block_to_input(ImageBlock(image=io.BytesIO(PNG))) == PNG


def test_http_url_is_left_to_the_core() -> None:
    url = "https://example.org/cat.png"
    assert image_block_to_input(ImageBlock(url=url)) == url


def test_unreadable_image_is_an_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    path.write_bytes(PNG)
    block = ImageBlock(path=path)
    path.unlink()
    with pytest.raises(InvalidInputError, match=r"messages\[0\]\.blocks\[0\]"):
        to_janus_messages([ChatMessage(role="user", blocks=[block])])


@pytest.mark.parametrize(
    "block",
    [
        AudioBlock(audio=b"RIFF0000WAVE"),
        VideoBlock(video=b"\x00\x00\x00\x18ftypmp42"),
        DocumentBlock(data=b"%PDF-1.4 hello", document_mimetype="application/pdf"),
        ThinkingBlock(content="hmm"),
    ],
    ids=["audio", "video", "document", "thinking"],
)
def test_unsupported_blocks_raise(block: object) -> None:
    message = ChatMessage(role="user", blocks=[TextBlock(text="hi"), block])
    with pytest.raises(InvalidInputError, match=r"messages\[1\]\.blocks\[1\].*cannot be sent"):
        to_janus_messages([ChatMessage(role="system", content="s"), message])


def test_invalid_input_is_a_value_error() -> None:
    assert issubclass(InvalidInputError, ValueError)


def test_cache_point_carries_nothing_and_is_skipped() -> None:
    message = ChatMessage(
        role="user",
        blocks=[TextBlock(text="q"), CachePoint(cache_control=CacheControl(type="ephemeral"))],
    )
    assert to_janus_message(message) == Message("user", "q")


def test_citable_block_contents_are_sent() -> None:
    block = CitableBlock(
        title="t", source="s", content=[TextBlock(text="cited"), ImageBlock(image=PNG)]
    )
    converted = to_janus_message(ChatMessage(role="user", blocks=[block, TextBlock(text="q")]))
    assert converted.text == "cited\nq"
    assert converted.images == (PNG,)


def test_legacy_additional_kwargs_images_become_images() -> None:
    doc = ImageDocument(image=base64.b64encode(PNG).decode())
    message = ChatMessage(role="user", content="q", additional_kwargs={"images": [doc]})
    assert to_janus_message(message).images == (PNG,)


def test_conversation_order_is_kept() -> None:
    converted = to_janus_messages(
        [
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="user", content="hi"),
            ChatMessage(role="assistant", content="hello"),
            ChatMessage(role="user", content="bye"),
        ]
    )
    assert [(m.role, m.text) for m in converted] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "bye"),
    ]


def test_choose_image_single_image_is_untouched() -> None:
    messages = [Message("user", "q", (PNG,))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_image(messages, "latest") == (messages, 0)


def test_choose_image_latest_message_first_image() -> None:
    a, b, c = _png(1, 1), _png(2, 2), _png(3, 3)
    messages = [
        Message("user", "old", (a,)),
        Message("assistant", "ok"),
        Message("user", "q", (b, c)),
    ]
    with pytest.warns(ImagesDroppedWarning, match="dropping 2"):
        chosen, dropped = choose_image(messages, "latest")
    assert dropped == 2
    assert [m.images for m in chosen] == [(), (), (b,)]
    assert [m.text for m in chosen] == ["old", "ok", "q"]


def test_choose_image_error_policy() -> None:
    with pytest.raises(InvalidInputError, match="2 images"):
        choose_image([Message("user", "q", (PNG, PNG))], "error")


def test_image_documents_to_blocks() -> None:
    node = ImageNode(image=base64.b64encode(PNG).decode(), text="t")
    doc = ImageDocument(image=base64.b64encode(_png(2, 2)).decode())
    block = ImageBlock(image=_png(3, 3))
    blocks = image_documents_to_blocks([node, doc, block])
    assert [image_block_to_input(b) for b in blocks] == [PNG, _png(2, 2), _png(3, 3)]
    assert image_documents_to_blocks(None) == []


def test_image_documents_reject_text_nodes() -> None:
    with pytest.raises(InvalidInputError, match=r"image_documents\[0\] is a TextNode"):
        image_documents_to_blocks([TextNode(text="x")])  # type: ignore[list-item]
