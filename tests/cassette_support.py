"""Record/replay of the HTTP traffic between our code and a Gradio Space, plus the replica process.

Cassettes are recorded from a real Gradio server (the replica, or the live Space) and replayed
with vcrpy's aiohttp stubs. Three things make that work for the Space's protocol:

* Matching ignores scheme/host/port and the random ids (``session_hash``, ``upload_id``,
  multipart boundaries); a *session binder* instead ties each live session_hash to one
  recorded session, so concurrent calls get their own event streams back.
* Secrets are filtered when recording (headers, cookies, ``hf_...`` tokens, JWTs), and the
  recorded server's origin is rewritten to :data:`REPLAY_BASE_URL` so URLs inside bodies match
  what the client builds on replay.
* Fixes to vcrpy 8.5's aiohttp stub (see :func:`patched_aiohttp_stubs`): it reads a whole
  response before the client sees it, which holds an event stream back until the job ends (and
  deadlocks a stream opened before its join); it records ``FormData``/``MultipartWriter``
  bodies as Python objects; and a refused request only raises inside the client.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import vcr
from aiohttp import streams
from aiohttp.payload import Payload
from multidict import CIMultiDict
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request
from vcr.stubs import aiohttp_stubs

__all__ = [
    "RANDOM_QUERY_PARAMS",
    "REDACTED",
    "REPLAY_BASE_URL",
    "SECRET_REQUEST_HEADERS",
    "SECRET_RESPONSE_HEADERS",
    "CassetteSession",
    "SessionBinder",
    "canonical_body",
    "canonical_path",
    "canonical_query",
    "cassette_path",
    "filter_request",
    "filter_response",
    "free_port",
    "running_replica",
    "scrub_bytes",
    "scrub_text",
    "session_of",
    "strip_param_id",
    "use_cassette",
]

REPLAY_BASE_URL = "http://127.0.0.1:7861"
"""The Space URL a replaying test talks to (nothing listens there; vcrpy answers)."""

SECRET_REQUEST_HEADERS = frozenset(
    {
        "authorization",
        "x-hf-authorization",  # the header the HF token goes to a Space in
        "x-zerogpu-token",
        "x-zerogpu-uuid",
        "x-ip-token",
        "cookie",
    }
)
SECRET_RESPONSE_HEADERS = frozenset({"set-cookie"})
RANDOM_QUERY_PARAMS = frozenset({"session_hash", "upload_id"})
REDACTED = "<redacted>"

_HF_TOKEN = re.compile(rb"hf_[A-Za-z0-9]{16,}")
_JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]+)?")
_BEARER = re.compile(rb"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_LOOPBACK_ORIGIN = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+")
_HEARTBEAT_PATH = re.compile(r"(/heartbeat/)([^/]+)$")


# --- Secrets (applied when recording; also to requests before matching) ---------------------


def scrub_bytes(data: bytes) -> bytes:
    """Replace Hugging Face tokens, JWTs and bearer credentials anywhere in ``data``."""
    data = _BEARER.sub(rb"\1 " + REDACTED.encode(), data)
    data = _JWT.sub(b"<redacted-jwt>", data)
    return _HF_TOKEN.sub(b"hf_" + REDACTED.encode(), data)


def scrub_text(text: str) -> str:
    """:func:`scrub_bytes` for text."""
    return scrub_bytes(text.encode("utf-8")).decode("utf-8")


def _as_bytes(body: object) -> bytes | None:
    """A request body as bytes: JSON for the dicts/lists vcrpy keeps from ``json=``."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, dict | list):
        return json.dumps(body).encode("utf-8")
    raise TypeError(f"cannot record a request body of type {type(body).__name__}")


def _rebase(data: bytes, origin: str | None) -> bytes:
    """Rewrite the recorded server's origin to :data:`REPLAY_BASE_URL`."""
    if origin is None:
        return data
    return data.replace(origin.rstrip("/").encode(), REPLAY_BASE_URL.encode())


def filter_request(request: Request, *, origin: str | None = None) -> Request:
    """Strip secrets from a (copied) request and rebase its URL and body onto the replay URL."""
    uri = request.uri
    if origin is not None and uri.startswith(origin.rstrip("/")):
        uri = REPLAY_BASE_URL + uri[len(origin.rstrip("/")) :]
    request.uri = scrub_text(uri)
    for name in list(request.headers):
        if name.lower() in SECRET_REQUEST_HEADERS:
            request.headers[name] = REDACTED
        else:
            request.headers[name] = scrub_text(str(request.headers[name]))
    body = _as_bytes(request.body)
    request.body = None if body is None else scrub_bytes(_rebase(body, origin))
    return request


def filter_response(response: dict[str, Any], *, origin: str | None = None) -> dict[str, Any]:
    """Drop cookies and strip secrets from a (copied) recorded response; rebase URLs in it."""
    headers: dict[str, list[str]] = {}
    for name, values in response["headers"].items():
        lower = name.lower()
        if lower in SECRET_RESPONSE_HEADERS or lower == "content-encoding":
            continue  # aiohttp already decoded the body it hands to vcrpy
        headers[name] = [scrub_text(_rebase(str(v).encode(), origin).decode()) for v in values]
    body = response.get("body", {}).get("string")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body:
        body = scrub_bytes(_rebase(body, origin))
        response["body"]["string"] = body
        for name in headers:
            if name.lower() == "content-length":
                headers[name] = [str(len(body))]
    response["headers"] = headers
    return response


# --- Matching --------------------------------------------------------------------------------


def canonical_path(request: Request) -> str:
    """The URL path with a heartbeat's session id blanked out."""
    return _HEARTBEAT_PATH.sub(r"\1<session>", request.path)


def canonical_query(request: Request) -> list[tuple[str, str]]:
    """The query minus random ids."""
    return [(k, v) for k, v in request.query if k not in RANDOM_QUERY_PARAMS]


def _normalize_json(value: Any, top: bool = True) -> Any:
    """Drop the top-level session_hash and blank loopback origins inside strings."""
    if isinstance(value, dict):
        return {
            k: _normalize_json(v, False)
            for k, v in value.items()
            if not (top and k == "session_hash")
        }
    if isinstance(value, list):
        return [_normalize_json(v, False) for v in value]
    if isinstance(value, str):
        return _LOOPBACK_ORIGIN.sub("<origin>", value)
    return value


def _multipart_parts(body: bytes) -> list[tuple[str, str, str]] | None:
    """``(field name, content type, sha256)`` of each part; filenames and boundary ignored."""
    first_line, _, _ = body.partition(b"\r\n")
    if not first_line.startswith(b"--") or len(first_line) < 3:
        return None
    delimiter = first_line
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        name = content_type = ""
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                found = re.search(r'\bname="([^"]*)"', value)
                name = found.group(1) if found else ""
            elif key.strip().lower() == "content-type":
                content_type = value.strip().lower()
        parts.append((name, content_type, hashlib.sha256(payload).hexdigest()))
    return parts


def canonical_body(body: object) -> object:
    """What counts in a body: JSON minus session_hash, multipart parts by content, else bytes."""
    raw = _as_bytes(body)
    if not raw:
        return None
    parts = _multipart_parts(raw)
    if parts is not None:
        return ("multipart", parts)
    try:
        return _normalize_json(json.loads(raw))
    except ValueError:
        return raw


def session_of(request: Request) -> str | None:
    """The Gradio session id a request carries (query, JSON body or heartbeat path), if any."""
    for key, value in request.query:
        if key == "session_hash":
            return str(value)
    found = _HEARTBEAT_PATH.search(request.path)
    if found:
        return found.group(2)
    raw = _as_bytes(request.body)
    if raw and raw.lstrip().startswith(b"{"):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if isinstance(data, dict) and isinstance(data.get("session_hash"), str):
            return str(data["session_hash"])
    return None


def match_path(r1: Request, r2: Request) -> None:
    """vcrpy matcher: same path (session ids in heartbeat paths ignored)."""
    assert canonical_path(r1) == canonical_path(r2), f"{r1.path} != {r2.path}"


def match_query(r1: Request, r2: Request) -> None:
    """vcrpy matcher: same query, random ids ignored."""
    assert canonical_query(r1) == canonical_query(r2), f"{r1.query} != {r2.query}"


def match_body(r1: Request, r2: Request) -> None:
    """vcrpy matcher: same canonical body."""
    left, right = canonical_body(r1.body), canonical_body(r2.body)
    assert left == right, f"bodies differ: {left!r:.300} != {right!r:.300}"


class SessionBinder:
    """Ties each session_hash the client makes up on replay to one recorded session_hash.

    The first request of a new live session, and each join (a new job, perhaps on a session the
    client reuses), may match any recorded session not yet taken; once a response is played,
    every later request of that live session must match requests of the recorded session it is
    bound to. So two concurrent calls each get back their own event stream.
    """

    def __init__(self) -> None:
        self.live_to_recorded: dict[str, str] = {}

    def match(self, live: Request, recorded: Request) -> None:
        """vcrpy matcher (vcrpy passes the incoming request first)."""
        mine, theirs = session_of(live), session_of(recorded)
        assert (mine is None) == (theirs is None), "only one request carries a session"
        if mine is None:
            return
        bound = self.live_to_recorded.get(mine)
        if bound == theirs:
            return
        # A join starts a new job, and the client reuses a session whose job ended for its next
        # call: which session a job lands on depends on timing, so a join may bind anew.
        if bound is None or live.path.endswith("/queue/join"):
            assert theirs not in self.live_to_recorded.values(), "recorded session already taken"
        else:
            raise AssertionError("request belongs to another recorded session")

    def attach(self, cassette: Any) -> None:
        """Bind sessions whenever ``cassette`` plays a response."""
        play = cassette.play_response

        def play_response(request: Request) -> Any:
            response = play(request)
            mine = session_of(request)
            theirs = session_of(cassette._played_interactions[-1][0])
            if mine is not None and theirs is not None:
                self.live_to_recorded[mine] = theirs
            return response

        cassette.play_response = play_response


# --- Fixes to vcrpy's aiohttp stub -----------------------------------------------------------

_original_record_response = aiohttp_stubs.record_response
_original_vcr_request = aiohttp_stubs.vcr_request
_live_recordings: dict[int, _StreamRecording] = {}


class _StreamRecording:
    """The body of one event stream as it arrives, appended to the cassette when it ends."""

    def __init__(self, cassette: Any, request: Request, response: aiohttp.ClientResponse) -> None:
        self.cassette, self.request = cassette, request
        self.status = {"code": response.status, "message": response.reason}
        self.headers = aiohttp_stubs._serialize_headers(response.headers)
        self.chunks: list[bytes] = []

    def finish(self) -> None:
        """Record what arrived: the whole stream, or the part read before the client left."""
        body = b"".join(self.chunks)
        self.cassette.append(
            self.request, {"status": self.status, "headers": self.headers, "body": {"string": body}}
        )


class _RecordingStreamReader(streams.StreamReader):
    """aiohttp's own stream reader, noting each chunk it is fed (same layout: no new slots)."""

    __slots__ = ()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        recording = _live_recordings.get(id(self))
        if recording is not None and data:
            recording.chunks.append(bytes(data))
        return super().feed_data(data, size)

    def feed_eof(self) -> None:
        super().feed_eof()
        self._finish()

    def set_exception(self, *args: Any, **kwargs: Any) -> None:
        super().set_exception(*args, **kwargs)  # also how aiohttp reports an early release
        self._finish()

    def _finish(self) -> None:
        recording = _live_recordings.pop(id(self), None)
        if recording is not None:
            recording.finish()


async def _record_response(cassette: Any, vcr_request: Request, response: Any) -> None:
    """Record event streams while the client reads them; other responses as vcrpy does."""
    content = response.content
    is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    if not is_stream or type(content) is not streams.StreamReader:
        await _original_record_response(cassette, vcr_request, response)
        return
    recording = _StreamRecording(cassette, vcr_request, response)
    buffered = b"".join(content._buffer)[content._buffer_offset :]
    if buffered:
        recording.chunks.append(buffered)
    if content.is_eof() or content.exception() is not None:
        recording.finish()
        return
    _live_recordings[id(content)] = recording
    content.__class__ = _RecordingStreamReader


def _vcr_request(
    cassette: Any, real_request: Callable[..., Any], unmatched: list[str]
) -> Callable[..., Any]:
    """vcrpy's request stub; FormData/MultipartWriter bodies go out (and are recorded) as bytes."""
    stub = _original_vcr_request(cassette, real_request)

    @functools.wraps(real_request)
    async def new_request(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        if isinstance(data, aiohttp.FormData):
            data = data()
        if isinstance(data, Payload):
            # vcrpy can only record bytes; send the very same bytes and content type.
            headers = CIMultiDict(kwargs.get("headers") or {})
            headers.setdefault("Content-Type", data.content_type)
            kwargs["headers"], kwargs["data"] = headers, await data.as_bytes()
        try:
            return await stub(self, method, url, **kwargs)
        except CannotOverwriteExistingCassetteException:
            unmatched.append(f"{method} {url}")
            raise

    return new_request


@contextlib.contextmanager
def patched_aiohttp_stubs(unmatched: list[str]) -> Iterator[None]:
    """Apply the stub fixes while a cassette is in use; ``unmatched`` collects refused requests.

    vcrpy 8.5 records a response by awaiting ``response.read()`` before handing it to the
    client, so an event stream reaches the client only after the server closed it: progress
    arrives all at once, a client cannot leave a stream early, and a stream opened before its
    join never returns. Here a stream is recorded as it is fed instead (the client reads it
    live; what had arrived is recorded when it ends or is released). Refused requests raise
    inside the client, whose error handling might swallow them; the fixture fails on them.
    """
    record, request = aiohttp_stubs.record_response, aiohttp_stubs.vcr_request
    aiohttp_stubs.record_response = _record_response
    aiohttp_stubs.vcr_request = functools.partial(_vcr_request, unmatched=unmatched)
    try:
        yield
    finally:
        aiohttp_stubs.record_response, aiohttp_stubs.vcr_request = record, request


# --- Cassettes -------------------------------------------------------------------------------


class CassetteSession:
    """A cassette in use: the vcrpy cassette plus what went wrong with it."""

    def __init__(self, cassette: Any, unmatched: list[str]) -> None:
        self.cassette = cassette
        self.unmatched = unmatched

    @property
    def all_played(self) -> bool:
        """Whether every recorded interaction was played back."""
        return bool(self.cassette.all_played)


def _vcr(origin: str | None, record_mode: str, binder: SessionBinder) -> vcr.VCR:
    config = vcr.VCR(
        serializer="yaml",
        record_mode=record_mode,
        match_on=("method", "gradio_path", "gradio_query", "gradio_body", "gradio_session"),
        before_record_request=functools.partial(filter_request, origin=origin),
        before_record_response=functools.partial(filter_response, origin=origin),
        decode_compressed_response=False,
    )
    config.register_matcher("gradio_path", match_path)
    config.register_matcher("gradio_query", match_query)
    config.register_matcher("gradio_body", match_body)
    config.register_matcher("gradio_session", binder.match)
    return config


@contextlib.contextmanager
def use_cassette(path: Path, *, record_from: str | None = None) -> Iterator[CassetteSession]:
    """Replay ``path`` (record mode none), or with ``record_from`` (the server's base URL)
    record it afresh, overwriting it."""
    binder = SessionBinder()
    unmatched: list[str] = []
    if record_from is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        config = _vcr(record_from, "all", binder)
    else:
        config = _vcr(None, "none", binder)
    with patched_aiohttp_stubs(unmatched), config.use_cassette(str(path)) as cassette:
        binder.attach(cassette)
        yield CassetteSession(cassette, unmatched)


def cassette_path(root: Path, test_file: Path, test_name: str) -> Path:
    """``<root>/cassettes/<test file relative to tests/, no suffix>/<test name>.yaml``."""
    try:
        relative = test_file.relative_to(root / "tests")
    except ValueError:
        relative = Path(test_file.name)
    return root / "cassettes" / relative.with_suffix("") / f"{test_name}.yaml"


def strip_param_id(node_name: str, param_id: str) -> str:
    """``test_x[replay-foo]`` -> ``test_x[foo]``; ``test_x[replay]`` -> ``test_x``."""
    base, bracket, ids = node_name.partition("[")
    if not bracket:
        return node_name
    kept = [part for part in ids[:-1].split("-") if part != param_id]
    return f"{base}[{'-'.join(kept)}]" if kept else base


# --- The replica as a subprocess -------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config_answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/config", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_replica(*args: str, startup_timeout: float = 90.0) -> Iterator[str]:
    """Run ``python -m janus_space.replica --port <free> *args``; yield its base URL.

    Waits until ``GET /config`` answers and always ends the process (SIGTERM, then SIGKILL).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "janus_space.replica", "--port", str(port), *args]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + startup_timeout
            while not _config_answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"replica did not start ({command}):\n{output}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
