"""Async resources per event loop, released when the loop ends; a loop thread for sync callers.

aiohttp sessions belong to the loop that made them. ``LoopBound`` keeps one resource per running
loop and releases it while that loop shuts down (``asyncio.run`` and ``Runner`` close suspended
async generators first: a guard generator per loop is the hook), so code that calls
``asyncio.run(...)`` per request leaks neither sessions nor loops. ``LoopThread`` runs a private
loop for sync callers (scripts, Jupyter, worker threads); every live one is closed at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue as thread_queue
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar, cast

__all__ = [
    "BackendHandle",
    "ClientPerLoop",
    "LoopBound",
    "LoopThread",
    "on_sync_runner",
    "sync_runner",
]

T = TypeVar("T")
C = TypeVar("C")
_DONE = object()


class _Entry(Generic[T]):
    """One loop's resource and the suspended guard generator that releases it."""

    __slots__ = ("guard", "loop", "release", "value")

    def __init__(self, loop: asyncio.AbstractEventLoop, value: T) -> None:
        self.loop = loop
        self.value = value
        self.guard: AsyncGenerator[None, None] | None = None
        self.release: asyncio.Future[None] | None = None  # the one release, shared by callers


class LoopBound(Generic[T]):
    """One resource per running event loop, released on that loop when the loop shuts down.

    The entry of a loop is dropped when it is released, so nothing here keeps a finished loop
    alive. A loop closed without shutting down its async generators (a hand-made loop closed
    by hand) cannot run the release; its entry is dropped at the next use.
    """

    def __init__(self, make: Callable[[], T], release: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._release = release
        self._entries: dict[int, _Entry[T]] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        """The running loop's resource, made on first use in that loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is not None and entry.loop is loop:
                return entry.value
            self._prune()
            entry = _Entry(loop, self._make())
            self._entries[id(loop)] = entry
        guard = self._guard(entry)
        entry.guard = guard  # a strong reference: the loop only holds it weakly
        with contextlib.suppress(StopIteration):
            guard.__anext__().send(None)  # now suspended, and known to the loop's shutdown
        return entry.value

    def peek(self) -> T | None:
        """The running loop's resource if one was made, without making one."""
        entry = self._entries.get(id(asyncio.get_running_loop()))
        return entry.value if entry is not None else None

    async def release_current(self) -> None:
        """Release the running loop's resource now (it is made again on the next ``get``)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
            if entry is None or entry.loop is not loop:
                return
            del self._entries[id(loop)]
        entry.guard = None  # the loop finishes the guard when it is collected: a no-op then
        await self._release_once(entry)

    def release_all(self) -> None:
        """Release every loop's resource: the running loop's by the caller, others scheduled.

        Resources of loops running in other threads are released there (not waited for);
        those of closed loops can no longer be released and are dropped.
        """
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        with self._lock:
            entries = [e for e in self._entries.values() if e.loop is not current]
            for entry in entries:
                del self._entries[id(entry.loop)]
        for entry in entries:
            entry.guard = None
            if entry.loop.is_running():
                with contextlib.suppress(RuntimeError):
                    asyncio.run_coroutine_threadsafe(self._release_once(entry), entry.loop)

    def __len__(self) -> int:
        return len(self._entries)

    def _prune(self) -> None:
        for key in [k for k, e in self._entries.items() if e.loop.is_closed()]:
            del self._entries[key]

    async def _guard(self, entry: _Entry[T]) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._entries.get(id(entry.loop)) is entry:
                    del self._entries[id(entry.loop)]
            entry.guard = None
            await self._release_once(entry)

    async def _release_once(self, entry: _Entry[T]) -> None:
        """Release an entry's resource exactly once, however many ways its end arrives."""
        if entry.release is None:
            entry.release = asyncio.ensure_future(self._release(entry.value))
        await asyncio.shield(entry.release)


class LoopThread:
    """A daemon thread running its own event loop, for calling async code from sync code.

    Closed at interpreter exit if still running, so the resources made on it are released.
    """

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
                _LIVE_THREADS.add(self)
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
        """Release the loop's resources (``LoopBound`` entries), stop the loop, join the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("LoopThread.close called from its own loop thread")
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()


class ClientPerLoop(Generic[C]):
    """One client per running event loop, closed when its loop ends (or on request)."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._clients: LoopBound[C] = LoopBound(factory, _aclose)

    def get(self) -> C:
        """The client for the running loop, made on first use in that loop."""
        client = self._clients.get()
        if getattr(client, "closed", False):
            self._clients.release_all()
            client = self._clients.get()
        return client

    async def aclose_current(self) -> None:
        """Close the running loop's client, if there is one."""
        await self._clients.release_current()

    def close_others(self) -> None:
        """Close the clients of other loops (scheduled on them, not waited for)."""
        self._clients.release_all()

    def __len__(self) -> int:
        return len(self._clients)


async def _aclose(client: Any) -> None:
    await client.aclose()


_LIVE_THREADS: weakref.WeakSet[LoopThread] = weakref.WeakSet()
_SYNC_RUNNER: LoopThread | None = None
_SYNC_LOCK = threading.Lock()


def sync_runner() -> LoopThread:
    """The process's loop thread for sync calls into async backends (shared by the adapters)."""
    global _SYNC_RUNNER
    with _SYNC_LOCK:
        if _SYNC_RUNNER is None:
            _SYNC_RUNNER = LoopThread(name="janus-space-sync")
        return _SYNC_RUNNER


def on_sync_runner() -> bool:
    """True on a LoopThread's own thread, which must never wait for itself."""
    return any(t._thread is threading.current_thread() for t in list(_LIVE_THREADS))


class BackendHandle:
    """The backend one adapter object uses, and the sync bridge to it; shared by both adapters.

    A backend given by the user is used as it is and never closed here. Otherwise one is built
    on first use from the object's settings and built again when the settings change (also in
    a copy whose private state was copied by reference). Sync calls run on the process's loop
    thread. Copies and unpickled objects get a fresh handle (see the adapters).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backend: Any = None
        self._key: Any = None

    def bind(self, owner: object) -> None:
        """Close what this handle built when ``owner`` is garbage-collected.

        Not at interpreter exit: the loop thread's shutdown releases every session then.
        """
        weakref.finalize(owner, self.close_soon).atexit = False

    def get(self, key: Any, build: Callable[[], T]) -> T:
        """The backend built for ``key`` (any value compared with ``==``), made when needed."""
        with self._lock:
            stale = self._backend
            if stale is not None and self._key == key and not getattr(stale, "closed", False):
                return cast(T, stale)
            self._backend, self._key = build(), key
            backend = self._backend
        if stale is not None and not getattr(stale, "closed", False):
            _close_soon(stale)
        return cast(T, backend)

    @property
    def built(self) -> Any:
        """The backend built so far, or None."""
        return self._backend

    async def aclose(self) -> None:
        """Close the built backend (this loop's resources now, the others' as they can be)."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            await backend.aclose()

    def close(self) -> None:
        """Sync ``aclose``, run on the loop thread (not from that thread: see ``close_soon``)."""
        if on_sync_runner():
            self.close_soon()
            return
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            sync_runner().run(backend.aclose())

    def close_soon(self) -> None:
        """Schedule closing without waiting (for finalizers, which may run on any thread)."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            _close_soon(backend)

    @staticmethod
    def run(coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine from sync code on the process's loop thread."""
        return sync_runner().run(coro)

    @staticmethod
    def iterate(iterable: AsyncIterable[T]) -> Iterator[T]:
        """Iterate an async stream from sync code on the process's loop thread."""
        return sync_runner().iterate(iterable)


def _close_soon(backend: Any) -> None:
    """Close a replaced or abandoned backend on the loop thread, without waiting for it."""
    runner = _SYNC_RUNNER
    if runner is None or runner._loop is None or not runner._loop.is_running():
        return  # it never ran sync calls; its loops' resources are released as they end
    with contextlib.suppress(RuntimeError):
        asyncio.run_coroutine_threadsafe(backend.aclose(), runner._loop)


@atexit.register
def _close_live_threads() -> None:
    for thread in list(_LIVE_THREADS):
        with contextlib.suppress(Exception):
            thread.close()
