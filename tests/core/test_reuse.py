"""Spending no quota twice: call keys, the result caches, and calls sharing one job in flight.

The sharing rules are checked with scripted calls (a fake stream the test drives step by step),
then through ``JanusClient`` against the in-process fault server, which counts every request.
The same behaviour on the real Gradio replica is in ``tests/space/test_reuse_replica.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability.fault_server import FaultServer, running_fault_server

from janus_space import (
    GeneratedImage,
    GenerationResult,
    InvalidInputError,
    JanusClient,
    JanusError,
    JanusWarning,
    Queued,
    Started,
    UnderstandingResult,
    load_image,
)
from janus_space.events import Progress
from janus_space.reuse import (
    CallReuse,
    MemoryCache,
    SQLiteCache,
    call_key,
    decode_result,
    encode_result,
    resolve_cache,
)

# --- keys --------------------------------------------------------------------------------------


def png(colour: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


params = st.fixed_dictionaries(
    {
        "question": st.text(min_size=1, max_size=30),
        "seed": st.integers(0, 2**32 - 1),
        "top_p": st.floats(0, 1),
        "temperature": st.floats(0, 1),
    }
)


@given(params, params)
def test_keys_are_equal_exactly_when_the_calls_are(a: dict[str, Any], b: dict[str, Any]) -> None:
    key_a = call_key("http://h", "multimodal_understanding", **a)
    key_b = call_key("http://h", "multimodal_understanding", **b)
    assert (key_a == key_b) == (a == b)


@given(params)
def test_keys_name_the_endpoint_the_function_and_the_image(p: dict[str, Any]) -> None:
    red, blue = load_image(png((255, 0, 0))), load_image(png((0, 0, 255)))
    keys = {
        call_key("http://h", "multimodal_understanding", image=red, **p),
        call_key("http://h", "multimodal_understanding", image=blue, **p),
        call_key("http://other", "multimodal_understanding", image=red, **p),
        call_key("http://h", "generate_image", image=red, **p),
        call_key("http://h", "multimodal_understanding", **p),
    }
    assert len(keys) == 5
    # The same bytes from another source, and a trailing slash on the URL, are the same call.
    same = load_image(bytearray(png((255, 0, 0))))
    assert call_key("http://h/", "multimodal_understanding", image=same, **p) == call_key(
        "http://h", "multimodal_understanding", image=red, **p
    )


def test_keys_carry_no_parameter_text() -> None:
    key = call_key("http://h", "generate_image", prompt="my secret plan", seed=1)
    assert len(key) == 64 and "secret" not in key
    with pytest.raises(TypeError):
        call_key("http://h", "generate_image", prompt=["not", "a", "scalar"])  # type: ignore[arg-type]


# --- encoding results --------------------------------------------------------------------------

understanding_results = st.builds(
    UnderstandingResult,
    text=st.text(max_size=200),
    seed=st.integers(0, 2**32 - 1),
    top_p=st.floats(0, 1),
    temperature=st.floats(0, 1),
    duration=st.none() | st.floats(0, 1e4),
    endpoint=st.none() | st.text(max_size=40),
)
generated = st.builds(
    GeneratedImage,
    data=st.binary(max_size=300),
    mime_type=st.sampled_from(["image/webp", "image/png"]),
    url=st.text(max_size=40),
)
generation_results = st.builds(
    GenerationResult,
    images=st.lists(generated, max_size=5).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    guidance=st.floats(1, 10),
    temperature=st.floats(0, 1),
    duration=st.none() | st.floats(0, 1e4),
    endpoint=st.none() | st.text(max_size=40),
)


@given(understanding_results | generation_results)
def test_results_survive_encoding(result: UnderstandingResult | GenerationResult) -> None:
    assert decode_result(encode_result(result)) == result


@given(understanding_results | generation_results, st.data())
def test_a_truncated_or_extended_entry_is_refused(
    result: UnderstandingResult | GenerationResult, data: st.DataObject
) -> None:
    blob = encode_result(result)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(ValueError):
        decode_result(blob[:cut])
    with pytest.raises(ValueError):
        decode_result(blob + b"\x00")


@given(st.binary(max_size=200))
def test_foreign_bytes_fail_only_as_value_errors(blob: bytes) -> None:
    """Whatever a cache file holds, reading it raises ValueError (a miss), never anything else."""
    for candidate in (blob, b"JRC1" + blob, b"JRC1" + len(blob).to_bytes(4, "big") + blob):
        with contextlib.suppress(ValueError):
            decode_result(candidate)


def test_prompts_are_not_stored() -> None:
    from janus_space import Message, flatten_conversation

    prompt = flatten_conversation([Message("user", "hi")])
    result = UnderstandingResult(text="t", seed=1, top_p=0.5, temperature=0.5, prompt=prompt)
    assert decode_result(encode_result(result)).prompt is None


# --- the caches --------------------------------------------------------------------------------


def answer(text: str, seed: int = 1) -> UnderstandingResult:
    return UnderstandingResult(text=text, seed=seed, top_p=0.5, temperature=0.25, endpoint="e")


async def test_memory_cache_drops_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for name in "abc":
        await cache.put(name, answer(name))
    assert await cache.get("a") == answer("a")  # a is now the most recent
    await cache.put("d", answer("d"))
    assert [await cache.get(k) is not None for k in "abcd"] == [True, False, True, True]
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0


async def test_sqlite_cache_persists_across_objects_and_prunes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.db"
    images = (GeneratedImage(b"\x00\x01" * 100, "image/webp", "u"),)
    picture = GenerationResult(images=images, seed=3, guidance=5.0, temperature=1.0)
    first = SQLiteCache(path, max_entries=2)
    await first.put("pic", picture)
    await first.put("a", answer("a"))
    second = SQLiteCache(str(path), max_entries=2)
    assert await second.get("pic") == picture
    assert await second.get("missing") is None
    await second.put("b", answer("b"))
    assert len(second) == 2 and await second.get("pic") is None  # the oldest went
    second.clear()
    assert len(first) == 0


async def test_sqlite_cache_drops_an_unreadable_entry_and_says_so(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "r.db")
    await cache.put("k", answer("a"))
    with sqlite3.connect(tmp_path / "r.db") as db:
        db.execute("UPDATE janus_results SET value = ? WHERE key = 'k'", (b"JRC1garbage",))
    db.close()
    with pytest.warns(JanusWarning, match="unreadable"):
        assert await cache.get("k") is None
    assert len(cache) == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_caches_are_safe_across_threads_and_event_loops(kind: str, tmp_path: Path) -> None:
    cache = MemoryCache(max_entries=1000) if kind == "memory" else SQLiteCache(tmp_path / "t.db")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def run() -> None:
            for i in range(20):
                await cache.put(f"{n}/{i}", answer(f"{n}/{i}", seed=i))
                await cache.put("shared", answer("shared"))
            for i in range(20):
                assert await cache.get(f"{n}/{i}") == answer(f"{n}/{i}", seed=i)
            assert await cache.get("shared") == answer("shared")

        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) == 6 * 20 + 1


def test_cache_settings_are_checked_before_anything_runs(tmp_path: Path) -> None:
    assert resolve_cache(None) is None
    assert isinstance(resolve_cache("memory"), MemoryCache)
    sqlite = SQLiteCache(tmp_path / "x.db")
    assert resolve_cache(sqlite) is sqlite
    assert not (tmp_path / "x.db").exists()  # made on first use, not before
    for bad, words in (
        ("disk", "SQLiteCache"),
        (tmp_path / "x.db", "SQLiteCache"),
        (42, "int"),
        (object(), "object"),
    ):
        with pytest.raises(InvalidInputError, match=words):
            resolve_cache(bad)
    for bad_path in ("", ":memory:", b"x.db"):
        with pytest.raises(InvalidInputError, match="file path"):
            SQLiteCache(bad_path)  # type: ignore[arg-type]
    for entries in (0, -1, True, 2.5):
        with pytest.raises(InvalidInputError, match="max_entries"):
            MemoryCache(max_entries=entries)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cache"):
        JanusClient(base_url="http://127.0.0.1:9", cache="memroy")  # type: ignore[arg-type]


# --- sharing, with scripted calls --------------------------------------------------------------


class Script:
    """A fake call the test drives: ``feed`` puts events, a result or an error into it."""

    def __init__(self) -> None:
        self.starts = 0
        self.closes = 0
        self.feeds: list[asyncio.Queue[object]] = []

    def start(self) -> AsyncGenerator[object, None]:
        self.starts += 1
        feed: asyncio.Queue[object] = asyncio.Queue()
        self.feeds.append(feed)
        return self._run(feed)

    async def _run(self, feed: asyncio.Queue[object]) -> AsyncGenerator[object, None]:
        try:
            while True:
                item = await feed.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closes += 1

    def feed(self, item: object, job: int = -1) -> None:
        self.feeds[job].put_nowait(item)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def collect(stream: AsyncIterator[object], into: list[object]) -> None:
    async for item in stream:
        into.append(item)


async def test_identical_calls_share_one_job_and_every_event() -> None:
    reuse, script = CallReuse(), Script()
    seen: list[list[object]] = [[], [], []]
    calls = [
        asyncio.create_task(collect(reuse.stream("k", script.start, UnderstandingResult), s))
        for s in seen
    ]
    await settle()
    script.feed(Queued(rank=0, queue_size=1))
    script.feed(Started())
    script.feed(answer("shared"))
    await asyncio.gather(*calls)
    assert script.starts == 1 and script.closes == 1
    assert (
        seen[0] == seen[1] == seen[2] == [Queued(rank=0, queue_size=1), Started(), answer("shared")]
    )
    assert (reuse.stats.calls, reuse.stats.jobs, reuse.stats.shared) == (3, 1, 2)
    assert reuse.in_flight() == 0


async def test_a_late_sharer_is_told_where_the_job_is() -> None:
    reuse, script = CallReuse(), Script()
    early: list[object] = []
    first = asyncio.create_task(
        collect(reuse.stream("k", script.start, UnderstandingResult), early)
    )
    await settle()
    script.feed(Queued(rank=3))
    script.feed(Queued(rank=1))
    await settle()
    late: list[object] = []
    second = asyncio.create_task(
        collect(reuse.stream("k", script.start, UnderstandingResult), late)
    )
    await settle()
    assert late == [Queued(rank=1)]
    script.feed(Started())
    script.feed(Progress(index=1, length=2))
    await settle()
    later: list[object] = []
    third = asyncio.create_task(
        collect(reuse.stream("k", script.start, UnderstandingResult), later)
    )
    await settle()
    assert later == [Started(), Progress(index=1, length=2)]
    script.feed(answer("x"))
    await asyncio.gather(first, second, third)
    assert early[-1] == late[-1] == later[-1] == answer("x") and script.starts == 1


async def test_the_job_goes_on_when_one_sharer_leaves() -> None:
    reuse, script = CallReuse(), Script()
    survivor: list[object] = []
    quitter = asyncio.create_task(collect(reuse.stream("k", script.start, UnderstandingResult), []))
    stayer = asyncio.create_task(
        collect(reuse.stream("k", script.start, UnderstandingResult), survivor)
    )
    await settle()
    script.feed(Queued(rank=2))
    await settle()
    quitter.cancel()
    await asyncio.gather(quitter, return_exceptions=True)
    assert script.closes == 0  # still running for the other sharer
    script.feed(answer("kept"))
    await stayer
    assert survivor == [Queued(rank=2), answer("kept")] and script.starts == 1


async def test_a_sharer_that_breaks_out_early_leaves_the_job_to_the_others() -> None:
    reuse, script = CallReuse(), Script()
    survivor: list[object] = []
    stayer = asyncio.create_task(
        collect(reuse.stream("k", script.start, UnderstandingResult), survivor)
    )
    await settle()
    stream = reuse.stream("k", script.start, UnderstandingResult)
    script.feed(Queued(rank=0))
    assert await anext(stream) == Queued(rank=0)
    await stream.aclose()
    assert script.closes == 0
    script.feed(answer("kept"))
    await stayer
    assert survivor[-1] == answer("kept")


async def test_the_job_is_abandoned_when_every_sharer_has_left() -> None:
    reuse, script = CallReuse(), Script()
    calls = [
        asyncio.create_task(collect(reuse.stream("k", script.start, UnderstandingResult), []))
        for _ in range(2)
    ]
    await settle()
    script.feed(Queued(rank=4))
    await settle()
    calls[0].cancel()
    await asyncio.gather(calls[0], return_exceptions=True)
    assert script.closes == 0
    calls[1].cancel()
    await asyncio.gather(calls[1], return_exceptions=True)
    assert script.closes == 1  # closed by the time the last sharer's cancellation returns
    assert reuse.in_flight() == 0
    # A new identical call starts a new job rather than joining the abandoned one.
    again: list[object] = []
    task = asyncio.create_task(collect(reuse.stream("k", script.start, UnderstandingResult), again))
    await settle()
    script.feed(answer("fresh"))
    await task
    assert script.starts == 2 and again == [answer("fresh")]


async def test_errors_reach_every_sharer_and_are_never_cached() -> None:
    cache = MemoryCache()
    reuse, script = CallReuse(cache), Script()
    outcomes: list[object] = []

    async def call() -> None:
        try:
            await collect(reuse.stream("k", script.start, UnderstandingResult), [])
        except JanusError as exc:
            outcomes.append(exc)

    tasks = [asyncio.create_task(call()) for _ in range(3)]
    await settle()
    failure = JanusError("the Space fell over")
    script.feed(failure)
    await asyncio.gather(*tasks)
    assert outcomes == [failure] * 3 and len(cache) == 0
    retry: list[object] = []
    task = asyncio.create_task(collect(reuse.stream("k", script.start, UnderstandingResult), retry))
    await settle()
    script.feed(answer("ok"))
    await task
    assert script.starts == 2 and retry == [answer("ok")] and len(cache) == 1


async def test_a_stream_without_a_result_is_an_error_for_every_sharer() -> None:
    reuse = CallReuse(MemoryCache())

    async def no_result() -> AsyncGenerator[object, None]:
        yield Queued(rank=0)

    with pytest.raises(JanusError, match="without a result"):
        await collect(reuse.stream("k", no_result, UnderstandingResult), [])


async def test_a_cache_hit_starts_nothing_and_yields_only_the_result() -> None:
    cache = MemoryCache()
    await cache.put("k", answer("stored"))
    reuse, script = CallReuse(cache), Script()
    seen: list[object] = []
    await collect(reuse.stream("k", script.start, UnderstandingResult), seen)
    assert seen == [answer("stored")] and script.starts == 0
    assert reuse.stats.cache_hits == 1
    # A stored result of the other kind under the key is not this call's result.
    other: list[object] = []
    task = asyncio.create_task(collect(reuse.stream("k", script.start, GenerationResult), other))
    await settle()
    assert script.starts == 1
    script.feed(GenerationResult(images=(), seed=1, guidance=5.0, temperature=1.0))
    await task


async def test_a_broken_cache_costs_a_warning_not_the_call() -> None:
    class Broken:
        async def get(self, key: str) -> None:
            raise OSError("disk on fire")

        async def put(self, key: str, result: object) -> None:
            raise OSError("disk on fire")

    reuse, script = CallReuse(resolve_cache(Broken())), Script()
    seen: list[object] = []
    with pytest.warns(JanusWarning, match="disk on fire") as caught:
        task = asyncio.create_task(
            collect(reuse.stream("k", script.start, UnderstandingResult), seen)
        )
        await settle()
        script.feed(answer("fine"))
        await task
        await settle()
    assert seen == [answer("fine")]
    assert {"read", "write"} <= {str(w.message).split()[2] for w in caught}


async def test_different_keys_never_share() -> None:
    reuse, script = CallReuse(), Script()
    tasks = [
        asyncio.create_task(collect(reuse.stream(k, script.start, UnderstandingResult), []))
        for k in ("a", "b", "a", "c")
    ]
    await settle()
    assert script.starts == 3 and reuse.in_flight() == 3
    for job in range(3):
        script.feed(answer(str(job)), job)
    await asyncio.gather(*tasks)


def test_sharing_is_per_event_loop() -> None:
    """Two loops (two threads) with the same key each run their own job: a job's stream and its
    sharers' queues belong to one loop."""
    reuse = CallReuse()
    starts: list[int] = []

    def call() -> None:
        async def one() -> AsyncGenerator[object, None]:
            starts.append(1)
            await asyncio.sleep(0.05)
            yield answer("per loop")

        async def run() -> list[object]:
            seen: list[object] = []
            await asyncio.gather(
                *(collect(reuse.stream("k", one, UnderstandingResult), seen) for _ in range(3))
            )
            return seen

        assert asyncio.run(run()) == [answer("per loop")] * 3

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 2


# --- through JanusClient, against the fault server ---------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with running_fault_server() as fault_server:
        yield fault_server


def client_for(server: FaultServer, **settings: Any) -> JanusClient:
    return JanusClient(base_url=server.url, timeout=10, max_retries=0, **settings)


async def test_identical_concurrent_calls_join_the_space_once(server: FaultServer) -> None:
    async with client_for(server) as client:
        results = await asyncio.gather(
            *(client.understand("[slow:3] same", png((9, 9, 9)), seed=5) for _ in range(4))
        )
    assert server.count("join") == 1
    assert len({r.text for r in results}) == 1 and results[0].text == "answer: [slow:3] same"


async def test_each_sharer_gets_its_own_stop_and_prompt(server: FaultServer) -> None:
    async with client_for(server) as client:
        cut, whole = await asyncio.gather(
            client.understand("[slow:2] one two", stop=["two"]),
            client.understand("[slow:2] one two"),
        )
    assert server.count("join") == 1
    assert (cut.text, whole.text) == ("answer: [slow:2] one ", "answer: [slow:2] one two")


async def test_different_seeds_images_or_functions_do_not_share(server: FaultServer) -> None:
    async with client_for(server) as client:
        await asyncio.gather(
            client.understand("[slow:2] q", seed=1),
            client.understand("[slow:2] q", seed=2),
            client.understand("[slow:2] q", png((1, 2, 3)), seed=1),
            client.understand("[slow:2] q", png((3, 2, 1)), seed=1),
            client.generate("[slow:2] q", seed=1),
        )
    assert server.count("join") == 5


async def test_a_cache_hit_sends_no_request_at_all(server: FaultServer) -> None:
    cache = MemoryCache()
    async with client_for(server, cache=cache) as client:
        first = await client.understand("cached?", png((5, 5, 5)), seed=3)
        drawn = await client.generate("a cat", seed=9)
    before = len(server.requests)
    async with client_for(server, cache=cache) as client:
        events = [e async for e in client.stream_understand("cached?", png((5, 5, 5)), seed=3)]
        again = await client.generate("a cat", seed=9)
    assert len(server.requests) == before
    assert events == [first]
    assert again == drawn and len(again.images) == 5


async def test_a_closed_client_refuses_even_cached_calls(server: FaultServer) -> None:
    client = client_for(server, cache="memory")
    await client.understand("q")
    await client.aclose()
    with pytest.raises(JanusError, match="closed"):
        await client.understand("q")


@settings(max_examples=10, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=8))
def test_one_job_per_distinct_question_in_a_burst(questions: list[str]) -> None:
    """Whatever the mix of repeats in a burst, the Space sees each distinct call once."""

    async def run() -> tuple[int, list[str]]:
        async with running_fault_server() as fault_server:
            async with client_for(fault_server) as client:
                results = await asyncio.gather(
                    *(client.understand(f"[slow:2] {q}") for q in questions)
                )
            return fault_server.count("join"), [r.text for r in results]

    joins, texts = asyncio.run(run())
    assert joins == len(set(questions))
    assert texts == [f"answer: [slow:2] {q}" for q in questions]
