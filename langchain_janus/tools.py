"""Janus-Pro as LangChain tools for other models' agents: a brush and a pair of eyes.

``JanusImageGenerator`` draws; it answers with ``response_format="content_and_artifact"``: the
model reading the ToolMessage sees a short text naming the images' ids, and the images
travel as the artifact (standard image blocks), so they never flood the agent's context.
``JanusImageQuestion`` asks Janus about a picture named by such an id (or an http(s) URL, a
``data:`` URL, or a file inside a folder the application allows) and returns the answer.
The two share an ``ImageShelf`` — ``JanusImageQuestion.beside(generator)`` — so an agent on a
text-only model can draw a picture and then look at it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import BaseMessage
from langchain_core.messages.content import ImageContentBlock, create_image_block
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from janus_space import (
    GenerationResult,
    InvalidInputError,
    ProtocolError,
    StatusEvent,
    UnderstandingResult,
)
from janus_space.events import TextDelta
from janus_space.image_refs import ImageShelf, resolve_image_reference

from ._events import adispatch_status, dispatch_status, status_payload
from ._messages import _image_input
from ._runtime import SpaceSettings
from .chat_models import GENERATION_MODEL, UNDERSTANDING_MODEL

__all__ = [
    "ImageShelf",
    "JanusImageGenerator",
    "JanusImageGeneratorInput",
    "JanusImageQuestion",
    "JanusImageQuestionInput",
]

Artifact = list[ImageContentBlock]


def _shelf_field() -> Any:
    return Field(
        default_factory=ImageShelf,
        exclude=True,
        repr=False,
        description="Where images are kept by id; share one between the generator and the "
        "question tool (JanusImageQuestion.beside(generator) does).",
    )


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
        message.content   # short text for the model, naming the ids img-1, img-2
        message.artifact  # [{"type": "image", "base64": ..., "id": "img-1", ...}, ...]
        ```
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = "janus_image_generator"
    description: str = (
        "Generate images from a text description with DeepSeek Janus-Pro-7B. Input: a detailed "
        "description of the picture. Returns a short confirmation naming each image's id "
        "(e.g. img-1); the images are attached for the user."
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
    images: ImageShelf = _shelf_field()

    def _params(self) -> dict[str, Any]:
        values = {"seed": self.seed, "guidance": self.guidance, "temperature": self.temperature}
        return {name: value for name, value in values.items() if value is not None}

    def _reply(self, prompt: str, result: GenerationResult | None) -> tuple[str, Artifact]:
        if result is None:
            raise ProtocolError("the Space call ended without images")
        images: Artifact = []
        for image in result.images[: self.max_images]:
            image_id = self.images.add(image.data)
            images.append(
                create_image_block(base64=image.to_base64(), mime_type=image.mime_type, id=image_id)
            )
        count = len(images)
        ids = ", ".join(str(block.get("id")) for block in images)
        text = (
            f"Generated {count} image{'s' if count != 1 else ''} for the prompt {prompt!r} "
            f"(seed {result.seed}); they are attached for the user. Image ids: {ids}."
        )
        return text, images

    async def _generate(self, prompt: str) -> AsyncIterator[StatusEvent | GenerationResult]:
        """The core's event stream for one prompt, on this loop's client."""
        client = self.janus_backend
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
                await adispatch_status(status_payload(item, GENERATION_MODEL), run_manager)
        return self._reply(prompt, result)

    def _run(
        self, prompt: str, run_manager: CallbackManagerForToolRun | None = None
    ) -> tuple[str, Artifact]:
        result: GenerationResult | None = None
        for item in self._handle.iterate(self._generate(prompt)):
            if isinstance(item, GenerationResult):
                result = item
            else:
                dispatch_status(status_payload(item, GENERATION_MODEL), run_manager)
        return self._reply(prompt, result)


class JanusImageQuestionInput(BaseModel):
    """What the calling model provides: which picture, and what to ask about it."""

    image: str = Field(
        description="The picture: an image id from an earlier tool result (e.g. 'img-1'), an "
        "http(s) URL or a data: URL."
    )
    question: str = Field(description="What to ask about the picture, in English.")


class JanusImageQuestion(SpaceSettings, BaseTool):
    """Ask DeepSeek Janus-Pro-7B about a picture: eyes for an agent on a text-only model.

    The picture is named by an id on ``images`` (what ``JanusImageGenerator`` drew, or what
    the application added with ``remember``), an http(s) or ``data:`` URL, or a file path
    inside ``image_root`` (unset: no local files, since the reference comes from a model).
    A reference that names no usable image comes back to the agent as the tool's error
    (``handle_tool_error``), so it can correct itself; it never reaches the Space.

    Example:
        ```python
        from langchain_janus import JanusImageGenerator, JanusImageQuestion

        brush = JanusImageGenerator(max_images=1)
        eyes = JanusImageQuestion.beside(brush)  # same Space settings, same image shelf
        ```
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = "janus_image_question"
    description: str = (
        "Ask DeepSeek Janus-Pro-7B a question about a picture. Input: `image`, an image id "
        "from an earlier tool result (e.g. img-1), an http(s) URL or a data: URL; and "
        "`question`. Returns Janus's answer as text."
    )
    args_schema: type[BaseModel] = JanusImageQuestionInput
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True
    """Bad image references come back to the agent as the tool's error text (False: raise)."""

    seed: int | None = Field(
        default=None, ge=0, le=2**32 - 1, description="Random seed (Space default 42)."
    )
    top_p: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Nucleus sampling, 0..1 (Space default 0.95)."
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Sampling temperature, 0..1 (default 0.1)."
    )
    image_root: Path | None = Field(
        default=None,
        description="A folder whose files the tool may read when given a path (default: none).",
    )
    images: ImageShelf = _shelf_field()

    @classmethod
    def beside(cls, generator: JanusImageGenerator, **kwargs: Any) -> JanusImageQuestion:
        """A question tool with ``generator``'s Space settings and image shelf."""
        settings = {name: getattr(generator, name) for name in SpaceSettings.model_fields}
        return cls(**{**settings, "images": generator.images, **kwargs})

    def remember(self, images: BaseMessage | Sequence[Any]) -> list[str]:
        """Put the images of a message (or a list of image blocks) on the shelf; their ids.

        For the user's own pictures: tell the agent the ids, and it can ask about them.
        """
        blocks = images.content_blocks if isinstance(images, BaseMessage) else list(images)
        ids = []
        for position, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "image":
                ids.append(self.images.add(_image_input(block, f"images[{position}]")))
        return ids

    def _params(self) -> dict[str, Any]:
        values = {"seed": self.seed, "top_p": self.top_p, "temperature": self.temperature}
        return {name: value for name, value in values.items() if value is not None}

    def _request(self, image: str, question: str) -> tuple[Any, str]:
        """The image and question to send; a ``ToolException`` for anything unusable."""
        if not isinstance(question, str) or not question.strip():
            raise ToolException("the question is empty: say what to ask about the picture")
        try:
            picture = resolve_image_reference(image, self.images, image_root=self.image_root)
        except InvalidInputError as exc:
            raise ToolException(str(exc)) from exc
        return picture, question.strip()

    async def _ask(
        self, picture: Any, question: str
    ) -> AsyncIterator[StatusEvent | UnderstandingResult]:
        client = self.janus_backend
        stream = client.stream_understand(question, picture, **self._params())
        try:
            async for item in stream:
                if not isinstance(item, TextDelta):  # the answer arrives whole in the result
                    yield item
        finally:
            await stream.aclose()

    async def _arun(
        self,
        image: str,
        question: str,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> str:
        picture, question = self._request(image, question)
        result: UnderstandingResult | None = None
        async for item in self._ask(picture, question):
            if isinstance(item, UnderstandingResult):
                result = item
            else:
                await adispatch_status(status_payload(item, UNDERSTANDING_MODEL), run_manager)
        return _answer_text(result)

    def _run(
        self,
        image: str,
        question: str,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> str:
        picture, question = self._request(image, question)
        result: UnderstandingResult | None = None
        for item in self._handle.iterate(self._ask(picture, question)):
            if isinstance(item, UnderstandingResult):
                result = item
            else:
                dispatch_status(status_payload(item, UNDERSTANDING_MODEL), run_manager)
        return _answer_text(result)


def _answer_text(result: UnderstandingResult | None) -> str:
    if result is None:
        raise ProtocolError("the Space call ended without an answer")
    return result.text
