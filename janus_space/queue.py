"""The Gradio queue protocol (``sse_v3``): join jobs, read their event streams, drop abandoned ones.

Every job runs in a Gradio session (``session_hash``) of its own. Gradio 5's ``/cancel`` only
stops a *running* task, and cancels every running task of the session and function; a job still
waiting in the queue leaves it only when its session's event stream disconnects (the server's
``clean_events`` then drops every queued job of that session). So a job that shared a session
could not be dropped without dropping its neighbours: here each pending job has its own session,
and abandoning it cuts that session's stream (drops it if queued) and posts ``/cancel`` (stops
it if running).

Sessions are reused one call after another: a session that ended cleanly (``close_stream``)
is known to the server, so the next call on it opens its stream together with its join (one
round trip). A session whose stream was cut keeps stale state on the server and is retired.

Queue traffic stays within ``max_connections`` requests at a time (joins plus open streams),
with at most ``max_connections - 1`` streams open so a join always finds a connection. A job
whose stream must wait still runs on the Space (Gradio keeps its messages until a stream reads
them); streams are granted in join order, the order the Space's queue runs jobs in.

A stream that ends before its job does is reopened with backoff and jitter; after a few
reopenings in a row that brought no new event the job fails with a ``ProtocolError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, Literal

import aiohttp

from .errors import JanusError, JanusTimeoutError, ProtocolError
from .events import (
    Heartbeat,
    JobCompleted,
    Queued,
    Started,
    StreamError,
    WireEvent,
    parse_message,
)
from .http import open_response, request, translate_transport_error
from .retry import Backoff
from .sse import SSEDecoder

logger = logging.getLogger("janus_space")

__all__ = ["MAX_FRUITLESS_REOPENS", "Job", "QueueSession"]

HeadersFactory = Callable[[], Awaitable[Mapping[str, str]]]
MAX_FRUITLESS_REOPENS = 3
"""Reopenings in a row that brought no new event before a job's stream counts as cut for good."""
_REOPEN_BACKOFF = Backoff(base=0.2, cap=2.0)
_MAX_EARLY_EVENTS = 1000
_MAX_IDLE_SESSIONS = 64
_CUT_READ_TIMEOUT = 10.0
_CUT_WAIT = 1.0  # the longest a cut waits for a quiet stream
_QUIET_SECONDS = 0.15  # silent this long, the server waits for messages (it polls at 50 ms)
_DRAIN_SECONDS = 1.0
StreamEnd = Literal["closed", "ended", "failed", "evicted"]


class Job:
    """One joined job: its ``event_id``, its session and the events routed to it."""

    def __init__(self, event_id: str, fn_index: int, session_hash: str = "") -> None:
        self.event_id = event_id
        self.fn_index = fn_index
        self.session_hash = session_hash
        self.inbox: asyncio.Queue[WireEvent | JanusError] = asyncio.Queue()
        self.done = False
        self.completed = False  # the Space reported its end, or was told to cancel it
        self._session: _Session | None = None


class _Session:
    """One Gradio session: at most one job, at most one reader of its stream."""

    def __init__(self) -> None:
        self.hash = secrets.token_hex(8)
        self.warm = False  # the server knows it and nothing is pending: open the stream early
        self.job: Job | None = None
        self.joining = False
        self.join_done = asyncio.Event()
        self.failure: JanusError | None = None  # the stream failed before the join answered
        self.reader: asyncio.Task[None] | None = None
        self.watched = False  # a stream is open and the server answered it: a cut is seen
        self.last_data_at = 0.0  # loop time of the last bytes its open stream brought
        self.covered = False  # the server ended a stream asked for after the job was queued
        self.clean_end = False  # the last stream ended with close_stream and no job left
        self.retired = False
        self.early: list[tuple[str, WireEvent]] = []  # events that ran ahead of the join
        self.seen: set[Hashable] = set()  # what the job's streams have brought so far

    @property
    def busy(self) -> bool:
        return self.job is not None or self.joining


def _fingerprint(event: WireEvent) -> Hashable:
    """What makes an event news: a queue place, a start, a progress step, a log line, the end."""
    if isinstance(event, Queued):
        return ("queued", event.rank, event.queue_size)
    if isinstance(event, Started):
        return ("started",)
    if isinstance(event, JobCompleted):
        return ("completed",)
    return event


class QueueSession:
    """Joins jobs (one Gradio session each, reused call by call) and routes their events."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        headers: HeadersFactory,
        *,
        idle_timeout: float = 45.0,
        max_event_bytes: int = 16 * 1024 * 1024,
        request_timeout: float = 60.0,
        max_connections: int = 4,
    ) -> None:
        """``max_connections``: queue requests in flight at once (joins, streams, cancels)."""
        budget = max(2, max_connections)
        self._request_timeout = request_timeout
        self._http = session
        self._api = api_url.rstrip("/")
        self._headers = headers
        self._idle_timeout = idle_timeout
        self._max_event_bytes = max_event_bytes
        self._jobs: dict[str, Job] = {}
        self._idle: list[_Session] = []
        self._live: set[_Session] = set()  # sessions with a job or a join in flight
        self._readers: set[asyncio.Task[None]] = set()
        self._joining = 0
        self._closed = False
        self._connections = asyncio.Semaphore(budget)
        self._streams = asyncio.Semaphore(budget - 1)  # a join always finds a connection

    @property
    def pending(self) -> int:
        """Jobs joined and not yet completed (plus joins in flight)."""
        return len(self._jobs) + self._joining

    @property
    def _early(self) -> dict[str, list[tuple[str, WireEvent]]]:
        """Events waiting for their join's answer, by session (empty once the queue is quiet)."""
        return {s.hash: s.early for s in self._live if s.early}

    # -- joining -----------------------------------------------------------------------------

    async def join(self, fn_index: int, trigger_id: int | None, data: list[Any]) -> Job:
        """POST ``queue/join`` on a session of the job's own; its stream opens with the join
        when the session is known to the server, else as soon as the join is answered."""
        if self._closed:
            raise JanusError("the client is closed")
        session = self._idle.pop() if self._idle else _Session()
        session.joining, session.failure, session.clean_end = True, None, False
        session.join_done.clear()
        session.early.clear()
        session.seen.clear()
        session.covered = False
        self._live.add(session)
        self._joining += 1
        payload = {
            "data": data,
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": trigger_id,
            "session_hash": session.hash,
        }
        job: Job | None = None
        try:
            if session.warm:
                self._start_reader(session)  # the server knows the session: stream now
            headers = dict(await self._headers())
            async with self._connections:
                reply = await request(
                    self._http,
                    "POST",
                    f"{self._api}/queue/join",
                    what="join",
                    json=payload,
                    headers=headers,
                    token_sent=_token_sent(headers),
                    timeout=aiohttp.ClientTimeout(total=self._request_timeout),
                )
            try:
                event_id = str(json.loads(reply.body)["event_id"])
            except (ValueError, KeyError, TypeError):
                raise ProtocolError("join: the Space's answer has no event_id") from None
            job = Job(event_id, fn_index, session.hash)
            job._session = session
            session.job = job
            self._jobs[event_id] = job
            for early_id, event in session.early:
                if early_id == event_id and not job.done:
                    self._deliver(job, event)
            session.early.clear()
            if session.failure is not None and not job.done:
                self._fail(job, session.failure)
        finally:
            session.joining = False
            session.join_done.set()
            self._joining -= 1
            if job is None:
                self._retire(session)  # its early stream (if any) is cut: never reuse it
        if job.done:
            self._live.discard(session)
        elif session.reader is None:
            self._start_reader(session)
        return job

    # -- events ------------------------------------------------------------------------------

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

    # -- leaving a job -----------------------------------------------------------------------

    async def cancel(self, job: Job) -> None:
        """Make sure the Space spends nothing more on ``job``; best effort, never raises.

        Cutting the job's session stream drops the job if it still waits in the queue (all
        Gradio 5 can do for a queued job); ``/cancel`` then stops it if it already runs.
        """
        if job.completed:
            return
        job.completed = True
        session = job._session
        self._forget(job)
        if session is not None:
            await self._cut(session)
        with contextlib.suppress(JanusError, OSError, RuntimeError):
            headers = dict(await self._headers())
            payload = {
                "session_hash": job.session_hash,
                "fn_index": job.fn_index,
                "event_id": job.event_id,
            }
            async with self._connections:
                await request(
                    self._http,
                    "POST",
                    f"{self._api}/cancel",
                    what="cancel",
                    json=payload,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                )

    async def _cut(self, session: _Session) -> None:
        """Disconnect the session's stream so the server drops its queued job; retire it.

        Gradio drops the queued job only when the disconnect reaches its stream loop while that
        loop waits for messages; a disconnect that lands while the server is still sending a
        message can be missed. So the stream is left once it has been quiet for a moment.
        """
        session.retired = True
        self._live.discard(session)
        reader = session.reader
        if session.watched and reader is not None:
            await self._until_quiet(session, reader)
        seen_by_server = session.watched or session.covered
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.wait({reader})
        if seen_by_server:
            # Gradio ends a stream it answered only at close_stream (nothing pending) or on a
            # disconnect, which drops the session's queued jobs: nothing is left in the queue.
            return
        # The server never answered a stream of this job (none opened yet, or refused): open one
        # and leave it once it is quiet, so the server's disconnect handler drops the job.
        with contextlib.suppress(JanusError, OSError, RuntimeError, ValueError):
            headers = dict(await self._headers())
            headers["Accept"] = "text/event-stream"
            async with (
                self._connections,
                open_response(
                    self._http,
                    "GET",
                    f"{self._api}/queue/data",
                    what="event stream",
                    params={"session_hash": session.hash},
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=_CUT_READ_TIMEOUT),
                ) as resp,
            ):
                loop = asyncio.get_running_loop()
                give_up = loop.time() + _CUT_WAIT
                while (left := give_up - loop.time()) > 0:
                    try:
                        chunk = await asyncio.wait_for(
                            resp.content.readany(), min(_QUIET_SECONDS, left)
                        )
                    except asyncio.TimeoutError:
                        break  # quiet: the server's stream loop is waiting for messages
                    if not chunk:
                        break  # the server ended it: nothing left to drop

    @staticmethod
    async def _until_quiet(session: _Session, reader: asyncio.Task[None]) -> None:
        """Wait (briefly) until the session's open stream has brought nothing for a moment."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _CUT_WAIT
        while session.watched and not reader.done():
            now = loop.time()
            quiet = now - session.last_data_at
            if quiet >= _QUIET_SECONDS or now >= give_up:
                return
            await asyncio.sleep(min(_QUIET_SECONDS - quiet, give_up - now))

    async def aclose(self) -> None:
        """Cancel every pending job on the Space, stop the readers and fail the jobs' calls."""
        self._closed = True
        pending = list(self._jobs.values())
        if pending:
            cancels = [asyncio.ensure_future(self.cancel(job)) for job in pending]
            _, late = await asyncio.wait(cancels, timeout=5)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for job in pending:
            self._fail(job, JanusError("the client was closed while the job was pending"))
        readers = list(self._readers)
        for reader in readers:
            reader.cancel()
        if readers:
            await asyncio.wait(readers)
        self._idle.clear()
        self._live.clear()

    # -- sessions and routing ----------------------------------------------------------------

    def _start_reader(self, session: _Session) -> None:
        if self._closed or session.reader is not None:
            return
        task = asyncio.get_running_loop().create_task(
            self._read_session(session), name=f"janus-stream-{session.hash}"
        )
        session.reader = task
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    def _retire(self, session: _Session) -> None:
        session.retired = True
        self._live.discard(session)
        if session.reader is not None:
            session.reader.cancel()

    def _forget(self, job: Job) -> None:
        job.done = True
        self._jobs.pop(job.event_id, None)
        session = job._session
        if session is not None and session.job is job:
            session.job = None

    def _deliver(self, job: Job, event: WireEvent) -> None:
        job.inbox.put_nowait(event)
        if isinstance(event, JobCompleted):
            job.completed = True
            self._forget(job)

    def _fail(self, job: Job, error: JanusError) -> None:
        job.inbox.put_nowait(error)
        self._forget(job)

    def _route(self, session: _Session, message: Mapping[str, Any]) -> bool | StreamEnd:
        """Deliver one stream message to the session's job; True when it was news.

        Returns ``"closed"`` for ``close_stream``, ``"failed"`` when the server reported an
        error for the stream, ``"evicted"`` when the server forgot a session whose join (which
        makes it anew) is still on its way.
        """
        if message.get("msg") == "close_stream":
            return "closed"
        event = parse_message(message)
        if event is None:
            return False
        job = session.job
        if isinstance(event, StreamError):
            if job is None and session.joining and _session_not_found(message, event):
                return "evicted"
            error = ProtocolError(f"the Space's event stream failed: {event.message}")
            if job is not None:
                self._fail(job, error)
            else:
                session.failure = error
            return "failed"
        if isinstance(event, Heartbeat):
            if job is not None:
                job.inbox.put_nowait(event)
            return False
        event_id = message.get("event_id")
        if event_id is None:
            return False
        fingerprint = _fingerprint(event)
        news = fingerprint not in session.seen
        if job is not None and str(event_id) == job.event_id:
            session.seen.add(fingerprint)
            self._deliver(job, event)
            return news
        if job is None and session.joining and len(session.early) < _MAX_EARLY_EVENTS:
            # The stream can run ahead of the join's answer: keep the event for that job.
            session.seen.add(fingerprint)
            session.early.append((str(event_id), event))
            return news
        return False  # a message of an earlier job of this session: nothing to do with ours

    async def _read_session(self, session: _Session) -> None:
        """Read the session's stream until its job ends, reopening a stream cut too early."""
        fruitless = 0  # reopenings in a row that brought no new event
        reopens = 0
        try:
            while not self._closed and session.busy and not session.retired:
                async with self._streams, self._connections:
                    if not session.busy:
                        break
                    end, news = await self._read_one_stream(session)
                if session.joining and end in ("closed", "evicted"):
                    # Evicted: the join makes the session anew. Closed: the job ran ahead of
                    # its join's answer and is over; the join delivers its early events.
                    await session.join_done.wait()
                if not session.busy:
                    session.clean_end = end == "closed"
                    break
                if end == "failed":
                    break
                if end == "evicted":
                    continue
                if reopens:
                    fruitless = 0 if news else fruitless + 1
                if fruitless >= MAX_FRUITLESS_REOPENS:
                    error = ProtocolError(
                        "the Space's event stream ended without completing the job: it was cut "
                        f"{reopens + 1} times ({reopens} reopenings, the last {fruitless} with no "
                        "new event); a proxy or the Space closes it early"
                    )
                    if session.job is not None:
                        self._fail(session.job, error)
                    else:
                        session.failure = error
                    break
                delay = _REOPEN_BACKOFF.delay(fruitless) or 0.0
                logger.debug("event stream ended early; reopening in %.2fs", delay)
                await asyncio.sleep(delay)
                reopens += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure: JanusError
            try:
                failure = translate_transport_error(exc, "event stream")
            except BaseException:
                failure = ProtocolError(f"event stream: {type(exc).__name__}")
            if session.job is not None:
                self._fail(session.job, failure)
            else:
                session.failure = failure
        finally:
            session.watched = False
            if session.reader is asyncio.current_task():
                session.reader = None
            self._after_reader(session)

    def _after_reader(self, session: _Session) -> None:
        """A session whose last stream closed cleanly with nothing pending serves the next call."""
        if session.busy:
            return  # its join is still on the way: the join decides
        self._live.discard(session)
        if session.retired or self._closed:
            session.retired = True
            return
        if session.clean_end and len(self._idle) < _MAX_IDLE_SESSIONS:
            session.warm = True
            session.early.clear()
            self._idle.append(session)
        else:
            session.retired = True

    async def _read_one_stream(self, session: _Session) -> tuple[StreamEnd, bool]:
        """Read one stream to its end: how it ended, and whether it brought any news."""
        headers = dict(await self._headers())
        headers["Accept"] = "text/event-stream"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._idle_timeout)
        decoder = SSEDecoder(self._max_event_bytes)
        news = False
        after_join = session.job is not None  # asked for once the Space has queued the job
        try:
            async with open_response(
                self._http,
                "GET",
                f"{self._api}/queue/data",
                what="event stream",
                params={"session_hash": session.hash},
                headers=headers,
                token_sent=_token_sent(headers),
                timeout=timeout,
            ) as resp:
                # The server's stream loop runs from its answer on: a cut from now on is seen.
                session.watched = True
                session.last_data_at = asyncio.get_running_loop().time()
                try:
                    async for chunk in resp.content.iter_any():
                        session.last_data_at = asyncio.get_running_loop().time()
                        for data in decoder.feed(chunk):
                            try:
                                message = json.loads(data)
                            except ValueError:
                                raise ProtocolError(
                                    "the event stream sent malformed JSON"
                                ) from None
                            if not isinstance(message, Mapping):
                                raise ProtocolError("the event stream sent a non-object message")
                            verdict = self._route(session, message)
                            if isinstance(verdict, str):
                                if verdict == "closed":
                                    session.covered |= after_join
                                    await _read_to_the_end(resp)
                                return verdict, news
                            news = news or verdict
                except ValueError as exc:  # from the decoder: an oversized line or event
                    raise ProtocolError(f"the event stream is malformed: {exc}") from None
        finally:
            session.watched = False
        session.covered |= after_join  # the server ended it: it is done with the session's queue
        return "ended", news


async def _read_to_the_end(resp: aiohttp.ClientResponse) -> None:
    """After ``close_stream`` the server ends the body at once: read that end, so the connection
    goes back to the pool (and the server sees a finished stream, not a disconnect)."""
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        await asyncio.wait_for(resp.content.read(), _DRAIN_SECONDS)


def _token_sent(headers: Mapping[str, str]) -> bool:
    """Whether the request carries the HF token (for an access-denied message)."""
    return any(name.lower() == "x-hf-authorization" for name in headers)


def _session_not_found(message: Mapping[str, Any], event: StreamError) -> bool:
    return bool(message.get("session_not_found")) or "session not found" in event.message.lower()
