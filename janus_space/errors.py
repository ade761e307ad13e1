"""Typed errors and warnings of the Janus Space client, one module so callers can catch by meaning.

Every error a call can raise is a ``JanusError``; bad input is also a ``ValueError`` and a
timeout also a ``TimeoutError``, so generic handlers keep working.
"""

from __future__ import annotations

import html
import re

__all__ = [
    "AccessDeniedError",
    "AppError",
    "GPUUnavailableError",
    "HistoryTrimmedWarning",
    "ImageNotDownscaledWarning",
    "ImagesDroppedWarning",
    "InvalidInputError",
    "JanusConnectionError",
    "JanusError",
    "JanusTimeoutError",
    "JanusWarning",
    "MissingImageError",
    "PromptTooLongError",
    "ProtocolError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitedError",
    "ResultUnavailableError",
    "SpaceUnavailableError",
    "error_from_app_message",
]


class JanusError(Exception):
    """Base of every error raised by janus_space."""

    retryable: bool = False


class InvalidInputError(JanusError, ValueError):
    """The caller's input cannot be sent to the Space (raised before any request)."""


class PromptTooLongError(InvalidInputError):
    """The prompt cannot fit the model's context budget, even with older history dropped."""


class SpaceUnavailableError(JanusError):
    """The Space is not serving its app: sleeping, building, paused, broken, or answering 5xx."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None, stage: str | None = None):
        super().__init__(message)
        self.status = status
        self.stage = stage


class AccessDeniedError(JanusError):
    """HTTP 401/403: the Space (or the Hub) refuses this caller; never retried.

    ``token_sent`` says whether an HF token went with the request (None: unknown).
    """

    def __init__(
        self, message: str, *, status: int | None = None, token_sent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.token_sent = token_sent


class RateLimitedError(JanusError):
    """HTTP 429 from the Space or the Hub; ``retry_after`` is in seconds when the server said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class QueueFullError(JanusError):
    """The Space's queue refused the job (HTTP 503 "Queue is full")."""

    retryable = True


class QuotaExceededError(JanusError):
    """ZeroGPU quota is used up; never retried before ``retry_after`` seconds have passed."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        requested: float | None = None,
        left: float | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.requested = requested
        self.left = left


class GPUUnavailableError(JanusError):
    """ZeroGPU could not give the job a GPU ("No GPU was available", "GPU task aborted")."""

    retryable = True


class AppError(JanusError):
    """The Space's function itself failed; the message is the server's, HTML stripped."""

    def __init__(self, message: str, *, server_message: str | None = None):
        super().__init__(message)
        self.server_message = server_message


class MissingImageError(AppError):
    """The understanding function failed the way it does when it gets no image.

    Only raised for calls that sent no image; ``JanusClient`` always sends one.
    """


class ProtocolError(JanusError):
    """The Space answered something this client cannot read: a malformed or cut-off stream."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class ResultUnavailableError(JanusError):
    """The job finished but the Space no longer serves its result files."""


class JanusTimeoutError(JanusError, TimeoutError):
    """A call or a connection took longer than its configured timeout."""


class JanusConnectionError(JanusError, ConnectionError):
    """The Space's host could not be reached or dropped the connection."""

    retryable = True


class JanusWarning(UserWarning):
    """Base of janus_space's warnings: something the user sent was changed before sending."""


class HistoryTrimmedWarning(JanusWarning):
    """Older conversation turns were dropped to fit Janus-Pro's context window."""


class ImagesDroppedWarning(JanusWarning):
    """More than one image was given; only one can reach the Space."""


class ImageNotDownscaledWarning(JanusWarning):
    """Pillow is missing, so an image larger than the model needs is sent at full size."""


_TAGS = re.compile(r"<[^>]+>")
_RETRY_IN = re.compile(r"try again in\s+(?:(\d+):)?(\d{1,2}):(\d{2})(?::(\d{2}))?", re.I)
_REQUESTED_LEFT = re.compile(r"\(\s*(\d+(?:\.\d+)?)s requested vs\.?\s*(\d+(?:\.\d+)?)s left", re.I)


_SECRET_TEXT = re.compile(
    r"(?i)\bbearer\s+\S+|hf_[A-Za-z0-9]{16,}|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]+)?"
)


def scrub_secrets(text: str) -> str:
    """Server text with anything that looks like a token replaced (servers may echo headers)."""
    return _SECRET_TEXT.sub("<redacted>", text)


def clean_server_text(text: str) -> str:
    """Strip HTML (cutting at the first link, as the quota text carries one) and extra quotes."""
    cut = scrub_secrets(text).split(" <a ", 1)[0]
    cut = html.unescape(_TAGS.sub("", cut)).strip()
    if len(cut) >= 2 and cut[0] == cut[-1] and cut[0] in "'\"":
        cut = cut[1:-1].strip()
    return cut


def parse_retry_after(text: str) -> float | None:
    """Seconds from "Try again in H:MM:SS" (or MM:SS); None when the text names no time."""
    match = _RETRY_IN.search(text)
    if not match:
        return None
    a, b, c, d = match.groups()
    parts = [int(p) for p in (a, b, c, d) if p is not None]
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return float(seconds)


def error_from_app_message(
    raw: str | None, *, title: str | None = None, fn: str = "", image_sent: bool = False
) -> JanusError:
    """Map a failed job's ``error`` text (possibly null) to the typed error it means.

    A silent failure is blamed on a missing image only when no image was sent; this client
    always sends one (the placeholder for text-only questions), so for it the function failed.
    """
    if raw is None or not str(raw).strip():
        if fn == "multimodal_understanding" and not image_sent:
            return MissingImageError(
                "The Space's understanding function failed without a message; it fails this way "
                "when it receives no image (or when the model crashed)."
            )
        return AppError(
            f"The Space's function {fn or ''} failed without a message.".replace("  ", " ")
        )
    text = clean_server_text(str(raw))
    lowered = text.lower()
    if "exceeded your gpu quota" in lowered or "gpu quota" in lowered:
        requested = left = None
        match = _REQUESTED_LEFT.search(text)
        if match:
            requested, left = float(match.group(1)), float(match.group(2))
        return QuotaExceededError(
            text, retry_after=parse_retry_after(text), requested=requested, left=left
        )
    if "no gpu was available" in lowered or "gpu task aborted" in lowered:
        return GPUUnavailableError(text)
    if (
        fn == "multimodal_understanding"
        and not image_sent
        and text.strip() in {"AttributeError", "'AttributeError'"}
    ):
        return MissingImageError(
            "The Space's understanding function failed with AttributeError, its failure when "
            "it receives no image.",
            server_message=text,
        )
    message = f"{title}: {text}" if title and title.lower() != "error" else text
    return AppError(message, server_message=text)
