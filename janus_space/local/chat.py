"""Messages → Janus-Pro's chat template: real turns, system messages and every image, unflattened.

``to_turns`` checks a conversation and turns it into the content-list messages that
``processor.apply_chat_template`` reads (each image an ``{"type": "image"}`` item placed before
the message's text), with the checked image bytes in order (image URLs stay URLs until
``fetch.fetch_urls`` downloads them). ``encode`` renders the template,
adds Janus's default system prompt only when the conversation brings none, and tokenizes the
prompt with the images, as the processor expects.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from ..media import ImageData, is_url, load_image, prepare_for_upload
from ..prompt import Message

__all__ = ["ChatPrompt", "encode", "open_images", "to_turns"]


@dataclass(frozen=True)
class ChatPrompt:
    """A checked conversation: template messages, their images, and whether a system one is set."""

    turns: tuple[dict[str, Any], ...]
    images: tuple[ImageData | str, ...]
    """Checked image bytes, or http(s) URLs still to fetch."""
    has_system: bool


def _image(source: Any) -> ImageData | str:
    if isinstance(source, str) and is_url(source.strip()):
        return source.strip()
    return load_image(source)


def to_turns(messages: Sequence[Message]) -> ChatPrompt:
    """Check a conversation (last message from the user) and build its template messages."""
    if isinstance(messages, (str, Message)) or not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a sequence of Message")
    if not messages:
        raise InvalidInputError("the conversation is empty: give at least one user message")
    for position, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidInputError(
                f"messages[{position}] is a {type(message).__name__}, not a janus_space.Message"
            )
    last = messages[-1]
    if last.role != "user":
        raise InvalidInputError(
            f"the last message must come from the user (it is {last.role!r}): Janus-Pro answers "
            "the user's last turn"
        )
    if not last.text.strip() and not last.images:
        raise InvalidInputError("the last user message is empty: give a question or an image")
    turns: list[dict[str, Any]] = []
    images: list[ImageData | str] = []
    for position, message in enumerate(messages):
        if message.images and message.role == "system":
            raise InvalidInputError(f"messages[{position}] is a system message with images")
        content: list[dict[str, Any]] = []
        for source in message.images:
            images.append(_image(source))
            content.append({"type": "image"})
        if message.text.strip():
            content.append({"type": "text", "text": message.text})
        if content:  # a message with neither text nor images carries nothing to show
            turns.append({"role": message.role, "content": content})
    has_system = any(turn["role"] == "system" for turn in turns)
    return ChatPrompt(tuple(turns), tuple(images), has_system)


def open_images(images: Sequence[ImageData | str]) -> list[Any]:
    """Decode checked image bytes to upright RGB PIL images (on the worker thread)."""
    from PIL import Image

    opened = []
    for image in images:
        if isinstance(image, str):
            raise InvalidInputError(f"image URL {image[:200]} was not fetched")
        upright = prepare_for_upload(image, max_side=None)
        with Image.open(io.BytesIO(upright.data)) as picture:
            opened.append(picture.convert("RGB"))
    return opened


def encode(processor: Any, prompt: ChatPrompt, pictures: Sequence[Any]) -> tuple[str, Any]:
    """The prompt text the model reads and its tokenized inputs (``input_ids``, pixels)."""
    from transformers.models.janus.processing_janus import DEFAULT_SYSTEM_PROMPT

    rendered = processor.apply_chat_template(list(prompt.turns), add_generation_prompt=True)
    use_default = bool(getattr(processor, "use_default_system_prompt", False))
    text = rendered if prompt.has_system or not use_default else DEFAULT_SYSTEM_PROMPT + rendered
    # The processor would prepend its default system prompt itself; the text above already
    # holds it when it applies, so it is switched off for this one call (one worker thread).
    processor.use_default_system_prompt = False
    try:
        inputs = processor(
            text=[text], images=list(pictures) or None, return_tensors="pt", padding=False
        )
    finally:
        processor.use_default_system_prompt = use_default
    return text, inputs
