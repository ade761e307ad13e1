"""Conversation → the Space's single question: one documented flattening, trimmed to fit.

The Space takes one question and one image per call, with no history and no system prompt.
``flatten_conversation`` builds that question from a whole conversation::

    <system messages, joined by blank lines>

    Earlier conversation:
    User: <text>
    Assistant: <text>

    <the last user message>

The last message must come from the user and is never cut. When the question would not fit
Janus-Pro's context (``tokens.DEFAULT_TOKEN_BUDGET``: 4096 tokens less 512 for the answer, 576
for the image and 64 for the Space's template, by ``estimate_tokens``), the oldest turns of the
earlier conversation are dropped first and the drop is reported (a warning and
``PreparedPrompt.trimmed_messages``). Only one image can be sent: by default the most recent
one, and the others are reported as dropped; ``extra_images="error"`` raises instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import (
    HistoryTrimmedWarning,
    ImagesDroppedWarning,
    InvalidInputError,
    PromptTooLongError,
)
from .tokens import (
    ANSWER_TOKENS,
    CONTEXT_TOKENS,
    DEFAULT_TOKEN_BUDGET,
    IMAGE_TOKENS,
    TEMPLATE_TOKENS,
    estimate_tokens,
)

__all__ = [  # the budget's names are re-exported from .tokens, where they are stated
    "ANSWER_TOKENS",
    "CONTEXT_TOKENS",
    "DEFAULT_TOKEN_BUDGET",
    "IMAGE_TOKENS",
    "TEMPLATE_TOKENS",
    "Message",
    "PreparedPrompt",
    "cut_at_stop",
    "estimate_conversation_tokens",
    "estimate_tokens",
    "flatten_conversation",
]

Role = Literal["system", "user", "assistant"]
ExtraImages = Literal["latest", "error"]

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


def _render(system: list[str], history: list[Message], last: str) -> str:
    parts: list[str] = []
    if system:
        parts.append("\n\n".join(system))
    if history:
        lines = [f"{_LABELS[m.role]}: {m.text.strip()}" for m in history]
        parts.append("Earlier conversation:\n" + "\n".join(lines))
    parts.append(last)
    return "\n\n".join(parts)


def estimate_conversation_tokens(
    messages: Sequence[Message], count: Callable[[str], int] = estimate_tokens
) -> int:
    """Tokens the question flattened from ``messages`` is estimated to take, without trimming.

    For trimmers (LangChain's ``trim_messages``): the sum of each message's share (its text,
    role label and line break, plus the history header once), and never less than the
    estimate of the text ``flatten_conversation`` would send, so a conversation counted within
    ``DEFAULT_TOKEN_BUDGET`` is sent whole. Images count nothing here: the budget already
    reserves the one image every call carries. Any conversation can be counted, also one that
    ``flatten_conversation`` would refuse (no final user message); ``count`` may be a real
    tokenizer's counter.
    """
    total = 0
    system: list[str] = []
    history: list[Message] = []
    for position, message in enumerate(messages):
        text = message.text.strip()
        if not text:
            continue
        if message.role == "system":
            system.append(text)
            total += count(text) + 1
        elif position == len(messages) - 1 and message.role == "user":
            total += count(text) + 1
        else:
            history.append(message)
            total += count(f"{_LABELS[message.role]}: {text}") + 1
    if history:
        total += count("Earlier conversation:") + 1
    last = messages[-1] if messages else None
    if last is not None and last.role == "user" and last.text.strip():
        total = max(total, count(_render(system, history, last.text.strip())))
    return total


def _oldest_to_drop(system: list[str], history: list[Message], last: str, budget: int) -> int:
    """How few of the oldest turns must go for the rest to fit ``budget`` (a bisection).

    Dropping turns never makes the estimate grow, so the fewest is found with a logarithmic
    number of estimates rather than one per dropped turn (a long history is re-estimated whole).
    """
    if estimate_tokens(_render(system, history, last)) <= budget:
        return 0
    fits, too_few = len(history), 0  # dropping all of them is the most that can be done
    while fits - too_few > 1:
        middle = (fits + too_few) // 2
        if estimate_tokens(_render(system, history[middle:], last)) <= budget:
            fits = middle
        else:
            too_few = middle
    return fits


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

    trimmed = _oldest_to_drop(system, history, question, token_budget)
    history = history[trimmed:]
    text = _render(system, history, question)
    tokens = estimate_tokens(text)
    if tokens > token_budget:
        raise PromptTooLongError(
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
