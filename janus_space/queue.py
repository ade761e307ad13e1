"""The Gradio queue protocol (``sse_v3``): join jobs and read the session's one event stream.

One ``QueueSession`` is one Gradio ``session_hash``. Every job joined through it reports on a
single server-sent-event stream, told apart by ``event_id``; one reader task routes each
message to its job. The server closes the stream (``close_stream``) once no job is pending; the
reader opens it again whenever jobs remain. Only one reader may exist per session: two streams
on one session split its messages at random.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from .errors import JanusError, JanusTimeoutError, ProtocolError
from .events import Heartbeat, JobCompleted, StreamError, WireEvent, parse_message
from .sse import SSEDecoder
from .transport import error_for_status, translate_transport_error

logger = logging.getLogger("janus_space")

__all__ = ["Job", "QueueSession"]

HeadersFactory = Callable[[], Awaitable[Mapping[str, str]]]
_MAX_EMPTY_STREAMS = 3
_MAX_EARLY_EVENTS = 1000


class Job:
    """One joined job: its ``event_id`` and the events routed to it."""

    def __init__(self, event_id: str, fn_index: int) -> None:
        self.event_id = event_id
        self.fn_index = fn_index
        self.inbox: asyncio.Queue[WireEvent | JanusError] = asyncio.Queue()
        self.done = False
        self.completed = False  # the Space reported its end, or was told to cancel it


class QueueSession:
    """Joins jobs on one ``session_hash`` and multiplexes their events from one stream."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        headers: HeadersFactory,
        *,
        idle_timeout: float = 45.0,
        max_event_bytes: int = 16 * 1024 * 1024,
        request_timeout: float = 60.0,
        max_joins: int = 3,
    ) -> None:
        self._request_timeout = request_timeout
        self._http = session
        self._api = api_url.rstrip("/")
        self._headers = headers
        self._idle_timeout = idle_timeout
        self._max_event_bytes = max_event_bytes
        self.session_hash = secrets.token_hex(6)
        self._jobs: dict[str, Job] = {}
        self._early: dict[str, list[WireEvent]] = {}
        self._joining = 0
        self._joined_once = False
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        # Joins in flight plus the one stream stay within the client's connection budget.
        self._join_slots = asyncio.Semaphore(max_joins)

    @property
    def pending(self) -> int:
        """Jobs joined and not yet completed (plus joins in flight)."""
        return len(self._jobs) + self._joining

    async def join(self, fn_index: int, trigger_id: int | None, data: list[Any]) -> Job:
        """POST ``queue/join`` and register the job; starts the stream reader when needed."""
        if self._closed:
            raise JanusError("the client is closed")
        payload = {
            "data": data,
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": trigger_id,
            "session_hash": self.session_hash,
        }
        self._joining += 1
        try:
            if self._joined_once:
                self._ensure_reader()  # the session exists: open the stream while joining
            headers = await self._headers()
            async with (
                self._join_slots,
                self._http.post(
                    f"{self._api}/queue/join",
                    json=payload,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._request_timeout),
                ) as resp,
            ):
                body = await resp.read()
                if resp.status != 200:
                    raise error_for_status(resp.status, resp.headers, body, "join")
            try:
                event_id = json.loads(body)["event_id"]
            except (ValueError, KeyError, TypeError):
                raise ProtocolError("join: the Space's answer has no event_id") from None
            job = Job(str(event_id), fn_index)
            self._jobs[job.event_id] = job
            for event in self._early.pop(job.event_id, []):
                self._deliver(job, event)
            self._joined_once = True
        finally:
            self._joining -= 1
            if not self.pending:
                self._stop_reader()  # a failed join leaves no job: the stream would only idle
        self._ensure_reader()
        return job

    async def events(self, job: Job, *, deadline: float | None) -> AsyncIterator[WireEvent]:
        """The job's events until (and including) its ``JobCompleted``; typed errors raise.

        The deadline is a timer that drops a timeout error into the job's inbox, so waiting is a
        plain ``inbox.get()``: no helper task per wait, and a cancellation reaches it directly.
        """
        loop = asyncio.get_running_loop()
        timeout = JanusTimeoutError("the job did not finish within the call's timeout")
        timer = None if deadline is None else loop.call_at(deadline, job.inbox.put_nowait, timeout)
        try:
            while True:
                item = await job.inbox.get()
                if isinstance(item, JanusError):
                    raise item
                yield item
                if isinstance(item, JobCompleted):
                    return
        finally:
            if timer is not None:
                timer.cancel()

    async def cancel(self, job: Job) -> None:
        """Ask the Space to stop ``job`` (so no GPU time is spent for nothing); best effort."""
        if job.completed:
            return
        job.completed = True
        self._forget(job)
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError, RuntimeError):
            headers = await self._headers()
            payload = {
                "session_hash": self.session_hash,
                "fn_index": job.fn_index,
                "event_id": job.event_id,
            }
            async with self._http.post(
                f"{self._api}/cancel",
                json=payload,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                await resp.read()

    async def aclose(self) -> None:
        """Stop the reader and fail every pending job."""
        self._closed = True
        pending = list(self._jobs.values())
        if pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(self.cancel(j) for j in pending)), 5)
        for job in pending:
            self._fail(job, JanusError("the client was closed while the job was pending"))
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    # -- the reader -------------------------------------------------------------------------

    def _ensure_reader(self) -> None:
        if self._reader is None and not self._closed:
            self._reader = asyncio.get_running_loop().create_task(
                self._read_streams(), name=f"janus-stream-{self.session_hash}"
            )

    def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()

    def _forget(self, job: Job) -> None:
        job.done = True
        self._jobs.pop(job.event_id, None)

    def _deliver(self, job: Job, event: WireEvent) -> None:
        job.inbox.put_nowait(event)
        if isinstance(event, JobCompleted):
            job.completed = True
            self._forget(job)

    def _fail(self, job: Job, error: JanusError) -> None:
        job.inbox.put_nowait(error)
        self._forget(job)

    def _route(self, message: Mapping[str, Any]) -> bool:
        """Deliver one stream message; True when it was ``close_stream``."""
        if message.get("msg") == "close_stream":
            return True
        event = parse_message(message)
        if event is None:
            return False
        if isinstance(event, StreamError):
            error = ProtocolError(f"the Space's event stream failed: {event.message}")
            for job in list(self._jobs.values()):
                self._fail(job, error)
            return False
        if isinstance(event, Heartbeat):
            for job in self._jobs.values():
                job.inbox.put_nowait(event)
            return False
        event_id = message.get("event_id")
        target = self._jobs.get(str(event_id)) if event_id is not None else None
        if target is not None:
            self._deliver(target, event)
        elif event_id is not None and len(self._early) < _MAX_EARLY_EVENTS:
            # The stream can run ahead of a join's answer: keep the event for that job.
            self._early.setdefault(str(event_id), []).append(event)
        return False

    async def _read_streams(self) -> None:
        empty_streams = 0
        try:
            while not self._closed and self.pending:
                delivered = await self._read_one_stream()
                empty_streams = 0 if delivered else empty_streams + 1
                if empty_streams >= _MAX_EMPTY_STREAMS and self._jobs:
                    error = ProtocolError("the event stream ended without completing the job")
                    for job in list(self._jobs.values()):
                        self._fail(job, error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure: JanusError
            try:
                failure = translate_transport_error(exc, "event stream")
            except BaseException:
                failure = ProtocolError(f"event stream: {type(exc).__name__}")
            for job in list(self._jobs.values()):
                self._fail(job, failure)
        finally:
            if asyncio.current_task() is self._reader:
                self._reader = None
            if not self._joining:
                self._early.clear()
        if self.pending and not self._closed and self._reader is None:
            self._ensure_reader()

    async def _read_one_stream(self) -> int:
        """Read one stream to its end; returns how many job messages it delivered."""
        headers = dict(await self._headers())
        headers["Accept"] = "text/event-stream"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._idle_timeout)
        decoder = SSEDecoder(self._max_event_bytes)
        delivered = 0
        async with self._http.get(
            f"{self._api}/queue/data",
            params={"session_hash": self.session_hash},
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            if resp.status != 200:
                raise error_for_status(resp.status, resp.headers, await resp.read(), "event stream")
            try:
                async for chunk in resp.content.iter_any():
                    for data in decoder.feed(chunk):
                        try:
                            message = json.loads(data)
                        except ValueError:
                            raise ProtocolError("the event stream sent malformed JSON") from None
                        if not isinstance(message, Mapping):
                            raise ProtocolError("the event stream sent a non-object message")
                        if self._route(message):
                            return delivered
                        delivered += 1
            except ValueError as exc:  # from the decoder: an oversized line or event
                raise ProtocolError(f"the event stream is malformed: {exc}") from None
        return delivered
