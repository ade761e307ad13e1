"""One retry policy: which failures are tried again, how often, and how long to wait between.

Every retry in the client goes through ``RetryPolicy.run``: requests (config, join, upload,
download) and re-joining a job that found no GPU. Quota errors are never retried here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from .errors import GPUUnavailableError, JanusError, ProtocolError, SpaceUnavailableError
from .http import translate_transport_error

logger = logging.getLogger("janus_space")

T = TypeVar("T")

__all__ = ["Backoff", "RetryPolicy"]


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


class RetryPolicy:
    """Bounded retries with backoff for the failures a step may retry.

    ``join`` is retried only on a gateway error (the Space may not have queued the job) and
    never on a 4xx; ``job`` (a finished job that found no GPU) only on ``GPUUnavailableError``;
    other steps on any retryable error.
    """

    def __init__(self, max_retries: int, backoff: Backoff | None = None) -> None:
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()

    def allows(self, error: JanusError, step: str) -> bool:
        """Whether ``error`` from ``step`` may be tried again at all."""
        if step == "job":
            return isinstance(error, GPUUnavailableError)
        if step == "join":
            if isinstance(error, SpaceUnavailableError):
                return error.status in (502, 503, 504)
            if isinstance(error, ProtocolError) and error.status and 400 <= error.status < 500:
                return False  # the same request would be refused again
        return error.retryable

    def delay(self, error: JanusError, step: str, attempt: int) -> float | None:
        """Seconds before retry ``attempt`` (0-based) of ``step``, or None: give up now."""
        if attempt >= self.max_retries or not self.allows(error, step):
            return None
        delay = self.backoff.delay(attempt, _retry_after(error))
        if delay is not None and step == "job":
            delay = max(delay, 1.0)
        return delay

    async def run(self, attempt_fn: Callable[[], Awaitable[T]], step: str) -> T:
        """Run ``attempt_fn`` with this policy's retries for ``step``."""
        attempt = 0
        while True:
            try:
                return await attempt_fn()
            except (aiohttp.ClientError, asyncio.TimeoutError, JanusError) as raw:
                exc = translate_transport_error(raw, step)
                delay = self.delay(exc, step, attempt)
                if delay is None:
                    if exc is raw:
                        raise
                    raise exc from None
                logger.info(
                    "%s failed (%s); retry %d/%d in %.2fs",
                    step,
                    type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                attempt += 1


def _retry_after(exc: JanusError) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None
