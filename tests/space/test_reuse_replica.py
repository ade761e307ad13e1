"""No quota spent twice, on the real Gradio replica: shared calls, abandonment, the result cache.

One single-worker replica process (Gradio's default: one job at a time, like the Space) keeps a
call log — every call that reached its function — so each test counts what the Space really
ran (the GPU time it would have reserved). A counting TCP proxy in front of it counts the joins
and every byte a client sends: zero bytes means no request at all. Each test tags its questions
to count only its own calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cassette_support import running_replica
from PIL import Image

from janus_space import JanusClient, Queued, Started, UnderstandingResult
from janus_space.replica import (
    parse_understanding_report,
    prompt_checksum,
    read_call_log,
    read_generation_report,
)
from janus_space.reuse import SQLiteCache

JOIN = b"POST /gradio_api/queue/join"


class CountingProxy:
    """A TCP proxy to the replica that counts connections, bytes sent and joins.

    Either side closing closes the other, so a client cutting its event stream is a disconnect
    the replica sees (that is how a queued job leaves Gradio's queue).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self.bytes_up = 0
        self.joins = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
        except OSError:
            writer.close()
            self._handlers.discard(task)
            return
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer, count=True),
                self._pump(upstream_reader, writer, count=False),
            )
        finally:
            for side in (writer, upstream_writer):
                side.close()
                with contextlib.suppress(Exception):
                    await side.wait_closed()
            self._handlers.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, count: bool
    ) -> None:
        tail = b""
        try:
            while data := await source.read(65536):
                if count:
                    self.bytes_up += len(data)
                    window = tail + data
                    self.joins += window.count(JOIN)
                    tail = window[-(len(JOIN) - 1) :]
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A single-worker replica with a call log: (base URL, log path)."""
    log = tmp_path_factory.mktemp("reuse-replica") / "calls.jsonl"
    with running_replica("--call-log", str(log)) as url:
        yield url, log


@pytest.fixture
async def proxy(replica: tuple[str, Path]) -> AsyncIterator[CountingProxy]:
    counting = CountingProxy(int(replica[0].rsplit(":", 1)[1]))
    await counting.start()
    try:
        yield counting
    finally:
        await counting.close()


@pytest.fixture
def tag() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def ran(replica: tuple[str, Path], text: str) -> int:
    """How many times the replica's functions ran a call whose text holds ``text``."""
    return sum(1 for entry in read_call_log(replica[1]) if text in entry["text"])


def picture(colour: tuple[int, int, int]) -> bytes:
    """A small PNG (a gradient with a coloured corner): one picture per colour."""
    image = Image.linear_gradient("L").resize((96, 64)).convert("RGB")
    image.paste(colour, (0, 0, 8, 8))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def client(proxy: CountingProxy, **settings: Any) -> JanusClient:
    return JanusClient(base_url=proxy.url, timeout=90, max_retries=0, **settings)


async def watch(
    stream: AsyncIterator[Any], seen: asyncio.Event, into: list[Any], kind: type = Queued
) -> None:
    """Drain a call's stream into ``into``, setting ``seen`` once an event of ``kind`` came."""
    async for item in stream:
        into.append(item)
        if isinstance(item, kind):
            seen.set()


async def hold_the_worker(janus: JanusClient, question: str) -> asyncio.Task[None]:
    """Start a slow call and return once it runs: the single worker is busy until it ends."""
    running = asyncio.Event()
    task = asyncio.create_task(watch(janus.stream_understand(question), running, [], Started))
    await asyncio.wait_for(running.wait(), 60)
    return task


async def test_identical_calls_in_flight_run_once(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str
) -> None:
    image = picture((200, 10, 10))
    async with client(proxy) as janus:
        first, second = await asyncio.gather(
            janus.understand(f"[slow:5] {tag}", image, seed=7),
            janus.understand(f"[slow:5] {tag}", image, seed=7),
        )
        drawn = await asyncio.gather(*(janus.generate(f"a fox {tag}", seed=11) for _ in range(3)))
    assert ran(replica, tag) == 2  # one understanding, one generation
    assert proxy.joins == 2
    assert first == second
    report = parse_understanding_report(first.text)
    assert (report.question, report.seed) == (f"[slow:5] {tag}", "7")
    assert drawn[0] == drawn[1] == drawn[2]
    images = [read_generation_report(image.data) for image in drawn[0].images]
    assert [i.index for i in images] == [0, 1, 2, 3, 4]
    assert {(i.seed, i.prompt_crc32) for i in images} == {(11, prompt_checksum(f"a fox {tag}"))}


async def test_different_seeds_or_images_are_separate_jobs(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str
) -> None:
    red, green = picture((200, 10, 10)), picture((10, 200, 10))
    async with client(proxy) as janus:
        results = await asyncio.gather(
            janus.understand(f"[slow:2] {tag}", red, seed=1),
            janus.understand(f"[slow:2] {tag}", red, seed=2),
            janus.understand(f"[slow:2] {tag}", green, seed=1),
            janus.generate(f"{tag}", seed=1),
            janus.generate(f"{tag}", seed=2),
        )
    assert ran(replica, tag) == 5 and proxy.joins == 5
    seeds = [parse_understanding_report(r.text).seed for r in results[:3]]  # type: ignore[union-attr]
    assert seeds == ["1", "2", "1"]


async def test_a_sharer_who_gives_up_leaves_the_job_to_the_other(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str
) -> None:
    async with client(proxy) as janus:
        blocker = await hold_the_worker(janus, f"[slow:10] {tag} blocker")
        question = f"{tag} shared"
        queued = [asyncio.Event(), asyncio.Event()]
        seen: list[list[Any]] = [[], []]
        quitter = asyncio.create_task(watch(janus.stream_understand(question), queued[0], seen[0]))
        stayer = asyncio.create_task(watch(janus.stream_understand(question), queued[1], seen[1]))
        await asyncio.wait_for(asyncio.gather(queued[0].wait(), queued[1].wait()), 60)
        quitter.cancel()
        await asyncio.gather(quitter, return_exceptions=True)
        await stayer
        await blocker
    assert ran(replica, question) == 1
    assert proxy.joins == 2  # the blocker and the shared job
    result = seen[1][-1]
    assert isinstance(result, UnderstandingResult)
    assert parse_understanding_report(result.text).question == question
    assert not any(isinstance(item, UnderstandingResult) for item in seen[0])


async def test_a_job_every_sharer_abandoned_while_queued_never_runs(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str
) -> None:
    async with client(proxy) as janus:
        blocker = await hold_the_worker(janus, f"[slow:10] {tag} blocker")
        question = f"{tag} abandoned"
        queued = [asyncio.Event(), asyncio.Event()]
        sharers = [
            asyncio.create_task(watch(janus.stream_understand(question), event, []))
            for event in queued
        ]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in queued)), 60)
        for sharer in sharers:
            sharer.cancel()
        await asyncio.gather(*sharers, return_exceptions=True)
        await blocker
        # The single worker runs jobs in join order: had the abandoned job stayed in the queue,
        # it would have run before this probe, which joined after it.
        await janus.understand(f"{tag} probe")
    assert ran(replica, f"{tag} probe") == 1
    assert ran(replica, question) == 0
    assert proxy.joins == 3  # blocker, the shared job once, the probe


async def test_the_sqlite_cache_serves_a_new_client_without_any_request(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str, tmp_path: Path
) -> None:
    path = tmp_path / "results.db"
    image = picture((10, 10, 200))
    async with client(proxy, cache=SQLiteCache(path)) as janus:
        answer = await janus.understand(f"{tag} cached", image, seed=3, stop=["question"])
        drawn = await janus.generate(f"{tag} cached", seed=4)
    assert ran(replica, tag) == 2
    sent = proxy.bytes_up
    async with client(proxy, cache=SQLiteCache(path)) as janus:
        events = [e async for e in janus.stream_understand(f"{tag} cached", image, seed=3)]
        cut = await janus.understand(f"{tag} cached", image, seed=3, stop=["question"])
        again = await janus.generate(f"{tag} cached", seed=4)
    assert proxy.bytes_up == sent  # not one byte: no request of any kind
    assert ran(replica, tag) == 2
    assert len(events) == 1 and isinstance(events[0], UnderstandingResult)
    assert parse_understanding_report(events[0].text).question == f"{tag} cached"
    assert cut == answer and cut.text.endswith("image=96x64 ")
    assert again == drawn and [i.data for i in again.images] == [i.data for i in drawn.images]


async def test_the_memory_cache_makes_a_repeated_call_free(
    replica: tuple[str, Path], proxy: CountingProxy, tag: str
) -> None:
    async with client(proxy, cache="memory") as janus:
        first = await janus.understand(f"{tag} again")
        sent = proxy.bytes_up
        repeats = [await janus.understand(f"{tag} again") for _ in range(3)]
        other_seed = await janus.understand(f"{tag} again", seed=5)
    assert repeats == [first] * 3
    assert proxy.bytes_up > sent  # only the call with another seed went out
    assert ran(replica, tag) == 2
    assert parse_understanding_report(other_seed.text).seed == "5"
