"""The one thread that runs generations, the queue of calls waiting for it, and their inboxes.

A GPU runs one generation at a time, so every call becomes a ``Job`` in this queue. The
worker thread takes jobs in order and reports through each job's ``post`` callable, which
puts items in the caller's ``Mailbox`` (made in the caller's event loop for that one call),
so no state here belongs to an event loop and any loop, or several, can use the same worker.
Waiting jobs learn their place (``Queued``) when they arrive and whenever it changes; a job
cancelled while waiting leaves the queue at once, and a running one sees ``cancelled`` at its
next token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import JanusError
from ..events import Queued, Started

logger = logging.getLogger("janus_space")

__all__ = ["WAKE_INTERVAL", "Finished", "Job", "Mailbox", "Worker"]

WAKE_INTERVAL = 0.005
"""Seconds between two collections of a call's items while tokens arrive faster than that."""


@dataclass(frozen=True)
class Finished:
    """The last item a job posts: its result, or the error it ended with."""

    result: Any = None
    error: BaseException | None = None


class Mailbox:
    """One call's inbox: items come from the worker thread, the caller awaits them in its loop.

    Every item is kept (one ``TextDelta`` per token), but waking another thread's loop costs
    more than a small model takes per token, so wake-ups are paced: the first item of a burst
    wakes the loop at once, and while items keep coming the loop collects them every
    ``WAKE_INTERVAL`` seconds instead of being woken for each. A model slower than that
    (any real one on a GPU) still gets every token delivered as it comes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[object] = deque()
        self._lock = threading.Lock()
        self._awake = False  # the loop has been woken and collects until the burst ends
        self._ready = asyncio.Event()

    def put(self, item: object) -> None:
        """Add an item (from any thread); raises RuntimeError once the loop is closed."""
        with self._lock:
            self._items.append(item)
            if self._awake:
                if self._loop.is_closed():
                    raise RuntimeError("the caller's event loop is closed")
                return
            self._awake = True
        self._loop.call_soon_threadsafe(self._collect)

    def _collect(self) -> None:
        """On the loop: hand over what arrived; look again shortly while the burst goes on."""
        with self._lock:
            if not self._items:
                self._awake = False  # the burst is over: the next item wakes the loop
                return
        self._ready.set()
        self._loop.call_later(WAKE_INTERVAL, self._collect)

    async def get(self) -> object:
        """The next item, waiting in the caller's loop while there is none."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                self._ready.clear()
            await self._ready.wait()


class Job:
    """One call's work for the worker thread, and how it reports back to its caller."""

    def __init__(self, work: Callable[[Job], Any], post: Callable[[object], object]) -> None:
        self._work = work
        self._post = post
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        """True once the caller left (or the backend closed): stop at the next token."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Ask the job to stop; a running generation checks this at every token."""
        self._cancelled.set()

    def post(self, item: object) -> None:
        """Send an event to the caller; a caller whose loop is gone cancels the job."""
        try:
            self._post(item)
        except RuntimeError:  # the caller's event loop is closed: nobody reads any more
            self.cancel()

    def run(self) -> None:
        """Do the work on the worker thread and post how it ended (never raises)."""
        try:
            result = self._work(self)
        except BaseException as exc:
            self.post(Finished(error=exc))
            if not isinstance(exc, Exception):
                raise
        else:
            self.post(Finished(result=result))


class Worker:
    """A queue of jobs and the daemon thread that runs them one at a time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._thread: threading.Thread | None = None
        self._running: Job | None = None
        self._stopping = False
        self._exited = False
        self._on_exit: list[Callable[[], None]] = []

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread once a job started it."""
        return self._thread

    def submit(self, job: Job) -> None:
        """Queue a job (starting the thread on first use); it gets ``Queued`` with its rank."""
        with self._cond:
            if self._stopping:
                raise JanusError("this LocalJanus is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._pending.append(job)
            job.post(Queued(rank=len(self._pending) - 1, queue_size=len(self._pending)))
            self._cond.notify()

    def withdraw(self, job: Job) -> bool:
        """Take a waiting job out of the queue; False when it already runs (or ran)."""
        with self._cond:
            try:
                index = self._pending.index(job)
            except ValueError:
                return False
            del self._pending[index]
            self._announce(start=index)
            return True

    def stop(self, on_exit: Callable[[], None]) -> None:
        """Refuse new jobs, fail the waiting ones, cancel the running one, let the thread end.

        ``on_exit`` is called (from the worker thread, or here if it never started) once the
        thread has nothing left to do.
        """
        with self._cond:
            self._stopping = True
            waiting = list(self._pending)
            self._pending.clear()
            if self._running is not None:
                self._running.cancel()
            started = self._thread is not None and not self._exited
            if started:
                self._on_exit.append(on_exit)
            self._cond.notify_all()
        for job in waiting:
            job.cancel()
            job.post(Finished(error=JanusError("the LocalJanus was closed before this call ran")))
        if not started:
            on_exit()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after ``stop``)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _announce(self, start: int = 0) -> None:
        """Tell waiting jobs from ``start`` on their new place (call with the lock held)."""
        size = len(self._pending)
        for rank in range(start, size):
            self._pending[rank].post(Queued(rank=rank, queue_size=size))

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._pending and not self._stopping:
                        self._cond.wait()
                    if not self._pending:
                        return
                    job = self._pending.popleft()
                    self._running = job
                    self._announce()
                try:
                    if job.cancelled:
                        job.post(Finished(error=JanusError("the call was cancelled")))
                    else:
                        job.post(Started())
                        job.run()
                except Exception:  # pragma: no cover - Job.run reports its own errors
                    logger.exception("local generation worker: a job failed to report")
                finally:
                    with self._cond:
                        self._running = None
        finally:
            with self._cond:
                self._exited = True
                callbacks, self._on_exit = self._on_exit, []
            for callback in callbacks:
                callback()
