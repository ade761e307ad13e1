"""JanusPool on several real replica processes at once: routing, failover, what each Space ran."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pool_support import FAST, FaultyHost, Replica

from janus_space import (
    AppError,
    Failover,
    GPUUnavailableError,
    InvalidInputError,
    JanusClient,
    JanusConnectionError,
    JanusPool,
    Queued,
    QuotaExceededError,
    SpaceUnavailableError,
    Started,
    UnderstandingResult,
)
from janus_space.replica import parse_understanding_report, read_generation_report


async def drain(stream: AsyncIterator[Any]) -> tuple[list[Any], Any]:
    """Every event of a call's stream, and its last item (the result)."""
    events: list[Any] = []
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        async for event in stream:
            events.append(event)
    return events[:-1], events[-1]


def failovers(events: list[Any]) -> list[Failover]:
    return [event for event in events if isinstance(event, Failover)]


async def test_quota_and_paused_endpoints_are_left_and_retried_once_per_window(
    replicas: dict[str, Replica], paused: FaultyHost, tag: str
) -> None:
    quota, healthy = replicas["quota"], replicas["a"]
    async with JanusPool([quota.url, paused.url, healthy.url], **FAST) as pool:
        events, first = await drain(pool.stream_understand(f"{tag} q0"))
        moves = failovers(events)
        assert [(m.endpoint, m.next_endpoint) for m in moves] == [
            (quota.url, paused.url),
            (paused.url, healthy.url),
        ]
        assert moves[0].reason.startswith("QuotaExceededError: You have exceeded your GPU quota")
        assert moves[0].retry_after is not None and 6.0 < moves[0].retry_after <= 7.0
        assert moves[1].reason.startswith("SpaceUnavailableError")
        assert moves[1].retry_after == 5.0  # the first backoff
        answers = [first]
        for index in range(1, 6):
            events, result = await drain(pool.stream_understand(f"{tag} q{index}"))
            assert failovers(events) == []  # both skipped from memory: no request, no failover
            answers.append(result)
        assert [a.endpoint for a in answers] == [healthy.url] * 6
        questions = [parse_understanding_report(a.text).question for a in answers]
        assert questions == [f"{tag} q{i}" for i in range(6)]
        assert len(quota.calls(tag)) == 1
        assert paused.requests == ["GET /config"]
        assert [entry["text"] for entry in healthy.calls(tag)] == questions

        await asyncio.sleep(moves[0].retry_after + 0.5)  # both windows have passed
        for index in range(6, 9):
            result = await pool.understand(f"{tag} q{index}")
            assert result.endpoint == healthy.url
        assert len(quota.calls(tag)) == 2  # once per retry window
        assert paused.requests == ["GET /config"] * 2  # re-probed once after its backoff


async def test_slow_jobs_run_in_parallel_on_two_single_worker_replicas(
    replicas: dict[str, Replica], tag: str
) -> None:
    a, b = replicas["a"], replicas["b"]
    async with JanusPool([a.url, b.url], **FAST) as pool:
        questions = [f"{tag} job{i} [slow:5]" for i in range(4)]
        results = await asyncio.gather(*(pool.understand(q) for q in questions))
    assert Counter(r.endpoint for r in results) == {a.url: 2, b.url: 2}
    took = {parse_understanding_report(r.text).question: r.duration for r in results}
    spans: dict[str, list[tuple[float, float]]] = {}
    for replica in (a, b):
        runs = replica.calls(tag)
        assert len(runs) == 2
        spans[replica.url] = [(run["at"], run["at"] + (took[run["text"]] or 0.0)) for run in runs]
    # In the replicas' own clocks, a job on one ran while a job on the other did.
    assert any(
        start_a < end_b and start_b < end_a
        for start_a, end_a in spans[a.url]
        for start_b, end_b in spans[b.url]
    )


async def test_a_full_endpoint_is_waited_for_not_oversubscribed(
    replicas: dict[str, Replica], tag: str
) -> None:
    """Both endpoints take one call at a time: the long job holds ``a``, so while it runs every
    short call waits for a free place and gets ``b`` (never a place behind the long job)."""
    a, b = replicas["a"], replicas["b"]
    clients = [JanusClient(base_url=r.url, max_concurrency=1, **FAST) for r in (a, b)]
    async with JanusPool(clients) as pool:
        calls = [drain(pool.stream_understand(f"{tag} long [slow:15]"))]
        calls += [drain(pool.stream_understand(f"{tag} short{i}")) for i in range(3)]
        outcomes = await asyncio.gather(*calls)
    served = [result.endpoint for _, result in outcomes]
    assert served == [a.url, b.url, b.url, b.url]
    ranks = [e.rank for events, _ in outcomes for e in events if isinstance(e, Queued)]
    assert ranks and all(rank == 0 for rank in ranks)  # no job waited in a replica's queue
    assert [c["text"] for c in a.calls(tag)] == [f"{tag} long [slow:15]"]
    assert len(b.calls(tag)) == 3


async def test_an_app_error_is_one_request_in_total(replicas: dict[str, Replica], tag: str) -> None:
    a, b = replicas["a"], replicas["b"]
    async with JanusPool([a.url, b.url], **FAST) as pool:
        seen: list[Any] = []
        with pytest.raises(AppError, match="Something bad happened"):
            async for event in pool.stream_understand(f"{tag} [apperror]"):
                seen.append(event)
        assert failovers(seen) == []
        with pytest.raises(AppError):
            await pool.generate(f"{tag} drawing [apperror]")
    assert len(a.calls(tag)) + len(b.calls(tag)) == 2


async def test_all_exhausted_raises_the_quota_error_that_frees_first(
    replicas: dict[str, Replica], rate_limited: FaultyHost, tag: str
) -> None:
    quota = replicas["quota"]
    async with JanusPool([quota.url, rate_limited.url], **FAST) as pool:
        seen: list[Any] = []
        with pytest.raises(QuotaExceededError) as first:
            async for event in pool.stream_understand(f"{tag} one"):
                seen.append(event)
        assert [(m.endpoint, m.next_endpoint) for m in failovers(seen)] == [
            (quota.url, rate_limited.url)
        ]
        assert first.value.retry_after is not None and 0 < first.value.retry_after <= 7.0
        assert quota.url in str(first.value)
        assert len(quota.calls(tag)) == 1 and len(rate_limited.requests) == 1

        with pytest.raises(QuotaExceededError) as second:  # both skipped: no request at all
            await pool.understand(f"{tag} two")
        assert second.value.retry_after is not None
        assert 0 < second.value.retry_after <= first.value.retry_after
        assert len(quota.calls(tag)) == 1 and len(rate_limited.requests) == 1


async def test_all_down_raises_the_error_of_the_first_to_come_back(
    paused: FaultyHost, refused: str
) -> None:
    async with JanusPool([paused.url, refused], **FAST) as pool:
        seen: list[Any] = []
        with pytest.raises(SpaceUnavailableError) as raised:
            async for event in pool.stream_understand("anyone there?"):
                seen.append(event)
        assert paused.url in str(raised.value)
        assert [(m.endpoint, m.next_endpoint) for m in failovers(seen)] == [(paused.url, refused)]
        with pytest.raises(SpaceUnavailableError):
            await pool.understand("and now?")
        # Bad input says so, even while no endpoint can take a call.
        with pytest.raises(InvalidInputError, match="temperature"):
            await pool.understand("and now?", temperature=2.0)
        with pytest.raises(InvalidInputError, match="conversation is empty"):
            await pool.chat([])
        with pytest.raises(InvalidInputError, match="guidance"):
            await pool.generate("a cat", guidance=0.0)
    assert paused.requests == ["GET /config"]


async def test_connection_refused_is_left_for_the_next(
    replicas: dict[str, Replica], refused: str, tag: str
) -> None:
    healthy = replicas["b"]
    async with JanusPool([refused, healthy.url], **FAST) as pool:
        events, result = await drain(pool.stream_generate(f"{tag} a red cube"))
    assert result.endpoint == healthy.url
    assert read_generation_report(result.images[0].data).prompt_crc32 is not None
    (move,) = failovers(events)
    assert move.endpoint == refused and move.next_endpoint == healthy.url
    assert move.reason.startswith(JanusConnectionError.__name__)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_no_leaks_over_many_pools(
    replicas: dict[str, Replica], paused: FaultyHost, tag: str
) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def one_pool(index: int) -> UnderstandingResult:
        async with JanusPool([paused.url, replicas["a"].url, replicas["b"].url], **FAST) as pool:
            first, second = await asyncio.gather(
                pool.understand(f"{tag} {index}a"), pool.understand(f"{tag} {index}b")
            )
            assert first.endpoint != paused.url and second.endpoint != paused.url
            return first

    await one_pool(-1)  # warm up: imports, the replicas' first answers
    fds, tasks = open_fds(), len(asyncio.all_tasks())
    for index in range(12):
        await one_pool(index)
    await asyncio.sleep(0.1)  # let closed transports finish closing
    assert open_fds() <= fds
    assert len(asyncio.all_tasks()) <= tasks
    assert len(paused.requests) == 13  # one probe per pool: each new pool tries it once


async def test_an_abandoned_or_cancelled_call_frees_its_place(
    replicas: dict[str, Replica], tag: str
) -> None:
    a, b = replicas["a"], replicas["b"]
    async with JanusPool([a.url, b.url], **FAST) as pool:
        stream = pool.stream_understand(f"{tag} left [slow:10]")
        async for event in stream:
            if isinstance(event, Started):
                break  # the caller walks away mid-job
        await stream.aclose()
        task = asyncio.ensure_future(pool.understand(f"{tag} cancelled [slow:10]"))
        while not a.calls(f"{tag} cancelled"):
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Both places on a were given back: the next call goes to a again (first in order).
        assert (await pool.understand(f"{tag} next")).endpoint == a.url
    assert len(b.calls(tag)) == 0


def test_one_pool_from_several_event_loops(replicas: dict[str, Replica], tag: str) -> None:
    """Sync callers run each call in a fresh loop (``asyncio.run``); the pool follows them."""
    pool = JanusPool([replicas["a"].url, replicas["b"].url], **FAST)
    first = asyncio.run(pool.understand(f"{tag} loop one"))
    second = asyncio.run(pool.understand(f"{tag} loop two"))
    asyncio.run(pool.aclose())
    assert first.endpoint == second.endpoint == replicas["a"].url
    assert pool.closed


async def test_no_gpu_moves_the_call_on_for_this_call_only(
    replicas: dict[str, Replica], tag: str
) -> None:
    a, b = replicas["a"], replicas["b"]
    async with JanusPool([a.url, b.url], **FAST) as pool:
        seen: list[Any] = []
        with pytest.raises(GPUUnavailableError):  # the marker makes every replica refuse it
            async for event in pool.stream_understand(f"{tag} [nogpu]"):
                seen.append(event)
        (move,) = failovers(seen)
        assert (move.endpoint, move.next_endpoint, move.retry_after) == (a.url, b.url, None)
        assert move.reason.startswith("GPUUnavailableError: No GPU was available")
        assert len(a.calls(tag)) == len(b.calls(tag)) == 1
        assert (await pool.understand(f"{tag} fine")).endpoint == a.url  # not skipped


async def test_identical_calls_share_one_job_across_the_pool_and_the_cache_answers(
    replicas: dict[str, Replica], tag: str
) -> None:
    """Shared and cached at the pool's level: an answer from any endpoint will do, so four
    identical calls are one job in total (not one per endpoint), and a repeat is none."""
    a, b = replicas["a"], replicas["b"]
    async with JanusPool([a.url, b.url], cache="memory", **FAST) as pool:
        question = f"{tag} the same question [slow:2]"
        results = await asyncio.gather(*(pool.understand(question, seed=7) for _ in range(4)))
        again = await pool.understand(question, seed=7)  # from the cache: no job
        other = await pool.understand(question, seed=8)  # another seed: its own job
        drawn = await asyncio.gather(*(pool.generate(f"{tag} a fox", seed=3) for _ in range(2)))
    assert len({r.text for r in results}) == 1 and again.text == results[0].text
    assert other.seed == 8 and len(drawn) == 2
    runs = [c["text"] for c in a.calls(tag) + b.calls(tag)]
    assert sorted(runs) == sorted([question, question, f"{tag} a fox"])
