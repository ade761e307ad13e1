"""LangChain messages → ``janus_space.Message`` (pure, no network).

Every message is read through langchain-core's own normalisation (``msg.content_blocks``), so
OpenAI ``image_url`` parts, v1 ``image`` blocks, the legacy ``source_type`` form and Anthropic
``source`` blocks all arrive here as standard blocks. Each block either reaches the Space or
raises ``InvalidInputError`` naming the message and block; nothing is dropped silently. The
only content deliberately left out is another model's reasoning in an assistant turn (it was
never part of the conversation the user saw).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from janus_space import InvalidInputError, Message

__all__ = ["generation_prompt", "to_janus_message", "to_janus_messages"]

Role = Literal["system", "user", "assistant"]

# ChatMessage roles as users spell them; tool/function results become user turns because the
# Space has no tool role (and Janus has no tool calling of its own).
_CHAT_ROLES: dict[str, Role] = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "user",
    "function": "user",
}
_MEDIA_BLOCKS = {"audio", "video", "file", "text-plain"}
_REASONING_TYPES = {"reasoning", "thinking", "redacted_thinking"}


def _role_of(message: BaseMessage, where: str) -> Role:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, (ToolMessage, FunctionMessage)):
        return "user"
    if isinstance(message, ChatMessage):
        role = _CHAT_ROLES.get(message.role.lower())
        if role is not None:
            return role
        raise InvalidInputError(
            f"{where}: ChatMessage role {message.role!r} is not one Janus understands "
            f"(use one of {sorted(_CHAT_ROLES)})"
        )
    raise InvalidInputError(f"{where}: a {type(message).__name__} cannot be sent to Janus")


def _image_input(block: Mapping[str, Any], where: str) -> bytes | str:
    """A standard image block → image bytes, or an http(s)/data URL the core resolves.

    Only web and data URLs are accepted: a ``url`` naming a local path must not make the
    adapter read (and upload) files from the machine it runs on.
    """
    if block.get("base64"):
        try:
            return base64.b64decode(str(block["base64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(
                f"{where}: the image block's base64 data is invalid: {exc}"
            ) from None
    url = block.get("url")
    if isinstance(url, str) and url:
        if url[:8].lower().startswith(("http://", "https://")) or url[:5].lower() == "data:":
            return url
        raise InvalidInputError(
            f"{where}: image URL {url[:40]!r} is not supported; use an http(s) URL, a data: URI "
            "or base64 data"
        )
    if block.get("file_id"):
        raise InvalidInputError(
            f"{where}: image blocks with a provider file_id cannot be read by Janus; send the "
            "image as base64 data or a URL"
        )
    raise InvalidInputError(f"{where}: the image block holds no base64 data and no URL")


def _legacy_image_url(value: Mapping[str, Any]) -> str | None:
    """The URL of an OpenAI-style ``image_url`` part given as a bare string.

    langchain-core leaves ``{"type": "image_url", "image_url": "<url>"}`` as ``non_standard``;
    it is still a form LangChain users send, so it is recognised here and nowhere else.
    """
    if value.get("type") == "image_url" and isinstance(value.get("image_url"), str):
        return str(value["image_url"])
    return None


def _tool_call_text(block: Mapping[str, Any]) -> str:
    args = block.get("args")
    rendered = json.dumps(args, ensure_ascii=False, sort_keys=True) if args is not None else "{}"
    return f"[called tool {block.get('name') or 'unknown'} with {rendered}]"


def to_janus_message(message: BaseMessage, *, where: str = "message") -> Message:
    """One LangChain message → ``janus_space.Message``: text blocks joined by newlines."""
    if not isinstance(message, BaseMessage):
        raise InvalidInputError(f"{where} is a {type(message).__name__}, not a LangChain message")
    role = _role_of(message, where)
    texts: list[str] = []
    images: list[bytes | str] = []
    for position, block in enumerate(message.content_blocks):
        here = f"{where}.content[{position}]"
        kind = block["type"]
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            images.append(_image_input(block, here))
        elif kind in ("tool_call", "tool_call_chunk", "invalid_tool_call") and role == "assistant":
            texts.append(_tool_call_text(block))
        elif kind in _REASONING_TYPES and role == "assistant":
            continue  # another model's private reasoning; not replayed (documented)
        elif kind == "non_standard":
            value = block.get("value")
            value = value if isinstance(value, Mapping) else {}
            url = _legacy_image_url(value)
            if url is not None:
                images.append(_image_input({"url": url}, here))
            elif value.get("type") in _REASONING_TYPES and role == "assistant":
                continue
            else:
                raise InvalidInputError(
                    f"{here}: Janus-Pro reads only text and images; the provider-specific block "
                    f"{value.get('type')!r} cannot be sent"
                )
        elif kind in _MEDIA_BLOCKS:
            raise InvalidInputError(
                f"{here}: Janus-Pro reads only text and images; a {kind!r} block "
                f"({block.get('mime_type') or 'no mime type'}) cannot be sent"
            )
        else:
            raise InvalidInputError(
                f"{here}: Janus-Pro reads only text and images; a {kind!r} block cannot be sent"
            )
    text = "\n".join(texts)
    if isinstance(message, (ToolMessage, FunctionMessage)):
        name = message.name or getattr(message, "tool_call_id", None) or "tool"
        status = " (error)" if getattr(message, "status", "success") == "error" else ""
        text = f"[result of tool {name}{status}]\n{text}".rstrip()
    return Message(role=role, text=text, images=tuple(images))


def to_janus_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """A LangChain conversation → the core's messages, in order (the core flattens them)."""
    if not messages:
        raise InvalidInputError("no messages: give ChatJanus at least one user message")
    return [
        to_janus_message(message, where=f"messages[{position}]")
        for position, message in enumerate(messages)
    ]


def generation_prompt(messages: Sequence[BaseMessage]) -> str:
    """The image-generation prompt: system texts, then the last user message's text.

    The generator takes one text prompt and no images, so earlier turns are not used (a
    drawing prompt is the user's latest request) and any image in the used messages raises.
    """
    converted = to_janus_messages(messages)
    last = converted[-1]
    if last.role != "user":
        raise InvalidInputError(
            f"the last message must come from the user (it is {last.role!r}): image generation "
            "draws what the last user message describes"
        )
    used = [m for m in converted[:-1] if m.role == "system"] + [last]
    if any(m.images for m in used):
        raise InvalidInputError(
            "image generation takes a text prompt only; remove the image (use "
            "model='janus-pro-7b' to ask about an image)"
        )
    prompt = "\n".join(m.text.strip() for m in used if m.text.strip())
    if not last.text.strip():
        raise InvalidInputError(
            "the last user message has no text: image generation needs a prompt"
        )
    return prompt
