"""JanusImageGenerator: Janus-Pro image generation as a LangChain tool agents can call.

The tool answers with ``response_format="content_and_artifact"``: the model reading the
ToolMessage sees a short text, and the generated images travel as the artifact (a list of
standard image content blocks), so they never flood the agent's context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages.content import ImageContentBlock, create_image_block
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from janus_space import GenerationResult, ProtocolError, StatusEvent

from ._events import adispatch_status, dispatch_status, status_payload
from ._runtime import SpaceSettings
from .chat_models import GENERATION_MODEL

__all__ = ["JanusImageGenerator", "JanusImageGeneratorInput"]

Artifact = list[ImageContentBlock]


class JanusImageGeneratorInput(BaseModel):
    """What the calling model provides: a description of the picture."""

    prompt: str = Field(
        description="A detailed description of the picture to draw (subject, style, colours)."
    )


class JanusImageGenerator(SpaceSettings, BaseTool):
    """Draw images from a text description with DeepSeek Janus-Pro-7B (its Hugging Face Space).

    Example:
        ```python
        from langchain_janus import JanusImageGenerator

        tool = JanusImageGenerator(max_images=2)
        message = tool.invoke({"type": "tool_call", "id": "1", "name": tool.name,
                               "args": {"prompt": "a red fox in snow, watercolour"}})
        message.content   # short text for the model
        message.artifact  # [{"type": "image", "base64": ..., "mime_type": "image/webp"}, ...]
        ```
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = "janus_image_generator"
    description: str = (
        "Generate images from a text description with DeepSeek Janus-Pro-7B. Input: a detailed "
        "description of the picture. Returns a short confirmation; the images are attached "
        "for the user."
    )
    args_schema: type[BaseModel] = JanusImageGeneratorInput
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    seed: int | None = Field(
        default=None, ge=0, le=2**32 - 1, description="Random seed (Space default 12345)."
    )
    guidance: float | None = Field(
        default=None, ge=1.0, le=10.0, description="CFG weight, 1..10 (Space default 5)."
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Sampling temperature, 0..1 (Space default 1.0)."
    )
    max_images: int = Field(
        default=5, ge=1, le=5, description="How many of the five generated images to return."
    )

    def _params(self) -> dict[str, Any]:
        values = {"seed": self.seed, "guidance": self.guidance, "temperature": self.temperature}
        return {name: value for name, value in values.items() if value is not None}

    def _reply(self, prompt: str, result: GenerationResult | None) -> tuple[str, Artifact]:
        if result is None:
            raise ProtocolError("the Space call ended without images")
        images: Artifact = [
            create_image_block(base64=image.to_base64(), mime_type=image.mime_type)
            for image in result.images[: self.max_images]
        ]
        count = len(images)
        text = (
            f"Generated {count} image{'s' if count != 1 else ''} for the prompt {prompt!r} "
            f"(seed {result.seed}); they are attached for the user."
        )
        return text, images

    async def _generate(self, prompt: str) -> AsyncIterator[StatusEvent | GenerationResult]:
        """The core's event stream for one prompt, on this loop's client."""
        client = self._clients.pool.get()
        stream = client.stream_generate(prompt, **self._params())
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()

    async def _arun(
        self, prompt: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> tuple[str, Artifact]:
        result: GenerationResult | None = None
        async for item in self._generate(prompt):
            if isinstance(item, GenerationResult):
                result = item
            else:
                await adispatch_status(_payload(item), run_manager)
        return self._reply(prompt, result)

    def _run(
        self, prompt: str, run_manager: CallbackManagerForToolRun | None = None
    ) -> tuple[str, Artifact]:
        result: GenerationResult | None = None
        for item in self._clients.loop_thread.iterate(self._generate(prompt)):
            if isinstance(item, GenerationResult):
                result = item
            else:
                dispatch_status(_payload(item), run_manager)
        return self._reply(prompt, result)


def _payload(event: StatusEvent) -> dict[str, Any]:
    return status_payload(event, GENERATION_MODEL)
