"""HTTP exchanges with the Space: status → typed error, bounded retries with backoff and jitter."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp

from .errors import (
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    ProtocolError,
    QueueFullError,
    RateLimitedError,
    SpaceUnavailableError,
    scrub_secrets,
)

logger = logging.getLogger("janus_space")

T = TypeVar("T")

__all__ = ["Backoff", "error_for_status", "retry_after_seconds", "with_retries"]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header as seconds (number or HTTP date); None when absent."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _detail(body: bytes) -> str:
    text = scrub_secrets(body[:2000].decode("utf-8", errors="replace").strip())
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:300] if text else ""
    if isinstance(decoded, Mapping) and "detail" in decoded:
        return str(decoded["detail"])[:300]
    if isinstance(decoded, Mapping) and "error" in decoded:
        return str(decoded["error"])[:300]
    return text[:300]


def error_for_status(status: int, headers: Mapping[str, str], body: bytes, what: str) -> JanusError:
    """The typed error for a non-2xx answer to ``what`` (e.g. "join", "config")."""
    detail = _detail(body)
    is_html = "html" in headers.get("Content-Type", "").lower() or body.lstrip()[:1] == b"<"
    if status == 429:
        return RateLimitedError(
            f"{what}: rate limited by the Space (HTTP 429)",
            retry_after=retry_after_seconds(headers),
        )
    if status == 503 and "queue is full" in detail.lower():
        return QueueFullError(f"{what}: the Space's queue is full ({detail})")
    if status >= 500 or (is_html and what == "config"):
        reason = "is not serving its app (sleeping, building or broken)" if is_html else "failed"
        return SpaceUnavailableError(f"{what}: the Space {reason} (HTTP {status})", status=status)
    if status in (401, 403):
        return SpaceUnavailableError(
            f"{what}: access denied (HTTP {status}); a private Space needs a token with access",
            status=status,
        )
    if what == "config" and (status == 404 or 300 <= status < 400):
        return SpaceUnavailableError(
            f"config: no Gradio app answers at this address (HTTP {status})", status=status
        )
    return ProtocolError(f"{what}: unexpected HTTP {status}: {detail}", status=status)


class Backoff:
    """Exponential backoff with full jitter, honouring a server's retry-after when it is larger."""

    def __init__(self, base: float = 0.5, cap: float = 8.0, max_wait: float = 60.0) -> None:
        self.base, self.cap, self.max_wait = base, cap, max_wait

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry ``attempt`` (0-based); None when waiting is pointless."""
        computed = min(self.cap, self.base * 2.0**attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            if retry_after > self.max_wait:
                return None
            return max(computed, retry_after)
        return computed


def translate_transport_error(exc: BaseException, what: str) -> JanusError:
    """aiohttp / asyncio exceptions → our typed errors (messages never include headers)."""
    if isinstance(exc, JanusError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return JanusTimeoutError(f"{what}: timed out")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ProtocolError(f"{what}: the connection broke off mid-response")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return JanusConnectionError(f"{what}: cannot connect to {exc.host}:{exc.port}")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return JanusConnectionError(f"{what}: the connection was closed ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return JanusConnectionError(f"{what}: {type(exc).__name__}")
    raise exc


def _retry_after(exc: JanusError) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


async def with_retries(
    attempt_fn: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_retries: int,
    backoff: Backoff,
    retry_if: Callable[[JanusError], bool] = lambda e: e.retryable,
) -> T:
    """Run ``attempt_fn``, retrying errors that ``retry_if`` allows up to ``max_retries`` times."""
    attempt = 0
    while True:
        try:
            return await attempt_fn()
        except (aiohttp.ClientError, asyncio.TimeoutError, JanusError) as raw:
            exc = translate_transport_error(raw, what)
            if attempt >= max_retries or not retry_if(exc):
                if exc is raw:
                    raise
                raise exc from None
            delay = backoff.delay(attempt, _retry_after(exc))
            if delay is None:
                raise exc from None
            logger.info(
                "%s failed (%s); retry %d/%d in %.2fs",
                what,
                type(exc).__name__,
                attempt + 1,
                max_retries,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1
