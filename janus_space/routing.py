"""What a ``JanusPool`` remembers about each endpoint: load, health, and whose quota is spent.

Pure bookkeeping, no I/O: the pool reports what happened (a call began or ended, an error,
what the Hub said) with the time, and asks which endpoints may take a call now. Keeping it
apart from the pool's streaming code makes every rule below readable in one place:

* **Which errors move a call on** (``classify``): only those that mean the job did not run —
  ZeroGPU quota, no GPU, a full queue, HTTP 429, a Space that is paused, broken or answering
  5xx, a refused connection, an endpoint refusing this caller (401/403). App errors and bad
  input would fail the same way anywhere, and a broken stream after the job started may have
  spent GPU time: they are raised as they are.
* **Quota belongs to the caller.** ZeroGPU quota is counted per identity (a token, or the IP
  of anonymous calls) across every ZeroGPU Space; one quota error marks every ZeroGPU endpoint
  called with that identity as spent until its retry time. A base URL is its own hardware.
* **Broken endpoints back off** (5 s, doubling to 5 min) and are tried again by one call at a
  time ("on probation") until one succeeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import (
    AccessDeniedError,
    GPUUnavailableError,
    JanusConnectionError,
    JanusError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    SpaceUnavailableError,
)
from .hub import FAILED_STAGES, STARTING_STAGES, is_zerogpu

if TYPE_CHECKING:
    from .auth import Secret
    from .client import JanusClient

__all__ = [
    "BROKEN_STAGES",
    "DOWN_BACKOFF_CAP",
    "DOWN_BACKOFF_START",
    "QUOTA_SKIP_DEFAULT",
    "WAKING_STAGES",
    "Disposition",
    "EndpointState",
    "QuotaMemory",
    "classify",
    "down_backoff",
    "identity_of",
]

Disposition = Literal["raise", "quota", "down", "busy", "limited"]
"""What a failed attempt means for the call: raise it, or move on (and why)."""

DOWN_BACKOFF_START = 5.0
DOWN_BACKOFF_CAP = 300.0
QUOTA_SKIP_DEFAULT = 600.0
"""Seconds a spent quota is skipped when the Space's message names no retry time."""
WAKING_STAGES = frozenset({"SLEEPING", *STARTING_STAGES})
"""Hub stages of a Space that will serve after a cold start (a request wakes a sleeping one)."""
BROKEN_STAGES = FAILED_STAGES
"""Hub stages of a Space that cannot answer until its owner acts."""
ZEROGPU_INFERRED = "zero-gpu (inferred from a quota error)"
"""The hardware a Space id is known to have once it refused a call for ZeroGPU quota."""


def classify(error: JanusError, *, started: bool) -> Disposition:
    """How a pool treats ``error`` from one endpoint; ``started``: the job had left the queue."""
    if isinstance(error, QuotaExceededError):
        return "quota"  # ZeroGPU refuses before the function runs
    if isinstance(error, (GPUUnavailableError, QueueFullError)):
        return "busy"
    if isinstance(error, RateLimitedError):
        return "limited"
    if isinstance(error, (SpaceUnavailableError, JanusConnectionError, AccessDeniedError)):
        # Before the job started nothing ran; after, it may have: never run it twice.
        return "raise" if started else "down"
    return "raise"


def down_backoff(failures: int) -> float:
    """Seconds an endpoint is skipped after its ``failures``-th failure in a row."""
    return float(min(DOWN_BACKOFF_START * 2 ** max(failures - 1, 0), DOWN_BACKOFF_CAP))


def identity_of(token: Secret | None) -> str:
    """Whose quota a call spends: a digest of the token (never the token), or ``anonymous``."""
    if token is None or not token:
        return "anonymous"
    return "token:" + hashlib.sha256(token.get().encode("utf-8")).hexdigest()[:16]


@dataclass
class EndpointState:
    """One endpoint of a pool: its client, its load and what the pool learned about it."""

    name: str
    order: int
    client: JanusClient
    space_id: str | None
    """The Space id when the endpoint is reached through the Hub (None for a base URL)."""
    identity: str
    cap: int | None
    """The endpoint's own ``max_concurrency`` (None: no limit)."""
    hardware: str | None = None
    """Known hardware: declared, from the Hub, or inferred; None when unknown."""
    declared_hardware: bool = False
    in_flight: int = 0
    skip_until: float = 0.0
    skip_error: JanusError | None = None
    failures: int = 0
    """Failures in a row; above zero the endpoint is on probation once its skip ends."""
    probed: bool = False
    """For a Space id: whether the Hub was asked about its stage since it last failed."""
    waking: bool = False
    """A cold start is under way: other endpoints are preferred until it ends."""

    @property
    def quota_group(self) -> tuple[str, str]:
        """The quota this endpoint spends: the identity's ZeroGPU quota, or its own."""
        if is_zerogpu(self.hardware):
            return ("zerogpu", self.identity)
        return ("endpoint", self.name)

    @property
    def needs_probe(self) -> bool:
        """A Space id the Hub has not been asked about (first use, or after a failure)."""
        return self.space_id is not None and not self.probed

    def has_room(self, now: float) -> bool:
        """Whether one more call fits: its own cap, or one trial call while on probation."""
        if self.failures and now >= self.skip_until:
            return self.in_flight < 1
        return self.cap is None or self.in_flight < self.cap

    def skip(self, until: float, error: JanusError) -> None:
        """Skip this endpoint until ``until`` (monotonic seconds) because of ``error``."""
        self.skip_until = max(self.skip_until, until)
        self.skip_error = error

    def succeeded(self) -> None:
        """A call went through: healthy again."""
        self.failures = 0
        self.skip_error = None
        self.skip_until = 0.0
        self.waking = False

    def went_down(self, now: float, error: JanusError) -> float:
        """Paused, broken or unreachable: back off (longer each time); returns the seconds."""
        self.failures += 1
        self.probed = False
        self.waking = False
        seconds = down_backoff(self.failures)
        self.skip(now + seconds, error)
        return seconds


@dataclass
class QuotaMemory:
    """When each spent quota comes back, and the error that said it was spent."""

    until: dict[tuple[str, str], tuple[float, QuotaExceededError]]

    @classmethod
    def empty(cls) -> QuotaMemory:
        """No quota known to be spent."""
        return cls({})

    def spent(self, endpoint: EndpointState, now: float) -> tuple[float, QuotaExceededError] | None:
        """(until, error) while the endpoint's quota is spent, else None."""
        entry = self.until.get(endpoint.quota_group)
        if entry is None:
            return None
        if entry[0] <= now:
            del self.until[endpoint.quota_group]
            return None
        return entry

    def record(self, endpoint: EndpointState, error: QuotaExceededError, now: float) -> float:
        """The endpoint refused for quota: mark its quota spent; returns the seconds skipped.

        A quota refusal proves a Space id runs on ZeroGPU, so its hardware is learned here when
        the Hub did not say; a base URL stays its own hardware unless declared otherwise.
        """
        if endpoint.space_id is not None and endpoint.hardware is None:
            endpoint.hardware = ZEROGPU_INFERRED
        seconds = error.retry_after if error.retry_after else QUOTA_SKIP_DEFAULT
        until = now + seconds
        previous = self.until.get(endpoint.quota_group)
        if previous is None or previous[0] < until:
            self.until[endpoint.quota_group] = (until, error)
        endpoint.failures = max(endpoint.failures, 1)  # one trial call when the window ends
        return seconds
