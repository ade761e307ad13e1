"""One generation at a time: the queue and its events, cancellation, event loops, closing.

Generation is held at a chosen token by the spy's gate, so what happens while a call runs or
waits is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
from conftest import ModelSpy, load, spy_on
from local_support import collect, deltas, result
from tiny_janus import TinyJanus

from janus_space import (
    GenerationResult,
    JanusBackend,
    JanusError,
    Message,
    Queued,
    Started,
    TextDelta,
    UnderstandingResult,
)
from janus_space.local import LocalJanus


async def _wait_for(condition: Any) -> None:
    """Let the loop run until ``condition()`` holds (each test bounds itself by its timeout)."""
    while not condition():
        await asyncio.sleep(0.005)


async def _until_gated(spy: ModelSpy) -> None:
    """Wait until the model is held at the gate (polling: no helper thread to count)."""
    await _wait_for(spy.waiting.is_set)


def test_it_is_a_janus_backend(backend: LocalJanus) -> None:
    assert isinstance(backend, JanusBackend)
    capabilities = backend.capabilities
    assert capabilities.kind == "local"
    assert capabilities.images_per_call is None
    assert capabilities.native_history and capabilities.token_streaming
    assert capabilities.max_new_tokens_settable
    assert capabilities.max_new_tokens == backend.default_max_new_tokens == 512
    assert capabilities.images_per_generation == (1, 16)
    assert capabilities.context_tokens == 4096


async def test_calls_queue_behind_the_running_one_with_their_rank(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    spy.gate_at = 3  # the first call holds the model at its third token
    logs: dict[str, list[Any]] = {"a": [], "b": [], "c": []}
    order: list[str] = []

    async def call(name: str, seed: int) -> None:
        async for item in backend.stream_understand(
            "Queue?", max_new_tokens=5, temperature=1.0, seed=seed
        ):
            logs[name].append(item)
        order.append(name)

    first = asyncio.create_task(call("a", 1))
    await _until_gated(spy)
    second = asyncio.create_task(call("b", 2))
    await _wait_for(lambda: logs["b"])
    third = asyncio.create_task(call("c", 3))
    await _wait_for(lambda: logs["c"])
    assert logs["b"] == [Queued(rank=0, queue_size=1)]
    assert logs["c"] == [Queued(rank=1, queue_size=2)]
    spy.gate.set()
    await asyncio.gather(first, second, third)
    assert order == ["a", "b", "c"]
    assert logs["a"][:2] == [Queued(rank=0, queue_size=1), Started()]
    # c moved up when b started, then started itself
    assert logs["c"][:3] == [Queued(rank=1, queue_size=2), Queued(rank=0, queue_size=1), Started()]
    for log in logs.values():
        assert isinstance(log[-1], UnderstandingResult)
        assert "".join(deltas(log)) == log[-1].text
    assert Queued(rank=0).position == 1


async def test_closing_a_stream_stops_its_generation_at_the_next_token(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    spy.gate_at = 6
    stream = backend.stream_understand("Long answer.", max_new_tokens=2000, temperature=1.0)
    seen = 0
    async for item in stream:
        seen += isinstance(item, TextDelta)
        if seen == 3:
            break
    await _until_gated(spy)
    closing = asyncio.create_task(stream.aclose())
    await asyncio.sleep(0)  # the stream marks its job cancelled, then waits for it to end
    spy.gate.set()  # the model finishes token 6; the stopping criterion sees the cancel
    await closing
    assert spy.text_tokens == 6
    # the worker is free at once: a new call runs without waiting for 2000 tokens
    spy.gate_at = None
    answer = await backend.understand("Next.", max_new_tokens=2)
    assert answer.text is not None and spy.text_tokens <= 8


async def test_cancelling_the_task_stops_the_generation(backend: LocalJanus, spy: ModelSpy) -> None:
    spy.gate_at = 4
    task = asyncio.create_task(backend.understand("Long.", max_new_tokens=2000, temperature=1.0))
    await _until_gated(spy)
    task.cancel()
    await asyncio.sleep(0)
    spy.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert spy.text_tokens == 4


async def test_cancelling_an_image_generation_stops_at_the_next_image_token(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    spy.gate_at = 3
    stream = backend.stream_generate("a dog", num_images=4)
    async for item in stream:
        if isinstance(item, Started):
            break
    await _until_gated(spy)
    closing = asyncio.create_task(stream.aclose())
    await asyncio.sleep(0)
    spy.gate.set()
    await closing
    assert spy.image_tokens == 3 < tiny.num_image_tokens


async def test_a_call_abandoned_while_queued_never_runs(backend: LocalJanus, spy: ModelSpy) -> None:
    spy.gate_at = 2
    first = asyncio.create_task(backend.understand("One.", max_new_tokens=3))
    await _until_gated(spy)
    waiting = backend.stream_understand("Two.", max_new_tokens=3)
    assert await waiting.__anext__() == Queued(rank=0, queue_size=1)
    third_log: list[Any] = []

    async def third() -> None:
        async for item in backend.stream_understand("Three.", max_new_tokens=3):
            third_log.append(item)

    task = asyncio.create_task(third())
    await _wait_for(lambda: third_log)
    await waiting.aclose()  # leaves the queue: the third call moves up at once
    await _wait_for(lambda: len(third_log) >= 2)
    assert third_log[:2] == [Queued(rank=1, queue_size=2), Queued(rank=0, queue_size=1)]
    spy.gate.set()
    await asyncio.gather(first, task)
    assert len(spy.prompts) == 2  # "Two." never reached the model
    assert all("Two." not in backend.processor.decode(p[0]) for p in spy.prompts)


async def test_generation_never_runs_on_the_event_loop_thread(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    # The model waits (at its 2nd token) for something only this loop can do; if generation
    # blocked the loop, the gate would time out.
    spy.gate_at = 2
    call = asyncio.create_task(backend.understand("Hi.", max_new_tokens=4))
    opened = asyncio.get_running_loop().call_later(0.05, spy.gate.set)
    await call
    opened.cancel()
    assert not spy.gate_timed_out
    assert threading.current_thread().name not in spy.threads
    assert spy.threads == {backend._worker.thread.name}  # type: ignore[union-attr]


async def test_calls_from_several_event_loops_at_once(backend: LocalJanus, spy: ModelSpy) -> None:
    here = await backend.understand("Loop?", max_new_tokens=6, temperature=1.0, seed=9)
    answers: list[str] = []
    errors: list[BaseException] = []

    def other_loop(seed: int) -> None:
        try:
            answer = asyncio.run(
                backend.understand("Loop?", max_new_tokens=6, temperature=1.0, seed=seed)
            )
            answers.append(answer.text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=other_loop, args=(9,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [thread.join(60) for thread in threads])
    assert errors == []
    assert answers == [here.text] * 3
    # and this loop still works after the others have closed
    assert (await backend.understand("Loop?", max_new_tokens=6, seed=9, temperature=1.0)).text


async def test_aclose_fails_waiting_calls_stops_the_running_one_and_ends_the_thread(
    tiny: TinyJanus,
) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    janus = load(tiny)
    spying = spy_on(janus)
    spy = next(spying)
    spy.gate_at = 3
    running = asyncio.create_task(janus.understand("Run.", max_new_tokens=2000))
    await _until_gated(spy)
    queued: list[Any] = []

    async def wait_in_queue() -> None:
        async for item in janus.stream_generate("Wait."):
            queued.append(item)

    waiting = asyncio.create_task(wait_in_queue())
    await _wait_for(lambda: queued)
    closing = asyncio.create_task(janus.aclose())
    await asyncio.sleep(0)
    spy.gate.set()
    await closing
    with pytest.raises(JanusError, match="closed while this call ran"):
        await running
    with pytest.raises(JanusError, match="closed before this call ran"):
        await waiting
    assert spy.text_tokens == 3
    spying.close()
    assert janus.closed and janus.transformers_model is None
    assert {thread.ident for thread in threading.enumerate()} == before
    with pytest.raises(JanusError, match="closed"):
        await janus.understand("Again?")
    await janus.aclose()  # idempotent


async def test_no_thread_outlives_many_backends(tiny: TinyJanus) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    for round_number in range(4):
        async with load(tiny) as janus:
            await asyncio.gather(
                janus.understand("Hi.", max_new_tokens=2, seed=round_number),
                janus.generate("a dot", num_images=1),
            )
    assert {thread.ident for thread in threading.enumerate()} == before


async def test_a_backend_dropped_without_closing_ends_its_thread(tiny: TinyJanus) -> None:
    janus = load(tiny)
    await janus.understand("Hi.", max_new_tokens=2)
    thread = janus._worker.thread
    assert thread is not None and thread.is_alive()
    del janus
    gc.collect()
    await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive()


def test_close_from_sync_code(tiny: TinyJanus) -> None:
    janus = load(tiny)
    answer = asyncio.run(janus.understand("Sync?", max_new_tokens=3))
    assert isinstance(answer, UnderstandingResult)
    thread = janus._worker.thread
    janus.close()
    assert thread is not None and not thread.is_alive() and janus.closed


async def test_understand_and_chat_return_what_the_streams_end_with(
    backend: LocalJanus,
) -> None:
    settings: dict[str, Any] = {"max_new_tokens": 8, "temperature": 1.0, "seed": 31}
    streamed = result(await collect(backend.stream_understand("Same?", **settings)))
    direct = await backend.understand("Same?", **settings)
    chat = await backend.chat([Message("user", "Same?")], **settings)
    assert streamed.text == direct.text == chat.text
    generated = await collect(backend.stream_generate("a sun", num_images=1, seed=3))
    assert isinstance(generated[-1], GenerationResult)
    again = await backend.generate("a sun", num_images=1, seed=3)
    assert generated[-1].images[0].data == again.images[0].data
