"""Janus-Pro image generation as a LlamaIndex ``FunctionTool`` for agents.

The tool returns a ``TextBlock`` followed by the images: agents such as ReAct only read the
text of a tool result, and an image-only result reaches them as an empty observation. The
images stay in the ``ToolOutput``'s blocks (and ``raw_output``) for the application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.tools import FunctionTool

if TYPE_CHECKING:
    from .base import JanusPro

__all__ = ["DEFAULT_TOOL_DESCRIPTION", "make_image_generation_tool"]

DEFAULT_TOOL_DESCRIPTION = (
    "Draw pictures from a text description with Janus-Pro-7B. Input: `prompt`, a detailed "
    "description of the picture in English; optional `seed` (integer) to vary the result. "
    "Returns five 768x768 images, attached to the tool result for the user."
)


def _summary(prompt: str, images: list[ImageBlock]) -> TextBlock:
    kinds = sorted({image.image_mimetype or "image" for image in images})
    return TextBlock(
        text=(
            f"Generated {len(images)} image(s) ({', '.join(kinds)}) for the prompt {prompt!r}. "
            "They are attached to this tool result and will be shown to the user."
        )
    )


def make_image_generation_tool(
    llm: JanusPro,
    *,
    name: str = "generate_image",
    description: str | None = None,
    return_direct: bool = False,
) -> FunctionTool:
    """A tool whose async path awaits ``llm.agenerate_images`` (sync path: its loop thread)."""

    async def agenerate(prompt: str, seed: int | None = None) -> list[TextBlock | ImageBlock]:
        """Draw images for `prompt` with Janus-Pro-7B."""
        images = await llm.agenerate_images(prompt, seed=seed)
        return [_summary(prompt, images), *images]

    def generate(prompt: str, seed: int | None = None) -> list[TextBlock | ImageBlock]:
        """Draw images for `prompt` with Janus-Pro-7B."""
        images = llm.generate_images(prompt, seed=seed)
        return [_summary(prompt, images), *images]

    return FunctionTool.from_defaults(
        fn=generate,
        async_fn=agenerate,
        name=name,
        description=description or DEFAULT_TOOL_DESCRIPTION,
        return_direct=return_direct,
    )
