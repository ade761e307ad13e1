"""The one seam between the adapters and whatever runs Janus-Pro: a Space, a pool, a local model.

``JanusBackend`` is what ``langchain_janus`` and ``llama_index_janus`` depend on; ``JanusClient``
(one Space), ``JanusPool`` (several endpoints) and ``LocalJanus`` (transformers on your GPU)
implement it. ``Capabilities`` says what a backend can honour, so an adapter warns about what
it cannot (one image per call, flattened history, a fixed answer length) only where it applies.

A backend may be used from any event loop, and from several: it keeps whatever it binds to a
loop (HTTP sessions, queues) per loop and releases it when that loop ends.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import InvalidInputError, JanusWarning
from .events import GenerationResult, StatusEvent, TextDelta, UnderstandingResult
from .media import ImageInput
from .prompt import Message

__all__ = [
    "Capabilities",
    "GenerationStream",
    "JanusBackend",
    "UnderstandingStream",
    "check_num_images",
    "warn_fixed_answer_length",
]

UnderstandingStream = AsyncGenerator[StatusEvent | TextDelta | UnderstandingResult, None]
"""Status events (and, where ``token_streaming``, ``TextDelta``s), then one result."""
GenerationStream = AsyncGenerator[StatusEvent | GenerationResult, None]
"""Status events, then one ``GenerationResult``."""


@dataclass(frozen=True)
class Capabilities:
    """What one backend can honour; adapters read it instead of knowing the backend's type."""

    kind: str
    """'space', 'pool' or 'local': for messages and metadata only, never for branching."""
    images_per_call: int | None
    """Images one understanding call can see (the Space: 1); None means no fixed limit."""
    native_history: bool
    """True: history and system messages reach the model as turns; False: flattened."""
    token_streaming: bool
    """True: ``TextDelta`` events stream the answer before the result."""
    max_new_tokens: int
    """The answer length a call gets unless it asks otherwise (the Space: a fixed 512)."""
    max_new_tokens_settable: bool
    """False: a requested ``max_new_tokens`` cannot be honoured (the Space's fixed 512)."""
    context_tokens: int
    """The model's context window in tokens (Janus-Pro: 4096)."""
    prompt_token_budget: int
    """Estimated tokens a prompt may use: the window less the answer, one image and the template."""
    images_per_generation: tuple[int, int]
    """The fewest and most images one generation call can draw (the Space: always 5)."""


@runtime_checkable
class JanusBackend(Protocol):
    """Understanding and generation with Janus-Pro, however it is reached.

    Streams yield status events and end with one result; abandoning a stream (``break``,
    ``aclose``, cancellation) stops the job wherever the backend can, so no GPU time is spent
    on an answer nobody reads. Bad input raises ``InvalidInputError`` before any work starts.
    """

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can honour (no I/O)."""
        ...

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran; a closed backend refuses calls."""
        ...

    def stream_understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = ...,
        top_p: float = ...,
        temperature: float = ...,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingStream:
        """Ask one question about an image (or none)."""
        ...

    async def understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = ...,
        top_p: float = ...,
        temperature: float = ...,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """``stream_understand``'s result."""
        ...

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = ...,
        top_p: float = ...,
        temperature: float = ...,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingStream:
        """Answer the last user message of a conversation."""
        ...

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = ...,
        top_p: float = ...,
        temperature: float = ...,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """``stream_chat``'s result."""
        ...

    def stream_generate(
        self,
        prompt: str,
        *,
        seed: int = ...,
        guidance: float = ...,
        temperature: float = ...,
        num_images: int | None = None,
    ) -> GenerationStream:
        """Draw images for a prompt (``num_images`` None: the backend's default)."""
        ...

    async def generate(
        self,
        prompt: str,
        *,
        seed: int = ...,
        guidance: float = ...,
        temperature: float = ...,
        num_images: int | None = None,
    ) -> GenerationResult:
        """``stream_generate``'s result."""
        ...

    async def aclose(self) -> None:
        """Release everything: this loop's resources now, other loops' as they can be reached."""
        ...


def warn_fixed_answer_length(max_new_tokens: int | None, capabilities: Capabilities) -> None:
    """Say so when a requested answer length cannot be honoured by this backend."""
    if max_new_tokens is None:
        return
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or not (max_new_tokens >= 1)
    ):
        raise InvalidInputError(
            "max_new_tokens must be a positive integer, not " + repr(max_new_tokens)
        )
    if not capabilities.max_new_tokens_settable:
        warnings.warn(
            f"max_new_tokens={max_new_tokens} cannot be honoured: this {capabilities.kind} backend "
            f"always allows up to {capabilities.max_new_tokens} new tokens",
            JanusWarning,
            stacklevel=3,
        )


def check_num_images(num_images: int | None, capabilities: Capabilities) -> int | None:
    """None, or a number of images within what the backend can draw in one call."""
    if num_images is None:
        return None
    low, high = capabilities.images_per_generation
    if (
        isinstance(num_images, bool)
        or not isinstance(num_images, int)
        or not (low <= num_images <= high)
    ):
        span = f"exactly {low}" if low == high else f"{low} to {high}"
        raise InvalidInputError(
            f"num_images must be {span} on this {capabilities.kind} backend, not {num_images!r}"
        )
    return num_images
