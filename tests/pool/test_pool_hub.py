"""JanusPool with Space ids: the Hub (a local stand-in) tells their stage and hardware.

The Space ids' own hosts (``*.hf.space``) cannot be reached here, so these tests show what the
pool does *without* calling them: a sleeping copy is left for the healthy replica while it
wakes, a paused one is skipped, and a ZeroGPU one is skipped when the caller's ZeroGPU quota
is known to be spent — all learned from the Hub.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from hub_server import HubStandIn, ScriptedSpace, running_hub
from huggingface_hub import constants
from pool_support import FAST, Replica

from janus_space import Failover, JanusPool


@pytest.fixture(autouse=True)
def anonymous(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No token of the user's (environment or ``hf auth login`` file), no proxy, no offline."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "JANUS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield
    huggingface_hub.close_session()


@pytest.fixture
def hub() -> Iterator[HubStandIn]:
    with running_hub() as stand_in:
        yield stand_in


def runtime_reads(hub: HubStandIn, space_id: str) -> int:
    return hub.calls().count(("GET", f"/api/spaces/{space_id}/runtime"))


async def drain(stream: AsyncIterator[Any]) -> tuple[list[Any], Any]:
    events: list[Any] = []
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        async for event in stream:
            events.append(event)
    return events[:-1], events[-1]


async def test_a_sleeping_copy_is_woken_while_others_serve(
    hub: HubStandIn, replicas: dict[str, Replica], tag: str
) -> None:
    hub.spaces["tester/asleep"] = ScriptedSpace(stages=["SLEEPING"], hardware="a10g-large")
    healthy = replicas["a"].url
    async with JanusPool(["tester/asleep", healthy], hub_url=hub.url, **FAST) as pool:
        events, result = await drain(pool.stream_understand(f"{tag} while it sleeps"))
        assert result.endpoint == healthy
        (move,) = [e for e in events if isinstance(e, Failover)]
        assert (move.endpoint, move.next_endpoint) == ("tester/asleep", healthy)
        assert "SLEEPING" in move.reason and "waking" in move.reason
        second = await pool.understand(f"{tag} again")
        assert second.endpoint == healthy
    assert runtime_reads(hub, "tester/asleep") == 1  # asked once; the wake-up is a request
    assert len(replicas["a"].calls(tag)) == 2


async def test_a_paused_copy_is_skipped_with_backoff(
    hub: HubStandIn, replicas: dict[str, Replica], tag: str
) -> None:
    hub.spaces["tester/paused"] = ScriptedSpace(stages=["PAUSED"], hardware="a10g-large")
    healthy = replicas["b"].url
    async with JanusPool(["tester/paused", healthy], hub_url=hub.url, **FAST) as pool:
        events, result = await drain(pool.stream_understand(f"{tag} one"))
        (move,) = [e for e in events if isinstance(e, Failover)]
        assert move.endpoint == "tester/paused" and "PAUSED" in move.reason
        assert move.retry_after == 5.0
        for index in range(3):
            assert (await pool.understand(f"{tag} {index}")).endpoint == healthy
    assert result.endpoint == healthy
    assert runtime_reads(hub, "tester/paused") == 1  # not asked again during its backoff


async def test_a_spent_zerogpu_quota_skips_every_zerogpu_endpoint_of_the_caller(
    hub: HubStandIn, replicas: dict[str, Replica], tag: str
) -> None:
    """The quota'd replica is declared ZeroGPU; the Hub says the copy is ZeroGPU too."""
    hub.spaces["tester/zero-copy"] = ScriptedSpace(stages=["RUNNING"], hardware="zero-a10g")
    quota, healthy = replicas["quota"].url, replicas["a"].url
    endpoints = [quota, "tester/zero-copy", healthy]
    hardware = {quota: "zero-a10g"}
    async with JanusPool(endpoints, hardware=hardware, hub_url=hub.url, **FAST) as pool:
        events, result = await drain(pool.stream_understand(f"{tag} quota"))
        moves = [e for e in events if isinstance(e, Failover)]
        assert [(m.endpoint, m.next_endpoint) for m in moves] == [
            (quota, healthy),
            ("tester/zero-copy", healthy),
        ]
        # The copy was never called (its host is unreachable here): the spent quota skipped it.
        assert all(m.reason.startswith("QuotaExceededError") for m in moves)
        assert moves[1].retry_after is not None and 0 < moves[1].retry_after <= 7.0
        events, again = await drain(pool.stream_understand(f"{tag} again"))
        assert [e for e in events if isinstance(e, Failover)] == []
    assert result.endpoint == again.endpoint == healthy
    assert runtime_reads(hub, "tester/zero-copy") == 1
    assert len(replicas["quota"].calls(tag)) == 1


async def test_base_urls_are_never_looked_up(
    hub: HubStandIn, replicas: dict[str, Replica], tag: str
) -> None:
    """A base URL counts as its own hardware: its quota error skips it alone, no Hub call."""
    quota, healthy = replicas["quota"].url, replicas["b"].url
    async with JanusPool([quota, healthy], hub_url=hub.url, **FAST) as pool:
        result = await pool.understand(f"{tag} no hub needed for base URLs")
    assert result.endpoint == healthy
    assert hub.calls() == []  # base URLs are never looked up
