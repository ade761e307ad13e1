"""The cassette machinery: secret filters and request matching (pure), then record/replay ends."""

from __future__ import annotations

import json
import socket
from base64 import b64decode
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_socket
from cassette_support import (
    REDACTED,
    REPLAY_BASE_URL,
    SECRET_REQUEST_HEADERS,
    SessionBinder,
    canonical_body,
    canonical_path,
    canonical_query,
    cassette_path,
    filter_request,
    filter_response,
    scrub_bytes,
    scrub_text,
    session_of,
    strip_param_id,
    use_cassette,
)
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIiwiZXhwIjo5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
LIVE = "http://127.0.0.1:45123"
TINY_PNG = (  # 1x1 white PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def request(method: str, uri: str, body: Any = None, **headers: str) -> Request:
    return Request(method, uri, body, headers)


# --- Secrets ----------------------------------------------------------------------------------


def test_scrub_removes_tokens_jwts_and_bearer_credentials() -> None:
    text = f"token={HF_TOKEN} jwt={JWT} header='Authorization: Bearer abcdefgh12345678'"
    scrubbed = scrub_text(text)
    assert HF_TOKEN not in scrubbed and JWT not in scrubbed and "abcdefgh12345678" not in scrubbed
    assert "hf_<redacted>" in scrubbed and "<redacted-jwt>" in scrubbed
    assert "Bearer <redacted>" in scrubbed
    assert scrub_text("a plain question about hf_short and eyJ") == (
        "a plain question about hf_short and eyJ"
    )
    assert scrub_bytes(b"\x89PNG\x00" + HF_TOKEN.encode()) == b"\x89PNG\x00hf_<redacted>"


def test_filter_request_redacts_headers_body_and_query() -> None:
    headers = {name: f"{name}-{HF_TOKEN}" for name in SECRET_REQUEST_HEADERS}
    headers["Authorization"] = f"Bearer {HF_TOKEN}"
    headers["x-ip-token"] = JWT
    headers["X-Custom"] = f"carries {JWT}"
    original = Request(
        "POST",
        f"{LIVE}/gradio_api/queue/join?token={HF_TOKEN}",
        {"data": [f"my token is {HF_TOKEN}"], "session_hash": "abc"},
        headers,
    )
    filtered = filter_request(original, origin=LIVE)
    assert filtered.uri == f"{REPLAY_BASE_URL}/gradio_api/queue/join?token=hf_<redacted>"
    for name in SECRET_REQUEST_HEADERS:
        assert filtered.headers[name] == REDACTED
    assert filtered.headers["X-Custom"] == "carries <redacted-jwt>"
    assert isinstance(filtered.body, bytes)
    assert json.loads(filtered.body)["data"] == ["my token is hf_<redacted>"]
    everything = f"{filtered.uri}{dict(filtered.headers)}{filtered.body!r}"
    assert HF_TOKEN not in everything and JWT not in everything


def test_filter_response_drops_cookies_and_rebases_urls() -> None:
    body = json.dumps({"url": f"{LIVE}/gradio_api/file=/tmp/x.webp", "token": JWT}).encode()
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "Set-Cookie": [f"session={HF_TOKEN}; Path=/"],
            "Content-Length": [str(len(body))],
            "Content-Encoding": ["gzip"],
            "Location": [f"{LIVE}/next"],
        },
        "body": {"string": body},
    }
    filtered = filter_response(response, origin=LIVE)
    assert "Set-Cookie" not in filtered["headers"]
    assert "Content-Encoding" not in filtered["headers"]
    assert filtered["headers"]["Location"] == [f"{REPLAY_BASE_URL}/next"]
    new_body = filtered["body"]["string"]
    assert json.loads(new_body) == {
        "url": f"{REPLAY_BASE_URL}/gradio_api/file=/tmp/x.webp",
        "token": "<redacted-jwt>",
    }
    assert filtered["headers"]["Content-Length"] == [str(len(new_body))]


# --- Matching ---------------------------------------------------------------------------------


def test_query_and_path_ignore_random_ids() -> None:
    one = request("GET", f"{LIVE}/gradio_api/queue/data?session_hash=aaa&x=1")
    two = request("GET", f"{REPLAY_BASE_URL}/gradio_api/queue/data?x=1&session_hash=bbb")
    assert canonical_query(one) == canonical_query(two) == [("x", "1")]
    assert canonical_query(request("POST", f"{LIVE}/gradio_api/upload?upload_id=q1")) == []
    beat = canonical_path(request("GET", f"{LIVE}/gradio_api/heartbeat/abc123"))
    assert beat == "/gradio_api/heartbeat/<session>"


def test_json_bodies_match_without_session_hash_or_port() -> None:
    recorded = json.dumps(
        {
            "data": [{"url": f"{LIVE}/gradio_api/file=/tmp/a.png"}, "q"],
            "fn_index": 2,
            "session_hash": "recorded",
        }
    ).encode()
    live = {
        "fn_index": 2,
        "session_hash": "live",
        "data": [{"url": f"{REPLAY_BASE_URL}/gradio_api/file=/tmp/a.png"}, "q"],
    }
    assert canonical_body(recorded) == canonical_body(live)
    assert canonical_body({**live, "fn_index": 3}) != canonical_body(recorded)
    assert canonical_body(b"") is None and canonical_body(None) is None


async def test_multipart_bodies_match_on_content_not_boundary() -> None:
    async def multipart(boundary: str, filename: str, data: bytes) -> bytes:
        writer = aiohttp.MultipartWriter("form-data", boundary=boundary)
        part = writer.append(data, {"Content-Type": "image/png"})
        part.set_content_disposition("form-data", name="files", filename=filename)
        return await writer.as_bytes()

    first = await multipart("aaaa1111", "photo.png", b"\x89PNG one")
    second = await multipart("bbbb2222", "other.png", b"\x89PNG one")
    third = await multipart("aaaa1111", "photo.png", b"\x89PNG two")
    assert canonical_body(first) == canonical_body(second)
    assert canonical_body(first) != canonical_body(third)
    kind, parts = canonical_body(first)  # type: ignore[misc]
    assert kind == "multipart" and [p[:2] for p in parts] == [("files", "image/png")]


def test_session_of_finds_the_session_anywhere() -> None:
    assert session_of(request("GET", f"{LIVE}/gradio_api/queue/data?session_hash=s1")) == "s1"
    join = request("POST", f"{LIVE}/gradio_api/queue/join", {"session_hash": "s2", "data": []})
    assert session_of(join) == "s2"
    assert session_of(request("GET", f"{LIVE}/gradio_api/heartbeat/s3")) == "s3"
    assert session_of(request("GET", f"{LIVE}/config")) is None
    assert session_of(request("POST", f"{LIVE}/gradio_api/upload", b"--xyz\r\n")) is None


class FakeCassette:
    """Just what SessionBinder.attach uses of a vcrpy cassette."""

    def __init__(self, stored: Request) -> None:
        self.stored = stored
        self._played_interactions: list[tuple[Request, object]] = []

    def play_response(self, incoming: Request) -> str:
        self._played_interactions.append((self.stored, "response"))
        return "response"


def test_session_binder_keeps_each_live_session_on_one_recorded_session() -> None:
    binder = SessionBinder()

    def stream(session: str) -> Request:
        return request("GET", f"{LIVE}/gradio_api/queue/data?session_hash={session}")

    binder.match(stream("live-a"), stream("rec-1"))  # unbound: anything goes
    cassette = FakeCassette(stream("rec-1"))
    binder.attach(cassette)
    assert cassette.play_response(stream("live-a")) == "response"
    assert binder.live_to_recorded == {"live-a": "rec-1"}
    binder.match(stream("live-a"), stream("rec-1"))
    with pytest.raises(AssertionError):
        binder.match(stream("live-a"), stream("rec-2"))
    with pytest.raises(AssertionError):
        binder.match(stream("live-b"), stream("rec-1"))  # taken by live-a
    binder.match(stream("live-b"), stream("rec-2"))
    with pytest.raises(AssertionError):
        binder.match(request("GET", f"{LIVE}/config"), stream("rec-2"))
    binder.match(request("GET", f"{LIVE}/config"), request("GET", f"{LIVE}/config"))


def test_cassette_names_drop_the_tier() -> None:
    root = Path("/repo")
    assert strip_param_id("test_x[replay]", "replay") == "test_x"
    assert strip_param_id("test_x[replay-foo]", "replay") == "test_x[foo]"
    assert strip_param_id("test_x[3-live]", "live") == "test_x[3]"
    assert strip_param_id("test_x", "replay") == "test_x"
    path = cassette_path(root, root / "tests" / "langchain" / "test_chat.py", "test_x")
    assert path == root / "cassettes" / "langchain" / "test_chat" / "test_x.yaml"


# --- Record and replay, end to end (against the replica) -------------------------------------


async def ask(http: aiohttp.ClientSession, base: str, question: str) -> str:
    """Upload a tiny PNG, join with ``question`` (the answer echoes it); return the raw stream."""
    form = aiohttp.FormData()
    form.add_field("files", b64decode(TINY_PNG), filename="a.png", content_type="image/png")
    async with http.post(f"{base}/gradio_api/upload?upload_id=u1", data=form) as response:
        (path,) = await response.json()
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    body = {"data": [image, question, 1, 0.5, 0.5], "fn_index": 2, "session_hash": "s1"}
    async with http.post(f"{base}/gradio_api/queue/join", json=body) as response:
        assert response.status == 200
    params = {"session_hash": "s1"}
    async with http.get(f"{base}/gradio_api/queue/data", params=params) as response:
        return await response.text()


async def test_recorded_cassette_holds_no_secret(replica_url: str, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    headers = {
        "Authorization": f"Bearer {HF_TOKEN}",
        "x-zerogpu-token": JWT,
        "x-zerogpu-uuid": "1234-5678-uuid",
        "x-ip-token": JWT,
        "Cookie": f"token={HF_TOKEN}",
    }
    with use_cassette(path, record_from=replica_url):
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{replica_url}/config") as response:
                assert response.status == 200
            live_stream = await ask(http, replica_url, f"my token: {HF_TOKEN}")
    assert HF_TOKEN in live_stream  # the client itself saw the unfiltered answer
    saved = path.read_text()
    for secret in (HF_TOKEN, JWT, "1234-5678-uuid", replica_url):
        assert secret not in saved
    assert REDACTED in saved and REPLAY_BASE_URL in saved
    pytest_socket.disable_socket(allow_unix_socket=True)
    with use_cassette(path) as cassette:  # the same secret-laden requests still match
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{REPLAY_BASE_URL}/config") as response:
                assert (await response.json())["protocol"] == "sse_v3"
            replayed = await ask(http, REPLAY_BASE_URL, f"my token: {HF_TOKEN}")
    assert HF_TOKEN not in replayed and "hf_<redacted>" in replayed
    assert cassette.all_played and not cassette.unmatched


async def test_replay_refuses_and_reports_unknown_requests(
    replica_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "one.yaml"
    with use_cassette(path, record_from=replica_url):
        async with aiohttp.ClientSession() as http, http.get(f"{replica_url}/config"):
            pass
    with use_cassette(path) as cassette:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{REPLAY_BASE_URL}/config") as response:
                assert response.status == 200
            with pytest.raises(CannotOverwriteExistingCassetteException):
                await http.get(f"{REPLAY_BASE_URL}/config")  # recorded once, played once
    assert cassette.unmatched == [f"GET {REPLAY_BASE_URL}/config"]


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
async def test_tiers_network_rules(space_url: str, space_tier: str) -> None:
    """[replay] may open no socket at all; [live] reaches the replica on loopback."""
    async with aiohttp.ClientSession() as http, http.get(f"{space_url}/config") as response:
        assert (await response.json())["api_prefix"] == "/gradio_api"
    if space_tier == "replay":
        with pytest.raises(pytest_socket.SocketBlockedError):
            socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    else:
        host, port = space_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass
        with pytest.raises(pytest_socket.SocketConnectBlockedError):
            socket.create_connection(("127.0.0.2", 9), timeout=1)  # loopback, not allowed
