"""A small aiohttp server that speaks the Janus Space's Gradio protocol, with switches for faults.

It serves what the client uses (``GET /config``, ``/gradio_api/upload``, ``queue/join``,
``queue/data``, ``cancel``, ``file=``), a fake Hub (``/api/spaces/{id}`` and ``.../jwt``) and
plain image files for URL inputs, on 127.0.0.1 at a random port. Every request is recorded
(endpoint, path, query, headers, body, time) so tests can count requests and check headers.

Faults come three ways:

* ``server.fail(endpoint, HttpFault(...))``: the next N requests to an endpoint answer a status
  (with a body and headers), hang (accept, then say nothing) or reset the connection.
* ``server.fail_stream(StreamFault(kind))``: the next N event streams break in a given way
  (502, reset mid-stream, end without ``process_completed``, go silent, malformed or oversized
  lines, the server's own ``unexpected_error``, raw bytes, or ``cut``: a middlebox that lets
  ``estimation`` and ``process_starts`` through and closes the stream, again on every reopen);
  ``stream_fault_rate`` picks one at random as a stream opens, ``message_fault_rate`` breaks a
  stream before a random message.
* Markers in the question or prompt, like the replica's, decide one job's fate (see
  :func:`parse_markers`): ``[quota]``, ``[quota0]``, ``[nogpu]``/``[nogpu:K]``, ``[apperror]``,
  ``[errnull]``, ``[hang]``, ``[slow:N]``, ``[vanish]``, ``[odd]`` (unknown messages),
  ``[join:STATUS]``/``[join:STATUS:K]`` (the first K joins of that text answer STATUS) and
  ``[full]``/``[full:K]`` (Gradio's "Queue is full" 503), ``[inline413]`` (413 for a join
  that carries its image inline, as a proxy capping the body size would).

A successful understanding job answers ``answer: <question>``; a generation job serves five
small PNGs whose ``tEXt`` chunk carries the prompt, so a test can tell every call's own result.

``python tests/reliability/fault_server.py [--stream-fault-rate R ...]`` serves one until
killed (printing its URL first, with ``GET /__stats`` for counters): ``benchmarks/soak.py``
runs it in a subprocess so the client's figures are its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import secrets
import struct
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = [
    "APP_ERROR_TEXT",
    "GENERATE_FN",
    "NO_GPU_TEXT",
    "QUOTA_TEXT",
    "QUOTA_TEXT_NO_TIME",
    "UNDERSTAND_FN",
    "FaultServer",
    "HttpFault",
    "Markers",
    "Recorded",
    "StreamFault",
    "config_document",
    "parse_markers",
    "running_fault_server",
    "tiny_png",
]

UNDERSTAND_FN = 2
GENERATE_FN = 3
QUOTA_TEXT = (
    "You have exceeded your GPU quota (60s requested vs. 42s left). Try again in 0:00:07. "
    '<a href="https://huggingface.co/join">Sign up</a>'
)
QUOTA_TEXT_NO_TIME = "You have exceeded your GPU quota (60s requested vs. 0s left)."
NO_GPU_TEXT = "No GPU was available"
QUEUE_FULL = -503  # join_status meaning Gradio's "Queue is full" 503
APP_ERROR_TEXT = "Something <b>bad</b> happened"

Endpoint = Literal[
    "root", "config", "upload", "join", "data", "cancel", "file", "image", "hub", "jwt"
]
SPACE_ENDPOINTS: frozenset[str] = frozenset(
    {"root", "config", "upload", "join", "data", "cancel", "file"}
)
StreamKind = Literal[
    "reset",
    "end_early",
    "silent",
    "malformed",
    "non_object",
    "oversized",
    "unexpected_error",
    "http_502",
    "raw",
    "cut",
]
STREAM_KINDS: tuple[StreamKind, ...] = (
    "http_502",
    "reset",
    "end_early",
    "silent",
    "malformed",
    "non_object",
    "oversized",
    "unexpected_error",
)

_MARKER = re.compile(
    r"\[(quota0|quota|nogpu|apperror|errnull|hang|vanish|slow|join|full|odd|inline413)((?::\d+)*)\]"
)


def config_document(version: str = "5.50.0") -> dict[str, Any]:
    """The parts of the Space's ``/config`` a client reads, with the Space's ids and layout."""
    return {
        "version": version,
        "mode": "blocks",
        "protocol": "sse_v3",
        "api_prefix": "/gradio_api",
        "components": [],
        "dependencies": [
            {"id": 0, "api_name": "load_example", "targets": [[12, "click"]], "inputs": [3, 5]},
            {"id": 1, "api_name": "load_example_1", "targets": [[22, "click"]], "inputs": [18]},
            {
                "id": UNDERSTAND_FN,
                "api_name": "multimodal_understanding",
                "targets": [[10, "click"]],
                "inputs": [3, 5, 6, 7, 8],
                "outputs": [11],
            },
            {
                "id": GENERATE_FN,
                "api_name": "generate_image",
                "targets": [[20, "click"]],
                "inputs": [18, 19, 15, 16],
                "outputs": [21],
            },
        ],
    }


def tiny_png(text: str = "", side: int = 2) -> bytes:
    """A valid ``side``x``side`` grey PNG; ``text`` rides in a ``tEXt`` chunk (key ``prompt``)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    raw = zlib.compress((b"\x00" + b"\x80" * (3 * side)) * side)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    if text:
        parts.append(chunk(b"tEXt", b"prompt\x00" + text.encode("utf-8")))
    parts += [chunk(b"IDAT", raw), chunk(b"IEND", b"")]
    return b"".join(parts)


@dataclass(frozen=True)
class Markers:
    """What the markers in one question or prompt ask the fault server to do."""

    quota: bool = False
    quota_no_time: bool = False
    no_gpu: int = 0  # fail the first N runs of this text (a large number: always)
    app_error: bool = False
    error_null: bool = False
    hang: bool = False
    odd: bool = False  # send a message of a kind the client does not know, and a log line
    vanish: bool = False
    slow: int = 0
    join_status: int | None = None
    join_times: int = 1_000_000
    inline_413: bool = False  # refuse joins that carry the image inline (a data: URL)


def parse_markers(text: str) -> Markers:
    """Read ``[marker]`` / ``[marker:N]`` / ``[join:STATUS:K]`` tokens from ``text``."""
    found: dict[str, Any] = {}
    for match in _MARKER.finditer(text):
        name = match.group(1)
        args = [int(a) for a in match.group(2).split(":") if a]
        if name == "quota":
            found["quota"] = True
        elif name == "quota0":
            found["quota_no_time"] = True
        elif name == "nogpu":
            found["no_gpu"] = args[0] if args else 1_000_000
        elif name == "apperror":
            found["app_error"] = True
        elif name == "errnull":
            found["error_null"] = True
        elif name == "hang":
            found["hang"] = True
        elif name == "odd":
            found["odd"] = True
        elif name == "inline413":
            found["inline_413"] = True
        elif name == "vanish":
            found["vanish"] = True
        elif name == "slow":
            found["slow"] = args[0] if args else 3
        elif name == "join" and args:
            found["join_status"] = args[0]
            if len(args) > 1:
                found["join_times"] = args[1]
        elif name == "full":
            found["join_status"] = QUEUE_FULL
            if args:
                found["join_times"] = args[0]
    return Markers(**found)


@dataclass
class HttpFault:
    """How the next ``times`` requests to one endpoint fail (``None``: every request)."""

    status: int = 500
    body: str | bytes = "Internal Server Error"
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)
    action: Literal["respond", "hang", "reset"] = "respond"
    times: int | None = None


@dataclass
class StreamFault:
    """How the next ``times`` event streams break (``None``: every stream).

    ``after`` messages of the session are sent first (for ``reset``, ``malformed`` and
    ``non_object``); ``size`` is the length of the ``oversized`` line; ``raw`` sends ``payload``
    as the whole body.
    """

    kind: StreamKind
    times: int | None = None
    after: int = 1
    size: int = 17 * 1024 * 1024
    payload: bytes = b""


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    endpoint: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    at: float


@dataclass
class _Job:
    event_id: str
    session: str
    fn_index: int
    text: str
    data: list[Any]
    task: asyncio.Task[None] | None = None
    finished: bool = False


class _Mailbox:
    """A session's undelivered messages (Gradio keeps them until a stream reads them)."""

    def __init__(self) -> None:
        self._items: deque[dict[str, Any]] = deque()
        self._changed = asyncio.Event()

    def put(self, message: dict[str, Any]) -> None:
        self._items.append(message)
        self._changed.set()

    def put_front(self, message: dict[str, Any]) -> None:
        self._items.appendleft(message)
        self._changed.set()

    def get_nowait(self) -> dict[str, Any] | None:
        return self._items.popleft() if self._items else None

    async def get(self, timeout: float) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._items:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        return self._items.popleft()


@dataclass
class _Session:
    mailbox: _Mailbox = field(default_factory=_Mailbox)
    pending: set[str] = field(default_factory=set)


@dataclass
class UserImage:
    """A file served at ``/images/{name}`` (an image URL a user passes in)."""

    body: bytes
    status: int = 200
    content_type: str = "image/png"
    chunked: bool = False  # no Content-Length: the client must count bytes itself
    location: str | None = None  # answer a redirect to this URL instead


class FaultServer:
    """The fake Space (and Hub, and image host). Use :func:`running_fault_server` to run one."""

    def __init__(
        self,
        *,
        heartbeat: float = 15.0,
        step_delay: float = 0.02,
        stream_fault_rate: float = 0.0,
        stream_fault_kinds: tuple[StreamKind, ...] = ("reset", "end_early", "malformed"),
        message_fault_rate: float = 0.0,
        seed: int | None = None,
        keep_history: bool = True,
    ) -> None:
        self.keep_history = keep_history  # False: count requests, forget bodies and old jobs
        self.counts: Counter[str] = Counter()
        self.heartbeat = heartbeat
        self.step_delay = step_delay
        self.stream_fault_rate = stream_fault_rate
        self.stream_fault_kinds = stream_fault_kinds
        self.message_fault_rate = message_fault_rate  # break a stream before a message
        self.random = random.Random(seed)
        self.requests: list[Recorded] = []
        self.cancels: list[dict[str, Any]] = []
        self.faults: dict[str, HttpFault] = {}
        self.stream_faults: deque[StreamFault] = deque()
        self.stream_faults_applied: Counter[str] = Counter()
        self.files: dict[str, bytes] = {}
        self.images: dict[str, UserImage] = {}
        self.hub_stage: str | None = "RUNNING"
        self.jwt: str | None = None
        self.jwt_status = 200
        self.join_delay = 0.0  # seconds between queueing a job and answering its join
        self.hub_delay = 0.0  # seconds before the fake Hub answers a Space's stage
        self.config_body: bytes = json.dumps(config_document()).encode()
        self.open_streams = 0
        self.streams_finished = 0
        self.jobs: dict[str, _Job] = {}
        self._sessions: dict[str, _Session] = {}
        self._runs: Counter[str] = Counter()
        self._join_fails: Counter[str] = Counter()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.url = ""

    # -- switches and counters ---------------------------------------------------------------

    def fail(self, endpoint: Endpoint, fault: HttpFault) -> None:
        """Make ``endpoint`` fail as ``fault`` says (replacing an earlier fault there)."""
        self.faults[endpoint] = fault

    def fail_stream(self, fault: StreamFault) -> None:
        """Queue a stream fault; faults apply in order, each to ``fault.times`` streams."""
        self.stream_faults.append(fault)

    def clear_faults(self) -> None:
        """Back to a healthy server."""
        self.faults.clear()
        self.stream_faults.clear()
        self.stream_fault_rate = 0.0

    def count(self, endpoint: str) -> int:
        """How many requests reached ``endpoint``."""
        return self.counts[endpoint]

    def stats(self) -> dict[str, Any]:
        """Counters for a soak run: requests per endpoint, cancels, jobs still running."""
        return {
            "requests": dict(self.counts),
            "cancels": len(self.cancels) if self.keep_history else self.counts["cancel"],
            "running_jobs": sum(1 for j in self.jobs.values() if not j.finished),
            "open_streams": self.open_streams,
            "stream_faults": dict(self.stream_faults_applied),
        }

    def of(self, endpoint: str) -> list[Recorded]:
        """The recorded requests to ``endpoint``, oldest first."""
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def space_requests(self) -> list[Recorded]:
        """Requests to the Space's own endpoints (not the Hub, not user images)."""
        return [r for r in self.requests if r.endpoint in SPACE_ENDPOINTS]

    # -- lifetime --------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on 127.0.0.1 at a free port; returns the base URL."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._root, name="root")
        app.router.add_get("/config", self._config, name="config")
        app.router.add_post("/gradio_api/upload", self._upload, name="upload")
        app.router.add_post("/gradio_api/queue/join", self._join, name="join")
        app.router.add_get("/gradio_api/queue/data", self._data, name="data")
        app.router.add_post("/gradio_api/cancel", self._cancel, name="cancel")
        app.router.add_get("/gradio_api/file={path:.*}", self._file, name="file")
        app.router.add_get("/images/{name}", self._image, name="image")
        app.router.add_get("/api/spaces/{owner}/{name}/jwt", self._jwt, name="jwt")
        app.router.add_get("/api/spaces/{owner}/{name}", self._hub, name="hub")
        app.router.add_get("/__stats", self._stats, name="stats")
        self._runner = web.AppRunner(
            app, shutdown_timeout=1.0, handler_cancellation=True, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        """Stop: end hanging handlers and running jobs, close every connection."""
        self._stopping.set()
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hang(self) -> None:
        await self._stopping.wait()
        raise web.HTTPServiceUnavailable(text="server stopping")

    # -- middleware: record, then apply HTTP faults -----------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route
        endpoint = route.name or "unknown"
        body = await request.read()
        self.counts[endpoint] += 1
        if self.keep_history:
            self.requests.append(
                Recorded(
                    endpoint=endpoint,
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    body=body,
                    at=time.monotonic(),
                )
            )
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            fault = self.faults.get(endpoint)
            if fault is not None and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return await self._apply(request, fault)
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self._handlers.discard(task)

    async def _apply(self, request: web.Request, fault: HttpFault) -> web.StreamResponse:
        if fault.action == "hang":
            await self._hang()
        if fault.action == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        body = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return web.Response(
            status=fault.status,
            body=body,
            headers={"Content-Type": fault.content_type, **fault.headers},
        )

    # -- the Space -------------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><html>Janus-Pro (fault server)</html>", content_type="text/html"
        )

    async def _config(self, request: web.Request) -> web.Response:
        return web.Response(body=self.config_body, content_type="application/json")

    async def _upload(self, request: web.Request) -> web.Response:
        # The middleware has read the body already: split the multipart body by hand.
        boundary = request.content_type == "multipart/form-data" and re.search(
            r'boundary="?([^";]+)"?', request.headers.get("Content-Type", "")
        )
        if not boundary:
            return web.json_response({"detail": "not multipart"}, status=422)
        paths = []
        for part in (await request.read()).split(b"--" + boundary.group(1).encode())[1:]:
            head, sep, data = part.partition(b"\r\n\r\n")
            name = re.search(rb'filename="([^"]*)"', head)
            if not sep or b'name="files"' not in head:
                continue
            filename = name.group(1).decode() if name else "file"
            path = f"/tmp/gradio/{secrets.token_hex(8)}/{filename}"
            self.files[path] = data[:-2] if data.endswith(b"\r\n") else data
            paths.append(path)
        return web.json_response(paths)

    async def _join(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"detail": [{"msg": "invalid json"}]}, status=422)
        session_hash = payload.get("session_hash") if isinstance(payload, dict) else None
        if not isinstance(session_hash, str) or not session_hash:
            return web.Response(status=400, text="Session hash not found.")
        fn_index = payload.get("fn_index")
        data = payload.get("data")
        if fn_index not in (UNDERSTAND_FN, GENERATE_FN) or not isinstance(data, list):
            return web.Response(status=500, text="Traceback (most recent call last):\n KeyError")
        text_at = 1 if fn_index == UNDERSTAND_FN else 0
        text = data[text_at] if len(data) > text_at and isinstance(data[text_at], str) else ""
        markers = parse_markers(text)
        if markers.inline_413 and b'"data:' in await request.read():
            return self._join_failure(413)
        if markers.join_status is not None and self._join_fails[text] < markers.join_times:
            self._join_fails[text] += 1
            return self._join_failure(markers.join_status)
        session = self._sessions.setdefault(session_hash, _Session())
        job = _Job(secrets.token_hex(16), session_hash, int(fn_index), text, data)
        self.jobs[job.event_id] = job
        session.pending.add(job.event_id)
        job.task = asyncio.get_running_loop().create_task(self._run_job(job, session, markers))
        if self.join_delay:
            await asyncio.sleep(self.join_delay)
        return web.json_response({"event_id": job.event_id})

    def _join_failure(self, status: int) -> web.Response:
        if status == QUEUE_FULL:
            return web.json_response(
                {"detail": "Queue is full. Max size is 1 and size is 1."}, status=503
            )
        if status == 429:
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "0"})
        if status == 413:
            return web.Response(status=413, text="Request Entity Too Large")
        return web.Response(status=status, text=f"HTTP {status} from the fault server")

    async def _run_job(self, job: _Job, session: _Session, markers: Markers) -> None:
        box, eid = session.mailbox, job.event_id
        try:
            box.put(
                {"msg": "estimation", "event_id": eid, "rank": 0, "queue_size": 1, "rank_eta": None}
            )
            box.put({"msg": "process_starts", "event_id": eid, "eta": None})
            if markers.odd:
                box.put({"msg": "unheard_of", "event_id": eid})
                box.put({"msg": "log", "event_id": eid, "log": "odd job", "level": "warning"})
            if markers.hang:
                await self._stopping.wait()
                return
            for step in range(markers.slow):
                box.put(
                    {
                        "msg": "progress",
                        "event_id": eid,
                        "progress_data": [
                            {
                                "index": step,
                                "length": markers.slow,
                                "unit": "steps",
                                "progress": None,
                                "desc": "fault server working",
                            }
                        ],
                    }
                )
                await asyncio.sleep(self.step_delay)
            self._runs[job.text] += 1
            box.put(self._completion(job, markers))
        except asyncio.CancelledError:
            return
        finally:
            job.finished = True
            if not self.keep_history:
                self.jobs.pop(job.event_id, None)

    def _completion(self, job: _Job, markers: Markers) -> dict[str, Any]:
        eid = job.event_id
        error: str | None = None
        failed = True
        if markers.quota:
            error = QUOTA_TEXT
        elif markers.quota_no_time:
            error = QUOTA_TEXT_NO_TIME
        elif markers.no_gpu and self._runs[job.text] <= markers.no_gpu:
            error = NO_GPU_TEXT
        elif markers.app_error:
            error = APP_ERROR_TEXT
        elif markers.error_null:
            error = None
        else:
            failed = False
        if failed:
            return {
                "msg": "process_completed",
                "event_id": eid,
                "success": False,
                "output": {"error": error, "title": "Error" if error else None},
            }
        if job.fn_index == UNDERSTAND_FN:
            data: list[Any] = [f"answer: {job.text}"]
        else:
            gallery = []
            for index in range(5):
                path = f"/tmp/gradio/{eid}/image{index}.png"
                if not markers.vanish:
                    self.files[path] = tiny_png(f"{job.text}#{index}")
                gallery.append(
                    {
                        "image": {
                            "path": path,
                            "url": f"{self.url}/gradio_api/file={path}",
                            "orig_name": f"image{index}.png",
                            "size": None,
                            "mime_type": "image/png",
                            "meta": {"_type": "gradio.FileData"},
                        },
                        "caption": None,
                    }
                )
            data = [gallery]
        return {
            "msg": "process_completed",
            "event_id": eid,
            "success": True,
            "output": {
                "data": data,
                "is_generating": False,
                "duration": 0.01,
                "average_duration": 0.01,
            },
        }

    async def _cancel(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        if self.keep_history:
            self.cancels.append(payload)
        job = self.jobs.get(str(payload.get("event_id")))
        if job is not None and not job.finished and job.task is not None:
            job.task.cancel()
            session = self._sessions[job.session]
            session.mailbox.put(
                {
                    "msg": "process_completed",
                    "event_id": job.event_id,
                    "success": True,
                    "output": {},
                }
            )
        return web.json_response({"success": True})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["path"])
        if data is not None and not self.keep_history:
            del self.files[request.match_info["path"]]  # served once: the client downloads once
        if data is None:
            return web.Response(status=403, text="File not allowed")
        return web.Response(body=data, content_type="image/png")

    # -- the event stream ------------------------------------------------------------------

    def _next_stream_fault(self) -> StreamFault | None:
        while self.stream_faults:
            fault = self.stream_faults[0]
            if fault.times == 0:
                self.stream_faults.popleft()
                continue
            if fault.times is not None:
                fault.times -= 1
            return fault
        if self.stream_fault_rate and self.random.random() < self.stream_fault_rate:
            return StreamFault(self.random.choice(self.stream_fault_kinds))
        return None

    @staticmethod
    def _line(message: Mapping[str, Any]) -> bytes:
        return b"data: " + json.dumps(message).encode() + b"\n\n"

    async def _data(self, request: web.Request) -> web.StreamResponse:
        session = self._sessions.get(request.query.get("session_hash", ""))
        fault = self._next_stream_fault() if session is not None else None
        if fault is not None and fault.kind == "http_502":
            self.stream_faults_applied[fault.kind] += 1
            return web.Response(
                status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        self.open_streams += 1
        try:
            if session is None:
                await self._session_not_found(request, response)
                return response
            if fault is not None:
                self.stream_faults_applied[fault.kind] += 1
                await self._faulty_stream(request, response, session, fault)
                return response
            with contextlib.suppress(ConnectionResetError):  # the client cut it (as clients do)
                await self._stream(request, response, session)
            return response
        finally:
            self.open_streams -= 1
            self.streams_finished += 1

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, session: _Session
    ) -> None:
        """Gradio's stream: messages as they come, heartbeats, close once nothing is pending.

        With ``message_fault_rate``, the stream may break before any message (the message
        stays queued for the next stream): a reset, a malformed line or an early end.
        """
        while True:
            message = await session.mailbox.get(self.heartbeat)
            if message is None:
                await response.write(self._line({"msg": "heartbeat"}))
                continue
            if self.message_fault_rate and self.random.random() < self.message_fault_rate:
                session.mailbox.put_front(message)
                kind = self.random.choice(("reset", "malformed", "end_early"))
                self.stream_faults_applied[f"mid-stream {kind}"] += 1
                if kind == "reset":
                    self._abort(request)
                elif kind == "malformed":
                    await response.write(b'data: {"msg": oops\n\n')
                    await self._stopping.wait()
                return
            await response.write(self._line(message))
            if message.get("msg") == "process_completed":
                session.pending.discard(str(message.get("event_id")))
                if not session.pending:
                    await response.write(self._line({"msg": "close_stream", "event_id": None}))
                    return

    async def _faulty_stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: _Session,
        fault: StreamFault,
    ) -> None:
        if fault.kind == "silent":
            await self._stopping.wait()
            return
        if fault.kind == "raw":
            await response.write(fault.payload)
            return
        if fault.kind == "cut":
            # What the client sees through a middlebox that cuts the stream early: the job's
            # first messages (the same ones on every reopen), then a clean end of the body.
            for event_id in sorted(session.pending):
                estimation = {"msg": "estimation", "event_id": event_id, "rank": 0, "queue_size": 1}
                await response.write(self._line(estimation))
                await response.write(self._line({"msg": "process_starts", "event_id": event_id}))
            await response.write_eof()
            return
        if fault.kind == "end_early":
            # Send what is there now except completions, then end the body cleanly.
            held: list[dict[str, Any]] = []
            await asyncio.sleep(0.05)
            while (message := session.mailbox.get_nowait()) is not None:
                if message.get("msg") == "process_completed":
                    held.append(message)
                else:
                    await response.write(self._line(message))
            for message in reversed(held):
                session.mailbox.put_front(message)
            return
        if fault.kind == "oversized":
            await response.write(b"data: ")
            chunk = b"x" * (1024 * 1024)
            for _ in range(fault.size // len(chunk) + 1):
                await response.write(chunk)
            await self._stopping.wait()
            return
        if fault.kind == "unexpected_error":
            await self._session_not_found(request, response)
            return
        sent = 0
        while sent < fault.after:
            message = await session.mailbox.get(self.heartbeat)
            if message is None:
                break
            if message.get("msg") == "process_completed":
                session.mailbox.put_front(message)
                break
            await response.write(self._line(message))
            sent += 1
        if fault.kind == "reset":
            self._abort(request)
        elif fault.kind == "malformed":
            await response.write(b'data: {"msg": "estimation", oops\n\n')
        elif fault.kind == "non_object":
            await response.write(b"data: [1, 2, 3]\n\n")
        await self._stopping.wait()

    async def _session_not_found(self, request: web.Request, response: web.StreamResponse) -> None:
        """Gradio's answer to a stream for an unknown session: one error, then a cut-off body."""
        message = {
            "msg": "unexpected_error",
            "message": "404: Session not found.",
            "success": False,
        }
        await response.write(self._line(message))
        self._abort(request)

    @staticmethod
    def _abort(request: web.Request) -> None:
        if request.transport is not None:
            request.transport.abort()

    # -- user images and the fake Hub ------------------------------------------------------

    async def _image(self, request: web.Request) -> web.StreamResponse:
        image = self.images.get(request.match_info["name"])
        if image is None:
            return web.Response(status=404, text="no such image")
        if image.location is not None:
            raise web.HTTPFound(image.location)
        if not image.chunked:
            return web.Response(
                status=image.status, body=image.body, content_type=image.content_type
            )
        response = web.StreamResponse(
            status=image.status, headers={"Content-Type": image.content_type}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        step = 64 * 1024
        for start in range(0, len(image.body), step):
            await response.write(image.body[start : start + step])
        await response.write_eof()
        return response

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _hub(self, request: web.Request) -> web.Response:
        if self.hub_delay:
            await asyncio.sleep(self.hub_delay)
        if self.hub_stage is None:
            return web.Response(status=404, text="Repository not found")
        space = f"{request.match_info['owner']}/{request.match_info['name']}"
        return web.json_response({"id": space, "runtime": {"stage": self.hub_stage}})

    async def _jwt(self, request: web.Request) -> web.Response:
        if self.jwt_status != 200 or self.jwt is None:
            return web.Response(
                status=self.jwt_status if self.jwt_status != 200 else 404, text="no token"
            )
        return web.json_response({"token": self.jwt, "accessToken": self.jwt})


async def _serve(args: argparse.Namespace) -> None:
    server = FaultServer(
        heartbeat=args.heartbeat,
        step_delay=args.step_delay,
        stream_fault_rate=args.stream_fault_rate,
        stream_fault_kinds=tuple(args.stream_fault_kinds.split(",")),
        message_fault_rate=args.message_fault_rate,
        seed=args.seed,
        keep_history=False,
    )
    await server.start()
    print(server.url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    """``python tests/reliability/fault_server.py``: serve until killed; prints the URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeat", type=float, default=15.0)
    parser.add_argument("--step-delay", type=float, default=0.02)
    parser.add_argument("--stream-fault-rate", type=float, default=0.0)
    parser.add_argument("--stream-fault-kinds", default="http_502,reset,end_early,malformed")
    parser.add_argument("--message-fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


@contextlib.asynccontextmanager
async def running_fault_server(**kwargs: Any) -> AsyncIterator[FaultServer]:
    """Start a :class:`FaultServer` for the duration of the block."""
    server = FaultServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


if __name__ == "__main__":
    main()
