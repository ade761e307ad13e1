"""Exit codes of ``janus-space`` and the one-line message each error is shown with.

Scripts branch on the exit code, so every ``janus_space`` error maps to exactly one code by
what the user can do about it: fix the input (2), wait for the quota (3), wait for the Space
(4), check the network (5), change the request (6), or fix the credentials (7).
"""

from __future__ import annotations

import datetime
import re
import sys
import time
from typing import Any

from janus_space import (
    AccessDeniedError,
    AppError,
    GPUUnavailableError,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    MissingImageError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    SpaceUnavailableError,
)

__all__ = [
    "EXIT_ACCESS",
    "EXIT_APP",
    "EXIT_CODES",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_QUOTA",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "describe_error",
    "error_record",
    "exit_code_for",
    "format_wait",
    "interrupted_record",
    "retry_after",
    "usage_record",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_QUOTA = 3
EXIT_UNAVAILABLE = 4
EXIT_NETWORK = 5
EXIT_APP = 6
EXIT_ACCESS = 7
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "other failure (a missing optional dependency, the replica did not start)",
    EXIT_USAGE: "bad input: arguments, image files, parameter ranges, a prompt too long for "
    "the context, a local model not found (InvalidInputError, PromptTooLongError); or the Hub "
    "refused the request: no such Space, a name taken (HubError)",
    EXIT_QUOTA: "ZeroGPU quota used up or rate limited: retry after the time printed "
    "(QuotaExceededError, RateLimitedError)",
    EXIT_UNAVAILABLE: "the Space cannot serve now: asleep, building, paused, queue full, no GPU "
    "(SpaceUnavailableError, QueueFullError, GPUUnavailableError)",
    EXIT_NETWORK: "network or timeout: host unreachable, connection dropped, stream cut off "
    "(JanusConnectionError, JanusTimeoutError, ProtocolError)",
    EXIT_APP: "the Space's function failed or lost its result, or the local model ran out "
    "of memory (AppError, MissingImageError, ResultUnavailableError, OutOfMemoryError)",
    EXIT_ACCESS: "access denied: a private Space or a wrong or missing token "
    "(AccessDeniedError); the message says whether a token was sent",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); the job on the Space was cancelled",
}

_TRY_AGAIN = re.compile(r"\s*try again in\s+[\d:]+\.?", re.IGNORECASE)

# Most specific first: the first matching class decides.
_CODES: tuple[tuple[type[JanusError], int, str], ...] = (
    (InvalidInputError, EXIT_USAGE, "bad input"),
    (AccessDeniedError, EXIT_ACCESS, "access denied"),
    (QuotaExceededError, EXIT_QUOTA, "quota exceeded"),
    (RateLimitedError, EXIT_QUOTA, "rate limited"),
    (SpaceUnavailableError, EXIT_UNAVAILABLE, "Space unavailable"),
    (QueueFullError, EXIT_UNAVAILABLE, "Space busy"),
    (GPUUnavailableError, EXIT_UNAVAILABLE, "no GPU"),
    (JanusTimeoutError, EXIT_NETWORK, "timeout"),
    (JanusConnectionError, EXIT_NETWORK, "connection failed"),
    (ProtocolError, EXIT_NETWORK, "broken answer"),
    (MissingImageError, EXIT_APP, "Space error"),
    (AppError, EXIT_APP, "Space error"),
    (ResultUnavailableError, EXIT_APP, "result lost"),
)


def _lazy_kind(error: BaseException) -> tuple[int, str] | None:
    """Codes of errors from modules the CLI does not import itself (the Hub, the local model);
    such an error exists only once its module is loaded, so nothing is imported here."""
    hub = sys.modules.get("janus_space.hub")
    if hub is not None and isinstance(error, hub.HubError):
        if error.status is None or error.status >= 500:
            return EXIT_UNAVAILABLE, "the Hub failed"
        return EXIT_USAGE, "the Hub refused"
    local = sys.modules.get("janus_space.local.errors")
    if local is not None:
        if isinstance(error, local.ModelNotFoundError):
            return EXIT_USAGE, "model not found"
        if isinstance(error, local.OutOfMemoryError):
            return EXIT_APP, "out of memory"
        if isinstance(error, local.LocalSetupError):
            return EXIT_FAILURE, "local setup"
    return None


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for ``error`` (1 for anything unexpected)."""
    lazy = _lazy_kind(error)
    if lazy is not None:
        return lazy[0]
    for kind, code, _ in _CODES:
        if isinstance(error, kind):
            return code
    return EXIT_FAILURE


def _label(error: BaseException) -> str:
    lazy = _lazy_kind(error)
    if lazy is not None:
        return lazy[1]
    for kind, _, label in _CODES:
        if isinstance(error, kind):
            return label
    return "error"


def format_wait(seconds: float, *, now: float | None = None) -> str:
    """``0:02:05 (at 14:32:10)``: a wait both as a duration and as a local clock time."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    at = datetime.datetime.fromtimestamp((time.time() if now is None else now) + whole)
    return f"{hours}:{minutes:02d}:{secs:02d} (at {at:%H:%M:%S})"


def _hint(error: BaseException, *, token_set: bool, base_url: str | None) -> str | None:
    if isinstance(error, QuotaExceededError) and not token_set and base_url is None:
        return "set HF_TOKEN or run `hf auth login` to use your Hugging Face account's quota"
    if isinstance(error, QuotaExceededError):
        return "for more capacity: `janus-space duplicate --hardware l4x1`, then --endpoint"
    if (
        isinstance(error, JanusConnectionError)
        and base_url
        and ("127.0.0.1" in base_url or "localhost" in base_url)
    ):
        return "is the replica running? start it with `janus-space replica --background`"
    if isinstance(error, JanusTimeoutError) and "the Hub" not in str(error):
        return "raise --timeout; a cold Space can take minutes to start"
    if isinstance(error, SpaceUnavailableError) and error.stage and error.stage not in str(error):
        return f"the Space is {error.stage}"
    return None


def retry_after(error: BaseException) -> float | None:
    """The server's retry-after in seconds, for the errors that carry one."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


def describe_error(
    error: BaseException, *, token_set: bool = False, base_url: str | None = None
) -> str:
    """One line for stderr: what went wrong, when to retry, and a hint when there is one."""
    message = str(error).strip() or type(error).__name__
    if isinstance(error, QuotaExceededError) and "fails fast" in message:
        message = message.split(" (this client fails fast", 1)[0]
    line = f"janus-space: {_label(error)}: {message}"
    wait = retry_after(error)
    if wait is not None and isinstance(error, (QuotaExceededError, RateLimitedError)):
        line = _TRY_AGAIN.sub("", line).rstrip(" .") + f"; retry in {format_wait(wait)}"
    hint = _hint(error, token_set=token_set, base_url=base_url)
    if hint:
        line += f" ({hint})"
    return " ".join(line.split())  # one line, whatever the server's text held


def usage_record(message: str) -> dict[str, Any]:
    """The ``--json`` form of a usage error (what argparse printed on stderr)."""
    return {
        "error": {
            "type": "UsageError",
            "message": " ".join(message.split()),
            "exit_code": EXIT_USAGE,
            "retry_after": None,
        }
    }


def interrupted_record(message: str) -> dict[str, Any]:
    """The ``--json`` form of a Ctrl-C: what was stopped, exit code 130."""
    return {
        "error": {
            "type": "KeyboardInterrupt",
            "message": message,
            "exit_code": EXIT_INTERRUPTED,
            "retry_after": None,
        }
    }


def error_record(error: BaseException) -> dict[str, Any]:
    """The ``--json`` form of an error: type, message, exit code and retry-after."""
    return {
        "error": {
            "type": type(error).__name__,
            "message": " ".join(str(error).split()),
            "exit_code": exit_code_for(error),
            "retry_after": retry_after(error),
        }
    }
