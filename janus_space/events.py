"""Typed events of a Space job and the results it ends with; ``parse_message`` reads wire JSON."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .prompt import PreparedPrompt

logger = logging.getLogger("janus_space")

__all__ = [
    "Failover",
    "GeneratedImage",
    "GenerationResult",
    "Heartbeat",
    "Log",
    "Progress",
    "Queued",
    "Started",
    "StatusEvent",
    "TextDelta",
    "UnderstandingResult",
]


@dataclass(frozen=True)
class Queued:
    """The job waits in a queue: Gradio's ``rank`` (0 = next; see ``position``), size, ETA."""

    rank: int | None = None
    queue_size: int | None = None
    eta: float | None = None

    @property
    def position(self) -> int | None:
        """The place in the queue counted from 1 (1 = next): the one convention shown to users."""
        return None if self.rank is None else self.rank + 1


@dataclass(frozen=True)
class Started:
    """The job left the queue and runs; ``eta`` is the server's estimate in seconds."""

    eta: float | None = None


@dataclass(frozen=True)
class Progress:
    """A progress step reported by the Space's function."""

    desc: str | None = None
    index: int | None = None
    length: int | None = None
    unit: str | None = None
    progress: float | None = None


@dataclass(frozen=True)
class Log:
    """An info or warning message shown by the Space's function."""

    message: str
    level: str = "info"


@dataclass(frozen=True)
class Heartbeat:
    """The server is alive; sent during long jobs."""


@dataclass(frozen=True)
class Failover:
    """A pool left an endpoint for this call: which one, why, and until when it is skipped.

    ``retry_after`` is in seconds from the event (None: skipped for this call only).
    """

    endpoint: str
    reason: str
    retry_after: float | None = None
    next_endpoint: str | None = None


StatusEvent = Queued | Started | Progress | Log | Heartbeat | Failover


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, streamed before the result by backends that stream tokens.

    The final ``UnderstandingResult`` still carries the whole text; deltas joined equal it.
    """

    text: str


@dataclass(frozen=True)
class UnderstandingResult:
    """The Space's answer to one question about one image, with the parameters used."""

    text: str
    seed: int
    top_p: float
    temperature: float
    duration: float | None = None
    prompt: PreparedPrompt | None = field(default=None, repr=False)
    endpoint: str | None = None
    """Which backend endpoint served the call (a Space id, a base URL, or ``local:<model>``)."""


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image, downloaded from the Space while it still served it."""

    data: bytes = field(repr=False)
    mime_type: str
    url: str = ""

    @property
    def size(self) -> int:
        """Size of the encoded image in bytes."""
        return len(self.data)

    def to_base64(self) -> str:
        """The image bytes as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    def to_data_uri(self) -> str:
        """The image as a ``data:`` URI."""
        return f"data:{self.mime_type};base64,{self.to_base64()}"


@dataclass(frozen=True)
class GenerationResult:
    """The images one generation call produced (the Space draws five)."""

    images: tuple[GeneratedImage, ...]
    seed: int
    guidance: float
    temperature: float
    duration: float | None = None
    endpoint: str | None = None
    """Which backend endpoint served the call (a Space id, a base URL, or ``local:<model>``)."""


@dataclass(frozen=True)
class JobCompleted:
    """Internal: the job's final message; ``output`` holds ``data`` or ``error``."""

    success: bool
    output: Mapping[str, Any]


@dataclass(frozen=True)
class StreamError:
    """Internal: the server reported an error for the stream itself (e.g. unknown session)."""

    message: str


WireEvent = Queued | Started | Progress | Log | Heartbeat | JobCompleted | StreamError


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def parse_message(message: Mapping[str, Any]) -> WireEvent | None:
    """One decoded ``data:`` JSON object → its typed event; None for messages we do not use."""
    kind = message.get("msg")
    if kind == "estimation":
        return Queued(
            rank=_int(message.get("rank")),
            queue_size=_int(message.get("queue_size")),
            eta=_num(message.get("rank_eta")),
        )
    if kind == "process_starts":
        return Started(eta=_num(message.get("eta")))
    if kind == "progress":
        steps = message.get("progress_data") or []
        step = steps[-1] if isinstance(steps, list) and steps else {}
        if not isinstance(step, Mapping):
            step = {}
        return Progress(
            desc=step.get("desc") if isinstance(step.get("desc"), str) else None,
            index=_int(step.get("index")),
            length=_int(step.get("length")),
            unit=step.get("unit") if isinstance(step.get("unit"), str) else None,
            progress=_num(step.get("progress")),
        )
    if kind == "log":
        return Log(message=str(message.get("log", "")), level=str(message.get("level", "info")))
    if kind == "heartbeat":
        return Heartbeat()
    if kind == "process_completed":
        output = message.get("output")
        return JobCompleted(
            success=bool(message.get("success")),
            output=output if isinstance(output, Mapping) else {},
        )
    if kind == "unexpected_error":
        return StreamError(str(message.get("message", "unexpected error")))
    logger.debug("ignoring Space message of kind %r", kind)
    return None
