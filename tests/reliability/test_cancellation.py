"""Cancelling a call or abandoning its stream tells the Space to cancel the job; nothing leaks.

The fault server records every ``POST /gradio_api/cancel`` it receives, so each test checks
that the Space was told, for the right job (``event_id``, ``fn_index``, ``session_hash``). The
replica (a real Gradio app, one job at a time per function) shows it from the outside: a
cancelled slow job frees the function for the next call at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from janus_space import (
    JanusClient,
    JanusError,
    JanusTimeoutError,
    Message,
    Queued,
    UnderstandingResult,
)

from .conftest import bounded, wait_until
from .fault_server import GENERATE_FN, UNDERSTAND_FN, FaultServer

MakeClient = Callable[..., JanusClient]


def joined(client: JanusClient, count: int = 1) -> Callable[[], bool]:
    """True once the client holds ``count`` jobs' event ids (their joins were answered)."""
    return lambda: (
        client._connection.queue is not None and len(client._connection.queue._jobs) == count
    )


def only_job(server: FaultServer) -> str:
    (event_id,) = server.jobs
    return event_id


def assert_cancelled(server: FaultServer, client: JanusClient, fn_index: int) -> None:
    event_id = only_job(server)
    assert len(server.cancels) == 1, server.cancels
    cancel = server.cancels[0]
    assert cancel["event_id"] == event_id
    assert cancel["fn_index"] == fn_index
    # The cancel names the session the job was joined on (each job has a session of its own).
    assert cancel["session_hash"] == server.jobs[event_id].session


async def test_call_cancelled_by_wait_for_cancels_the_job(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.understand("[hang] q"), 0.5)
        await wait_until(lambda: bool(fault_server.cancels), 3)
        assert_cancelled(fault_server, client, UNDERSTAND_FN)


async def test_task_cancel_cancels_a_generation(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        task = asyncio.create_task(client.generate("[hang] a cat"))
        await wait_until(joined(client), 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task, 3)
        await wait_until(lambda: bool(fault_server.cancels), 3)
        assert_cancelled(fault_server, client, GENERATE_FN)
        assert fault_server.count("file") == 0


async def test_call_timeout_cancels_the_job(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    started = time.monotonic()
    async with make_client(fault_server.url, timeout=0.8, idle_timeout=10) as client:
        with pytest.raises(JanusTimeoutError, match="did not finish"):
            await bounded(client.understand("[hang] q"), 4)
        assert time.monotonic() - started < 2.5
        assert_cancelled(fault_server, client, UNDERSTAND_FN)  # sent before the call returned


async def test_chat_cancelled_cancels_the_job(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    messages = [Message("system", "be brief"), Message("user", "[hang] hi")]
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        task = asyncio.create_task(client.chat(messages))
        await wait_until(joined(client), 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task, 3)
        await wait_until(lambda: bool(fault_server.cancels), 3)
        assert_cancelled(fault_server, client, UNDERSTAND_FN)


async def test_abandoned_stream_cancels_the_job_and_the_stream_closes(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        stream = client.stream_understand("[hang] q")
        first = await bounded(stream.__anext__(), 3)
        assert isinstance(first, Queued)
        await stream.aclose()
        await wait_until(lambda: bool(fault_server.cancels), 3)
        assert_cancelled(fault_server, client, UNDERSTAND_FN)
        # The event stream ends too (the server closes it once nothing is pending).
        await wait_until(lambda: fault_server.open_streams == 0, 3)


async def test_closed_stream_has_cancelled_the_job_when_aclose_returns(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        stream = client.stream_understand("[hang] q")
        await bounded(stream.__anext__(), 3)
        await stream.aclose()
        assert len(fault_server.cancels) == 1


async def test_stream_closed_just_before_the_client_still_cancels(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        stream = client.stream_generate("[hang] a cat")
        await bounded(stream.__anext__(), 3)
        await stream.aclose()
    await asyncio.sleep(0.2)
    assert len(fault_server.cancels) == 1


async def test_stream_left_by_break_is_cancelled_by_the_finalizer(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async def first_event(client: JanusClient) -> Any:
        async for event in client.stream_understand("[hang] q"):
            return event  # leaves the generator unfinished; Python finalizes it
        return None

    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        assert isinstance(await bounded(first_event(client), 3), Queued)
        gc.collect()
        await wait_until(lambda: bool(fault_server.cancels), 3)
        assert_cancelled(fault_server, client, UNDERSTAND_FN)


async def test_cancelling_one_call_leaves_the_other_untouched(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, timeout=5, idle_timeout=10) as client:
        doomed = asyncio.create_task(client.understand("[hang] doomed"))
        survivor = asyncio.create_task(client.understand("[slow:10] survivor"))
        await wait_until(joined(client, 2), 3)
        doomed.cancel()
        result = await bounded(survivor, 5)
        with pytest.raises(asyncio.CancelledError):
            await doomed
    assert result.text == "answer: [slow:10] survivor"
    assert len(fault_server.cancels) == 1
    doomed_job = next(j for j in fault_server.jobs.values() if "doomed" in j.text)
    assert fault_server.cancels[0]["event_id"] == doomed_job.event_id


async def test_cancel_during_join_cancels_the_queued_job(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.join_delay = 0.5  # the Space has queued the job; its answer is on the way
    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        task = asyncio.create_task(client.understand("[hang] q"))
        await wait_until(lambda: bool(fault_server.jobs), 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task, 3)
        await asyncio.sleep(0.8)
    assert [c["event_id"] for c in fault_server.cancels] == [only_job(fault_server)]


async def test_closing_the_client_cancels_pending_jobs(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    client = make_client(fault_server.url, timeout=30, idle_timeout=10)
    task = asyncio.create_task(client.understand("[hang] q"))
    await wait_until(joined(client), 3)
    await client.aclose()
    with pytest.raises(JanusError):
        await bounded(task, 3)
    assert len(fault_server.cancels) == 1


async def test_closing_the_client_ends_pending_calls_and_streams(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    client = make_client(fault_server.url, timeout=30, idle_timeout=10)
    tasks = [asyncio.create_task(client.understand(f"[hang] {i}")) for i in range(3)]
    await wait_until(joined(client, 3), 3)
    await bounded(client.aclose(), 3)
    for task in tasks:
        with pytest.raises(JanusError, match="closed"):
            await bounded(task, 3)
    assert client.closed
    await wait_until(lambda: fault_server.open_streams == 0, 3)
    with pytest.raises(JanusError, match="closed"):
        await client.understand("after close")


async def test_timed_out_slow_job_frees_the_replica(replica_url: str) -> None:
    """Gradio runs one job of a function at a time: a job left running would block the next."""
    async with JanusClient(base_url=replica_url, timeout=0.6, max_retries=1) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("[slow:40] four seconds of work"), 5)
    started = time.monotonic()
    async with JanusClient(base_url=replica_url, timeout=10, max_retries=1) as client:
        result = await bounded(client.understand("next"), 10)
    assert "question='next'" in result.text
    assert time.monotonic() - started < 2.0  # the cancelled job no longer holds the slot


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_many_cancellations_leak_nothing(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async def cancel_round(round_: int) -> None:
        calls = [asyncio.create_task(client.understand(f"[hang] {round_}/{i}")) for i in range(10)]
        # Wait until the client holds all ten event ids (a call cancelled while its join is in
        # flight is another case: test_cancel_during_join_cancels_the_queued_job).
        await wait_until(joined(client, 10), 3)
        for call in calls:
            call.cancel()
        for call in calls:
            with contextlib.suppress(asyncio.CancelledError):
                await bounded(call, 3)
        await wait_until(lambda: len(fault_server.cancels) == 10 * (round_ + 1), 5)
        await wait_until(lambda: fault_server.open_streams == 0, 3)

    async with make_client(fault_server.url, timeout=30, idle_timeout=10) as client:
        await cancel_round(0)  # warm up: the connection pool fills (client and server ends)
        fds, tasks = open_fds(), len(asyncio.all_tasks())
        for round_ in range(1, 11):
            await cancel_round(round_)
        result = await bounded(client.understand("still fine"), 5)
        assert isinstance(result, UnderstandingResult)
        await wait_until(lambda: fault_server.open_streams == 0, 3)
        queue = client._connection.queue
        assert queue is not None and queue.pending == 0 and not queue._early
        await asyncio.sleep(0.05)
        # Flat: 100 cancelled calls later, at most two pooled keep-alive connections more (both
        # ends live in this process) — a leak would be one or more per cancelled call.
        assert open_fds() <= fds + 4
        assert len(asyncio.all_tasks()) <= tasks
    assert {c["event_id"] for c in fault_server.cancels} == {
        e for e, j in fault_server.jobs.items() if "[hang]" in j.text
    }
