"""Conversation → the Space's single question: one documented flattening, trimmed to fit.

The Space takes one question and one image per call, with no history and no system prompt.
``flatten_conversation`` builds that question from a whole conversation::

    <system messages, joined by blank lines>

    Earlier conversation:
    User: <text>
    Assistant: <text>

    <the last user message>

The last message must come from the user and is never cut. When the question would not fit
Janus-Pro's context (4096 tokens, less 512 for the answer and 576 for the image), the oldest
turns of the earlier conversation are dropped first and the drop is reported (a warning and
``PreparedPrompt.trimmed_messages``). Only one image can be sent: by default the most recent
one, and the others are reported as dropped; ``extra_images="error"`` raises instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import HistoryTrimmedWarning, ImagesDroppedWarning, InvalidInputError

__all__ = [
    "CONTEXT_TOKENS",
    "DEFAULT_TOKEN_BUDGET",
    "Message",
    "PreparedPrompt",
    "cut_at_stop",
    "estimate_tokens",
    "flatten_conversation",
]

Role = Literal["system", "user", "assistant"]
ExtraImages = Literal["latest", "error"]

CONTEXT_TOKENS = 4096
ANSWER_TOKENS = 512
IMAGE_TOKENS = 576
TEMPLATE_TOKENS = 64
DEFAULT_TOKEN_BUDGET = CONTEXT_TOKENS - ANSWER_TOKENS - IMAGE_TOKENS - TEMPLATE_TOKENS
_ROLES = ("system", "user", "assistant")
_LABELS = {"user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Message:
    """One framework-neutral conversation message: a role, its text and any images."""

    role: Role
    text: str = ""
    images: tuple[Any, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise InvalidInputError(f"message role must be one of {_ROLES}, not {self.role!r}")
        if not isinstance(self.text, str):
            raise InvalidInputError(
                f"message text must be a string, not {type(self.text).__name__}"
            )
        if not isinstance(self.images, tuple):
            object.__setattr__(self, "images", tuple(self.images))


@dataclass(frozen=True)
class PreparedPrompt:
    """What one understanding call sends, and what had to be left out to send it."""

    question: str
    image: Any = field(default=None, repr=False)
    trimmed_messages: int = 0
    dropped_images: int = 0
    estimated_tokens: int = 0


def estimate_tokens(text: str) -> int:
    """A conservative token count without a tokenizer: one token per 3 UTF-8 bytes.

    DeepSeek's tokenizer averages about 4 characters per token for English and about one per
    CJK character (3 bytes), so this over-counts English and roughly matches CJK text.
    """
    return math.ceil(len(text.encode("utf-8")) / 3)


def _render(system: list[str], history: list[Message], last: str) -> str:
    parts: list[str] = []
    if system:
        parts.append("\n\n".join(system))
    if history:
        lines = [f"{_LABELS[m.role]}: {m.text.strip()}" for m in history]
        parts.append("Earlier conversation:\n" + "\n".join(lines))
    parts.append(last)
    return "\n\n".join(parts)


def flatten_conversation(
    messages: Sequence[Message],
    *,
    extra_images: ExtraImages = "latest",
    token_budget: int = DEFAULT_TOKEN_BUDGET,
) -> PreparedPrompt:
    """Flatten messages into one question and one image (see the module docstring)."""
    if isinstance(messages, (str, Message)) or not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a sequence of Message")
    if not messages:
        raise InvalidInputError("the conversation is empty: give at least one user message")
    for position, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidInputError(
                f"messages[{position}] is a {type(message).__name__}, not a janus_space.Message"
            )
    if extra_images not in ("latest", "error"):
        raise InvalidInputError(f"extra_images must be 'latest' or 'error', not {extra_images!r}")
    last = messages[-1]
    if last.role != "user":
        roles = {m.role for m in messages}
        if roles == {"system"}:
            raise InvalidInputError("the conversation has only system messages: add a user message")
        raise InvalidInputError(
            f"the last message must come from the user (it is {last.role!r}): the Space answers "
            "a question"
        )
    if not last.text.strip():
        raise InvalidInputError("the last user message has no text: the Space needs a question")

    images = [image for m in messages for image in m.images]
    if len(images) > 1 and extra_images == "error":
        raise InvalidInputError(
            f"the conversation holds {len(images)} images but the Space takes exactly one per "
            "call (set extra_images='latest' to send the most recent one)"
        )
    image = images[-1] if images else None
    dropped = max(0, len(images) - 1)

    system = [m.text.strip() for m in messages[:-1] if m.role == "system" and m.text.strip()]
    history = [m for m in messages[:-1] if m.role != "system" and m.text.strip()]
    question = last.text.strip()

    trimmed = 0
    text = _render(system, history, question)
    while estimate_tokens(text) > token_budget and history:
        history.pop(0)
        trimmed += 1
        text = _render(system, history, question)
    tokens = estimate_tokens(text)
    if tokens > token_budget:
        raise InvalidInputError(
            f"the question (with system messages) needs about {tokens} tokens, more than the "
            f"{token_budget} Janus-Pro has room for; shorten the last message or the system prompt"
        )
    if trimmed:
        warnings.warn(
            f"dropped the {trimmed} oldest message(s) of the conversation to fit Janus-Pro's "
            f"{CONTEXT_TOKENS}-token context",
            HistoryTrimmedWarning,
            stacklevel=2,
        )
    if dropped:
        warnings.warn(
            f"the conversation holds {len(images)} images but the Space takes one: sending the "
            f"most recent and dropping {dropped}",
            ImagesDroppedWarning,
            stacklevel=2,
        )
    return PreparedPrompt(text, image, trimmed, dropped, tokens)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The answer up to the first of the stop sequences (for backends that cannot stop early)."""
    cut = len(text)
    for sequence in stop:
        found = text.find(sequence) if sequence else -1
        if found != -1:
            cut = min(cut, found)
    return text[:cut]
