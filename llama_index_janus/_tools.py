"""Janus-Pro as LlamaIndex ``FunctionTool``s for agents: a brush and a pair of eyes.

The generation tool returns a ``TextBlock`` followed by the images: agents such as ReAct only
read the text of a tool result, and an image-only result reaches them as an empty
observation. The text names each image's id; the images stay in the ``ToolOutput``'s blocks
(and ``raw_output``) for the application. The question tool takes such an id (or an http(s)
URL, a ``data:`` URL, or a file inside a folder the application allows) and a question, and
returns Janus's answer. Both tools made from one ``JanusPro`` share its ``ImageShelf``
(:func:`shared_images`), so an agent on a text-only model can draw and then look.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.tools import FunctionTool

from janus_space import InvalidInputError
from janus_space.image_refs import ImageShelf, resolve_image_reference
from janus_space.media import ImageData

if TYPE_CHECKING:
    from .base import JanusPro

__all__ = [
    "DEFAULT_QUESTION_TOOL_DESCRIPTION",
    "DEFAULT_TOOL_DESCRIPTION",
    "make_image_generation_tool",
    "make_image_question_tool",
    "shared_images",
]

DEFAULT_TOOL_DESCRIPTION = (
    "Draw pictures from a text description with Janus-Pro-7B. Input: `prompt`, a detailed "
    "description of the picture in English; optional `seed` (integer) to vary the result. "
    "Returns five 768x768 images, attached to the tool result for the user, and their ids "
    "(e.g. img-1) for asking about them."
)
DEFAULT_QUESTION_TOOL_DESCRIPTION = (
    "Ask Janus-Pro-7B a question about a picture. Input: `image`, an image id from an earlier "
    "tool result (e.g. img-1), an http(s) URL or a data: URL; and `question`, what to ask in "
    "English. Returns Janus's answer as text."
)

_SHELVES: dict[int, ImageShelf] = {}
_SHELVES_LOCK = threading.Lock()


def shared_images(llm: JanusPro) -> ImageShelf:
    """The image shelf of ``llm``'s tools (made on first use, dropped with ``llm``)."""
    key = id(llm)
    with _SHELVES_LOCK:
        shelf = _SHELVES.get(key)
        if shelf is None:
            shelf = _SHELVES[key] = ImageShelf()
            weakref.finalize(llm, _forget, key)  # runs before the id can be reused
        return shelf


def _forget(key: int) -> None:
    with _SHELVES_LOCK:
        _SHELVES.pop(key, None)


def _summary(prompt: str, images: list[ImageBlock], ids: list[str]) -> TextBlock:
    kinds = sorted({image.image_mimetype or "image" for image in images})
    return TextBlock(
        text=(
            f"Generated {len(images)} image(s) ({', '.join(kinds)}) for the prompt {prompt!r}. "
            "They are attached to this tool result and will be shown to the user. "
            f"Image ids: {', '.join(ids)}."
        )
    )


def make_image_generation_tool(
    llm: JanusPro,
    *,
    name: str = "generate_image",
    description: str | None = None,
    return_direct: bool = False,
    images: ImageShelf | None = None,
) -> FunctionTool:
    """A tool whose async path awaits ``llm.agenerate_images`` (sync path: its loop thread).

    Each image is put on ``images`` (default: ``shared_images(llm)``) and named by its id.
    """
    shelf = images if images is not None else shared_images(llm)

    def reply(prompt: str, blocks: list[ImageBlock]) -> list[TextBlock | ImageBlock]:
        ids = [shelf.add(_block_bytes(block)) for block in blocks]
        return [_summary(prompt, blocks, ids), *blocks]

    async def agenerate(prompt: str, seed: int | None = None) -> list[TextBlock | ImageBlock]:
        """Draw images for `prompt` with Janus-Pro-7B."""
        return reply(prompt, await llm.agenerate_images(prompt, seed=seed))

    def generate(prompt: str, seed: int | None = None) -> list[TextBlock | ImageBlock]:
        """Draw images for `prompt` with Janus-Pro-7B."""
        return reply(prompt, llm.generate_images(prompt, seed=seed))

    return FunctionTool.from_defaults(
        fn=generate,
        async_fn=agenerate,
        name=name,
        description=description or DEFAULT_TOOL_DESCRIPTION,
        return_direct=return_direct,
    )


def _block_bytes(block: ImageBlock) -> bytes:
    data = block.resolve_image().read()
    return data if isinstance(data, bytes) else bytes(data)


def make_image_question_tool(
    llm: JanusPro,
    *,
    name: str = "ask_about_image",
    description: str | None = None,
    return_direct: bool = False,
    images: ImageShelf | None = None,
    image_root: str | os.PathLike[str] | None = None,
) -> FunctionTool:
    """A tool asking ``llm`` about a picture named by id (on ``images``) or URL.

    ``image_root`` allows file paths inside that folder (unset: none, since the reference
    comes from a model). A reference naming no usable image raises ``ImageReferenceError``
    before any request; LlamaIndex's agents hand that message back to the model.
    """
    shelf = images if images is not None else shared_images(llm)

    def message(image: str, question: str) -> list[ChatMessage]:
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("the question is empty: say what to ask about the picture")
        picture = resolve_image_reference(image, shelf, image_root=image_root)
        if isinstance(picture, ImageData):
            block = ImageBlock(image=picture.data, image_mimetype=picture.mime_type)
        else:
            block = ImageBlock(url=picture)
        return [ChatMessage(role=MessageRole.USER, blocks=[block, TextBlock(text=question)])]

    async def aask(image: str, question: str) -> str:
        """Ask Janus-Pro-7B `question` about the picture `image` (an image id or a URL)."""
        answer = await llm.achat(message(image, question))
        return answer.message.content or ""

    def ask(image: str, question: str) -> str:
        """Ask Janus-Pro-7B `question` about the picture `image` (an image id or a URL)."""
        return llm.chat(message(image, question)).message.content or ""

    return FunctionTool.from_defaults(
        fn=ask,
        async_fn=aask,
        name=name,
        description=description or DEFAULT_QUESTION_TOOL_DESCRIPTION,
        return_direct=return_direct,
    )
