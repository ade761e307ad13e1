"""Running the async client from sync code: a loop thread, and one client per event loop.

aiohttp sessions belong to the loop that made them, so sync callers (scripts, Jupyter cells
with a running loop, worker threads) all go through one background loop thread, and async
callers get a client bound to their own loop.
"""

from __future__ import annotations

import asyncio
import queue as thread_queue
import threading
import weakref
from collections.abc import AsyncIterable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["ClientPerLoop", "LoopThread"]

T = TypeVar("T")
C = TypeVar("C")
_DONE = object()


class LoopThread:
    """A daemon thread running its own event loop, for calling async code from sync code."""

    def __init__(self, name: str = "janus-space-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The thread's loop, started on first use."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop thread and wait for its result (from any thread)."""
        loop = self.loop
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def iterate(self, iterable: AsyncIterable[T]) -> Iterator[T]:
        """Iterate an async iterable on the loop thread, yielding its items here.

        Stopping early (``break``, an exception, or closing the generator) cancels the pump and
        waits until the async iterator is closed on the loop thread, so a stream abandoned from
        sync code has cancelled its job before this returns.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.iterate called from its own loop thread")
        items: thread_queue.Queue[Any] = thread_queue.Queue()
        finished = threading.Event()

        async def pump() -> None:
            iterator = iterable.__aiter__()
            try:
                async for item in iterator:
                    items.put((True, item))
                items.put((True, _DONE))
            except BaseException as exc:
                items.put((False, exc))
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()

        async def start() -> asyncio.Task[None]:
            task = asyncio.ensure_future(pump())
            task.add_done_callback(lambda _: finished.set())
            return task

        loop = self.loop
        task = asyncio.run_coroutine_threadsafe(start(), loop).result()
        try:
            while True:
                ok, item = items.get()
                if not ok:
                    raise item
                if item is _DONE:
                    return
                yield item
        finally:
            if not finished.is_set():
                loop.call_soon_threadsafe(task.cancel)
                finished.wait(timeout=60)  # the iterator's own cleanup (e.g. cancelling a job)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


class ClientPerLoop(Generic[C]):
    """Lazily makes one client per running event loop and closes them all on request."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> C:
        """The client for the running loop, made on first use in that loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or getattr(client, "closed", False):
            client = self._factory()
            self._clients[loop] = client
        return client

    async def aclose_current(self) -> None:
        """Close the running loop's client, if there is one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()  # type: ignore[attr-defined]

    def clients(self) -> list[tuple[asyncio.AbstractEventLoop, C]]:
        """The live (loop, client) pairs, e.g. to close each on its own loop."""
        return list(self._clients.items())
