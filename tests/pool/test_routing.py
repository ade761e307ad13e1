"""The pool's memory (janus_space.routing): which errors move a call on, whose quota is spent."""

from __future__ import annotations

import pytest

from janus_space import (
    AppError,
    GPUUnavailableError,
    InvalidInputError,
    JanusClient,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    MissingImageError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    Secret,
    SpaceUnavailableError,
)
from janus_space.errors import AccessDeniedError
from janus_space.routing import (
    DOWN_BACKOFF_CAP,
    EndpointState,
    QuotaMemory,
    classify,
    down_backoff,
    identity_of,
)

NEVER_MOVED = [
    AppError("bad"),
    MissingImageError("no image"),
    InvalidInputError("bad input"),
    ProtocolError("cut off"),
    JanusTimeoutError("slow"),
    ResultUnavailableError("gone"),
    JanusError("closed"),
]
MOVED_BEFORE_START = [
    SpaceUnavailableError("paused", status=503),
    JanusConnectionError("refused"),
    AccessDeniedError("denied", status=403),
]
ALWAYS_MOVED = {
    QuotaExceededError("quota", retry_after=7): "quota",
    GPUUnavailableError("no gpu"): "busy",
    QueueFullError("full"): "busy",
    RateLimitedError("429", retry_after=3): "limited",
}


@pytest.mark.parametrize("started", [False, True])
def test_which_errors_move_a_call_on(started: bool) -> None:
    for error in NEVER_MOVED:
        assert classify(error, started=started) == "raise", error
    for error in MOVED_BEFORE_START:  # once the job started it may have run: never twice
        assert classify(error, started=started) == ("raise" if started else "down"), error
    for error, disposition in ALWAYS_MOVED.items():
        assert classify(error, started=started) == disposition, error


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = [down_backoff(n) for n in range(1, 12)]
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert delays == sorted(delays) and delays[-1] == DOWN_BACKOFF_CAP


def test_identity_is_a_digest_of_the_token() -> None:
    token = "hf_" + "a" * 30
    assert identity_of(None) == identity_of(Secret("")) == "anonymous"
    assert identity_of(Secret(token)) == identity_of(Secret(token))
    assert identity_of(Secret(token)) != identity_of(Secret("hf_" + "b" * 30))
    assert token not in identity_of(Secret(token)) and "a" * 16 not in identity_of(Secret(token))


def endpoint(
    name: str, *, identity: str = "anonymous", hardware: str | None = None
) -> EndpointState:
    space_id = None if name.startswith("http") else name
    client = JanusClient(base_url=name) if space_id is None else JanusClient(name)
    return EndpointState(
        name, 0, client, space_id=space_id, identity=identity, cap=None, hardware=hardware
    )


def test_a_spent_zerogpu_quota_is_the_callers_across_zerogpu_endpoints() -> None:
    memory = QuotaMemory.empty()
    public = endpoint("deepseek-ai/Janus-Pro-7B", hardware="zero-a10g")
    mine = endpoint("you/zero-copy", hardware="zero-a10g")
    other_user = endpoint("them/zero-copy", identity="token:1234", hardware="zero-a10g")
    dedicated = endpoint("you/a10g-copy", hardware="a10g-large")
    self_hosted = endpoint("http://127.0.0.1:9")
    error = QuotaExceededError("spent", retry_after=60)
    assert memory.record(public, error, now=100.0) == 60
    assert memory.spent(mine, 130.0) == (160.0, error)
    assert memory.spent(public, 130.0) == (160.0, error)
    for free in (other_user, dedicated, self_hosted):
        assert memory.spent(free, 130.0) is None
    assert memory.spent(mine, 160.0) is None and memory.spent(public, 161.0) is None


def test_a_quota_error_teaches_a_space_ids_hardware_not_a_base_urls() -> None:
    memory = QuotaMemory.empty()
    unknown = endpoint("you/unknown")
    url = endpoint("http://127.0.0.1:9")
    neighbour = endpoint("http://127.0.0.1:8")
    memory.record(unknown, QuotaExceededError("spent"), now=0.0)  # no retry time: 10 minutes
    assert unknown.hardware is not None and unknown.hardware.startswith("zero-")
    assert memory.spent(unknown, 599.0) is not None and memory.spent(unknown, 600.0) is None
    memory.record(url, QuotaExceededError("spent", retry_after=5), now=0.0)
    assert url.hardware is None
    assert memory.spent(url, 1.0) is not None and memory.spent(neighbour, 1.0) is None


def test_probation_lets_one_call_through_after_a_failure() -> None:
    state = endpoint("http://127.0.0.1:9")
    state.cap = 4
    seconds = state.went_down(10.0, SpaceUnavailableError("paused"))
    assert seconds == 5.0 and state.skip_until == 15.0
    state.in_flight = 1
    assert not state.has_room(16.0)  # one trial call at a time
    state.in_flight = 0
    assert state.has_room(16.0)
    state.succeeded()
    state.in_flight = 3
    assert state.has_room(16.0) and state.failures == 0
