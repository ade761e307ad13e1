"""A middlebox that cuts the event stream early: reopened a few times with backoff, then an error.

The fault server's ``cut`` stream fault acts like a proxy that lets a job's ``estimation`` and
``process_starts`` through and then closes the stream, again on every reopen. Before, the
client reopened it about 4,000 times a second until the call's timeout (300 s by default).
Every figure here is counted at the server: the streams it was asked for, the cancels it got.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from reliability.conftest import bounded
from reliability.fault_server import FaultServer, StreamFault, running_fault_server

from janus_space import JanusClient, ProtocolError
from janus_space.queue import MAX_FRUITLESS_REOPENS

SPEC_BOUND_SECONDS = 15.0  # issue 10: an error within 15 s with the default timeout
SPEC_MAX_REOPENS = 10


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with running_fault_server() as fault_server:
        yield fault_server


def stream_opens(server: FaultServer) -> list[float]:
    return [r.at for r in server.of("data")]


async def test_a_stream_cut_on_every_reopen_fails_after_a_few_reopens(server: FaultServer) -> None:
    server.fail_stream(StreamFault("cut", times=None))
    async with JanusClient(base_url=server.url) as client:  # the default 300 s timeout
        with pytest.raises(ProtocolError) as caught:
            await bounded(client.understand("hello"), SPEC_BOUND_SECONDS)
    reopens = server.count("data") - 1
    assert 1 <= reopens <= SPEC_MAX_REOPENS
    assert reopens == MAX_FRUITLESS_REOPENS  # each reopen brought the same two messages again
    message = str(caught.value)
    assert "event stream" in message and "cut" in message
    assert f"{reopens} reopenings" in message  # the count the server saw, named in the error
    # The job is given up on the Space too.
    assert [c["event_id"] for c in server.cancels] == list(server.jobs)


async def test_reopens_are_spaced_by_a_growing_backoff(server: FaultServer) -> None:
    server.fail_stream(StreamFault("cut", times=None))
    async with JanusClient(base_url=server.url) as client:
        with pytest.raises(ProtocolError):
            await bounded(client.understand("spacing"), SPEC_BOUND_SECONDS)
    opens = stream_opens(server)
    gaps = [later - earlier for earlier, later in itertools.pairwise(opens)]
    # Lower bounds only (a loaded machine makes gaps longer, never shorter): the backoff starts
    # at 0.1 s and doubles, with jitter of at most half.
    assert len(gaps) == MAX_FRUITLESS_REOPENS
    assert all(gap >= 0.1 * 2**i * 0.95 for i, gap in enumerate(gaps)), gaps


@pytest.mark.parametrize("calls", [1, 3, 8])
async def test_concurrent_calls_behind_the_cutting_middlebox_each_stop(
    server: FaultServer, calls: int
) -> None:
    server.fail_stream(StreamFault("cut", times=None))
    async with JanusClient(base_url=server.url) as client:
        outcomes = await bounded(
            asyncio.gather(
                *(client.understand(f"call {i}") for i in range(calls)), return_exceptions=True
            ),
            SPEC_BOUND_SECONDS,
        )
    assert all(isinstance(o, ProtocolError) and "cut" in str(o) for o in outcomes), outcomes
    # One stream per call and its reopenings, whatever the number of calls.
    assert server.count("data") == calls * (1 + MAX_FRUITLESS_REOPENS)
    assert len(server.cancels) == calls


@pytest.mark.parametrize("cuts", [1, MAX_FRUITLESS_REOPENS])
async def test_a_stream_cut_a_few_times_then_healthy_completes(
    server: FaultServer, cuts: int
) -> None:
    server.fail_stream(StreamFault("cut", times=cuts))
    async with JanusClient(base_url=server.url) as client:
        result = await bounded(client.understand("patience"), SPEC_BOUND_SECONDS)
    assert result.text == "answer: patience"
    assert server.count("data") == cuts + 1
    assert server.cancels == []
