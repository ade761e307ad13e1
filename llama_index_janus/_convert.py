"""LlamaIndex messages, blocks and image nodes → ``janus_space.Message`` (pure, no network).

The core flattens a conversation into the Space's single question; this module only maps
LlamaIndex's types onto the core's ``Message``. Every block either reaches the Space or raises
``InvalidInputError``: nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Literal, cast

from llama_index.core.base.llms.generic_utils import image_node_to_image_block
from llama_index.core.base.llms.types import (
    BaseContentBlock,
    BaseRecursiveContentBlock,
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
)
from llama_index.core.schema import ImageDocument, ImageNode

from janus_space import ImagesDroppedWarning, InvalidInputError, Message

__all__ = [
    "ExtraImages",
    "ImageDocuments",
    "choose_image",
    "image_block_to_input",
    "image_documents_to_blocks",
    "to_janus_message",
    "to_janus_messages",
]

ExtraImages = Literal["latest", "error"]

# Tool/function results become user turns: the Space has no tool role, and LlamaIndex's
# ReAct formatter already sends observations as user messages by default.
_ROLES: dict[MessageRole, Literal["system", "user", "assistant"]] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.TOOL: "user",
    MessageRole.FUNCTION: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.CHATBOT: "assistant",
}


def image_block_to_input(block: ImageBlock, *, where: str = "image") -> bytes | str:
    """One ``ImageBlock`` → what the core accepts: image bytes, or an http(s) URL string.

    Bytes, paths and ``data:`` URLs go through LlamaIndex's own ``resolve_image()``. Remote
    URLs are handed to the core instead, which fetches them asynchronously with a size cap
    (``resolve_image`` would block the event loop on an uncapped ``requests.get``).
    """
    if block.image is None and block.path is None and block.url is not None:
        url = str(block.url)
        if url[:8].lower().startswith(("http://", "https://")):
            return url
    try:
        buffer = block.resolve_image()
        data = buffer.read()
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{where}: the ImageBlock cannot be read: {exc}") from exc
    if isinstance(data, str):  # an IOBase opened in text mode
        raise InvalidInputError(f"{where}: the ImageBlock holds text, not image bytes")
    return bytes(data)


def _collect(
    blocks: Iterable[BaseContentBlock],
    where: str,
    texts: list[str],
    images: list[bytes | str],
) -> None:
    for position, block in enumerate(blocks):
        here = f"{where}.blocks[{position}]"
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ImageBlock):
            images.append(image_block_to_input(block, where=here))
        elif isinstance(block, CachePoint):
            continue  # a prompt-caching marker: it carries no content to send
        elif isinstance(block, BaseRecursiveContentBlock):  # citable / citation wrappers
            _collect(block.nested_blocks, here, texts, images)
        else:
            kind = getattr(block, "block_type", type(block).__name__)
            raise InvalidInputError(
                f"{here}: Janus-Pro reads only text and images; a {kind!r} block "
                f"({type(block).__name__}) cannot be sent. Remove it or convert it to text."
            )


def to_janus_message(message: ChatMessage, *, where: str = "message") -> Message:
    """One ``ChatMessage`` → ``janus_space.Message``: texts joined by newlines, images kept."""
    role = _ROLES.get(message.role)
    if role is None:
        raise InvalidInputError(f"{where}: unsupported message role {message.role!r}")
    texts: list[str] = []
    images: list[bytes | str] = []
    _collect(message.blocks, where, texts, images)
    return Message(role=role, text="\n".join(texts), images=tuple(images))


def to_janus_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    """A LlamaIndex conversation → the core's messages, in order."""
    return [
        to_janus_message(message, where=f"messages[{position}]")
        for position, message in enumerate(messages)
    ]


def choose_image(
    messages: Sequence[Message], extra_images: ExtraImages
) -> tuple[list[Message], int]:
    """Keep the one image the Space can take; return the messages and how many were dropped.

    The image kept is the first image of the latest message that has any. Across messages the
    newest wins (in a chat, the user's latest upload); within one message the first wins,
    because LlamaIndex's retrieval engines put image nodes in relevance order. Dropping warns
    with ``ImagesDroppedWarning``; ``extra_images="error"`` raises ``InvalidInputError``.
    """
    total = sum(len(m.images) for m in messages)
    if total <= 1:
        return list(messages), 0
    if extra_images == "error":
        raise InvalidInputError(
            f"the conversation holds {total} images but the Space takes exactly one per call "
            "(set extra_images='latest' to send the first image of the latest message)"
        )
    keep_at = max(i for i, m in enumerate(messages) if m.images)
    chosen = [
        Message(m.role, m.text, m.images[:1] if i == keep_at else ())
        for i, m in enumerate(messages)
    ]
    dropped = total - 1
    warnings.warn(
        f"{total} images arrived but the Space takes one per call: sending the first image of "
        f"the latest message that has images and dropping {dropped}",
        ImagesDroppedWarning,
        stacklevel=3,
    )
    return chosen, dropped


ImageDocuments = Sequence[ImageNode | ImageDocument | ImageBlock]


def image_documents_to_blocks(image_documents: ImageDocuments | None) -> list[ImageBlock]:
    """The legacy multimodal ``image_documents`` (image nodes/documents or blocks) → ImageBlocks."""
    blocks: list[ImageBlock] = []
    for position, item in enumerate(image_documents or ()):
        if isinstance(item, ImageBlock):
            blocks.append(item)
        elif isinstance(item, (ImageNode, ImageDocument)):
            try:
                # ImageDocument has the same image properties as ImageNode (duck-typed here).
                blocks.append(image_node_to_image_block(cast(ImageNode, item)))
            except ValueError as exc:
                raise InvalidInputError(f"image_documents[{position}]: {exc}") from exc
        else:
            raise InvalidInputError(
                f"image_documents[{position}] is a {type(item).__name__}; pass ImageNode, "
                "ImageDocument or ImageBlock"
            )
    return blocks
