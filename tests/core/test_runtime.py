"""LoopThread and ClientPerLoop: sync access to the async client without leaking threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from janus_space import ClientPerLoop, JanusClient, LoopThread


async def numbers(n: int, closed: list[bool]) -> AsyncIterator[int]:
    try:
        for i in range(n):
            await asyncio.sleep(0)
            yield i
    finally:
        closed.append(True)


def test_run_and_iterate_from_plain_code_and_threads() -> None:
    runner = LoopThread()
    try:
        assert runner.run(asyncio.sleep(0, result=5)) == 5
        closed: list[bool] = []
        assert list(runner.iterate(numbers(4, closed))) == [0, 1, 2, 3]
        results: list[int] = []
        workers = [
            threading.Thread(target=lambda: results.append(runner.run(asyncio.sleep(0, result=1))))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert results == [1, 1, 1, 1]
    finally:
        runner.close()


async def test_run_works_inside_a_running_loop() -> None:
    runner = LoopThread()
    try:
        assert runner.run(asyncio.sleep(0, result="jupyter")) == "jupyter"
    finally:
        runner.close()


def test_abandoning_iteration_closes_the_async_iterator() -> None:
    runner = LoopThread()
    try:
        closed: list[bool] = []
        for item in runner.iterate(numbers(1000, closed)):
            if item == 2:
                break
        assert closed == [True]
    finally:
        runner.close()


def test_errors_propagate_and_self_calls_are_refused() -> None:
    runner = LoopThread()

    async def boom() -> None:
        raise KeyError("x")

    async def nested() -> None:
        with pytest.raises(RuntimeError, match="own loop thread"):
            next(iter(runner.iterate(numbers(1, []))))

    try:
        with pytest.raises(KeyError):
            runner.run(boom())
        runner.run(nested())
    finally:
        runner.close()


async def test_client_per_loop_reuses_one_client_per_loop() -> None:
    pool = ClientPerLoop(lambda: JanusClient(base_url="http://127.0.0.1:9"))
    first = pool.get()
    assert pool.get() is first
    await pool.aclose_current()
    assert first.closed
    second = pool.get()
    assert second is not first
    await pool.aclose_current()
