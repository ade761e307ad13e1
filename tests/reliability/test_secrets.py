"""Secrets: the HF token and the ZeroGPU token never show, and travel only where they may.

* Never in reprs, logs (every logger, DEBUG and up), exception messages or cassettes.
* The HF token goes only to Hugging Face hosts (the Hub, ``*.hf.space``), redirects included
  (the client follows none to the Space or the Hub, and sends no credentials when it fetches a
  user's image URL), unless ``allow_token_to_custom_host=True``.
* The ZeroGPU token path runs against a fake Hub (``/api/spaces/{id}/jwt``): fetched with the
  HF token, cached until shortly before expiry, sent as ``x-zerogpu-token`` on every Space
  request, and a Hub failure only costs the token, not the call.

To make ``JanusClient("owner/space")`` (the public-Space path, where the ZeroGPU token is used)
reach a local server, the tests swap ``janus_space.connection.space_host_url``
(see ``hf_space_at``).
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import janus_space.client
import janus_space.connection
from janus_space import JanusClient, JanusError, Secret
from janus_space.auth import is_hf_host

from .conftest import FAST, bounded
from .fault_server import FaultServer, HttpFault, StreamFault, UserImage, tiny_png

MakeClientType = Callable[..., JanusClient]
HF_TOKEN = "hf_SeCrEtT0kenAbCdEfGhIjKlMnOpQrStUv"


def fake_jwt(expires_in: float) -> str:
    def part(payload: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    claims = {"sub": "zerogpu", "exp": int(time.time() + expires_in), "nonce": "ZgPuSeCrEt"}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlU2VDckV0"


JWT = fake_jwt(3600)
SECRETS = (HF_TOKEN, JWT, JWT.split(".")[1])


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a token appears in {where}"


@pytest.fixture
def hf_space_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def point(url: str) -> None:
        monkeypatch.setattr(janus_space.connection, "space_host_url", lambda space: url)

    return point


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield


def public_space_client(hub: FaultServer, **overrides: Any) -> JanusClient:
    """A client of "the public Space" (no base_url) whose Hub is the fake one."""
    settings: dict[str, Any] = {
        **FAST,
        "hf_token": HF_TOKEN,
        "hub_url": hub.url,
        "allow_token_to_custom_host": True,
        **overrides,
    }
    return JanusClient("owner/space", **settings)


# --- Reprs -------------------------------------------------------------------------------------


async def test_reprs_show_no_token(
    fault_server: FaultServer, other_server: FaultServer, hf_space_at: Callable[[str], None]
) -> None:
    hf_space_at(fault_server.url)
    other_server.jwt = JWT
    async with public_space_client(other_server) as client:
        result = await bounded(client.understand("hello"), 5)
        generated = await bounded(client.generate("a cat"), 5)
        assert client._connection.zerogpu is not None  # the JWT is cached inside the client
        for text in (
            repr(client),
            str(client),
            repr(vars(client)),
            repr(result),
            repr(generated),
            repr(client._connection.token),
            str(client._connection.token),
        ):
            assert_no_secret(text, "a repr")
    assert "token=set" in repr(client)
    secret = Secret(HF_TOKEN)
    assert secret.get() == HF_TOKEN and HF_TOKEN not in f"{secret} {secret!r} {[secret]}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


# --- Where the HF token goes ----------------------------------------------------------------


def test_only_hugging_face_hosts_count_as_hugging_face() -> None:
    assert is_hf_host("https://huggingface.co/api/spaces/x/y")
    assert is_hf_host("https://deepseek-ai-janus-pro-7b.hf.space/config")
    assert is_hf_host("https://HUGGINGFACE.CO")
    for url in (
        "http://huggingface.co",
        "https://huggingface.co.evil.example",
        "https://evil-hf.space",
        "https://x.hf.space.evil.example",
        "https://evilhuggingface.co",
        "https://127.0.0.1:7860",
        "ftp://huggingface.co",
        "https://hf.space@evil.example",
    ):
        assert not is_hf_host(url), url


async def test_token_is_not_sent_to_a_custom_host_by_default(
    fault_server: FaultServer, make_client: MakeClientType, no_env_token: None
) -> None:
    async with make_client(fault_server.url, hf_token=HF_TOKEN, image_transport="upload") as client:
        await bounded(client.understand("hello", tiny_png()), 5)
        await bounded(client.generate("a cat"), 5)
    assert {r.endpoint for r in fault_server.requests} >= {
        "config",
        "upload",
        "join",
        "data",
        "file",
    }
    for request in fault_server.requests:
        assert "Authorization" not in request.headers, request.endpoint
        assert "X-HF-Authorization" not in request.headers, request.endpoint
        assert "x-zerogpu-token" not in request.headers


async def test_token_goes_to_a_custom_host_only_when_allowed(
    fault_server: FaultServer, make_client: MakeClientType
) -> None:
    async with make_client(
        fault_server.url,
        hf_token=HF_TOKEN,
        allow_token_to_custom_host=True,
        image_transport="upload",
        timeout=1.5,
        idle_timeout=10,
    ) as client:
        await bounded(client.understand("hello", tiny_png()), 5)
        await bounded(client.generate("a cat"), 5)
        with pytest.raises(JanusError):
            await bounded(client.understand("[hang] cancel me"), 5)
    assert fault_server.count("cancel") == 1
    for request in fault_server.requests:
        # The Space proxy consumes X-HF-Authorization; Authorization would reach the app's code.
        assert request.headers.get("X-HF-Authorization") == f"Bearer {HF_TOKEN}", request.endpoint
        assert "Authorization" not in request.headers, request.endpoint


async def test_env_token_is_used_and_kept_from_custom_hosts(
    fault_server: FaultServer, make_client: MakeClientType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    async with make_client(fault_server.url) as client:
        assert "token=set" in repr(client)
        await bounded(client.understand("hello"), 5)
    assert all("Authorization" not in r.headers for r in fault_server.requests)
    assert all("X-HF-Authorization" not in r.headers for r in fault_server.requests)


@pytest.mark.parametrize("endpoint", ["config", "join", "file"])
async def test_redirects_from_the_space_are_not_followed(
    fault_server: FaultServer,
    other_server: FaultServer,
    make_client: MakeClientType,
    endpoint: Any,
) -> None:
    target = f"{other_server.url}/config"
    fault_server.fail(endpoint, HttpFault(302, "moved", headers={"Location": target}))
    async with make_client(
        fault_server.url, hf_token=HF_TOKEN, allow_token_to_custom_host=True
    ) as client:
        with pytest.raises(JanusError) as caught:
            call = client.generate("a cat") if endpoint == "file" else client.understand("hi")
            await bounded(call, 5)
    assert other_server.requests == []  # the token never went to the redirect target
    assert_no_secret(str(caught.value), "an error message")


async def test_image_urls_get_no_credentials_even_across_redirects(
    fault_server: FaultServer, other_server: FaultServer, make_client: MakeClientType
) -> None:
    other_server.images["cat.png"] = UserImage(tiny_png(side=8))
    fault_server.images["start.png"] = UserImage(b"", location=f"{other_server.url}/images/cat.png")
    async with make_client(
        fault_server.url,
        hf_token=HF_TOKEN,
        allow_token_to_custom_host=True,
        extra_headers={"x-ip-token": "ip-token-for-the-space"},
    ) as client:
        result = await bounded(
            client.understand("hello", f"{fault_server.url}/images/start.png"), 5
        )
    assert result.text == "answer: hello"
    fetches = fault_server.of("image") + other_server.of("image")
    assert len(fetches) == 2
    for request in fetches:
        assert "Authorization" not in request.headers
        assert "X-HF-Authorization" not in request.headers
        assert "x-ip-token" not in request.headers and "x-zerogpu-token" not in request.headers


# --- The ZeroGPU token ------------------------------------------------------------------------


async def test_zerogpu_token_is_fetched_from_the_hub_cached_and_sent(
    fault_server: FaultServer, other_server: FaultServer, hf_space_at: Callable[[str], None]
) -> None:
    hf_space_at(fault_server.url)
    other_server.jwt = JWT
    async with public_space_client(other_server, image_transport="upload") as client:
        await bounded(client.understand("hello", tiny_png()), 5)
        await bounded(client.generate("a cat"), 5)
    (jwt_request,) = other_server.of("jwt")
    assert jwt_request.path == "/api/spaces/owner/space/jwt"
    assert jwt_request.headers["Authorization"] == f"Bearer {HF_TOKEN}"
    for request in fault_server.space_requests:
        assert request.headers.get("x-zerogpu-token") == JWT, request.endpoint
        assert request.headers.get("X-HF-Authorization") == f"Bearer {HF_TOKEN}"
        assert "Authorization" not in request.headers, "Authorization would reach the app"


async def test_expiring_zerogpu_token_is_fetched_again(
    fault_server: FaultServer, other_server: FaultServer, hf_space_at: Callable[[str], None]
) -> None:
    hf_space_at(fault_server.url)
    other_server.jwt = fake_jwt(10)  # inside the client's 30 s safety margin
    async with public_space_client(other_server) as client:
        await bounded(client.understand("one"), 5)
        joins_before = other_server.count("jwt")
        await bounded(client.understand("two"), 5)
    assert other_server.count("jwt") > joins_before >= 1


@pytest.mark.parametrize("status", [401, 500])
async def test_hub_failure_costs_the_zerogpu_token_not_the_call(
    fault_server: FaultServer,
    other_server: FaultServer,
    hf_space_at: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    hf_space_at(fault_server.url)
    other_server.jwt_status = status
    caplog.set_level(logging.DEBUG)
    async with public_space_client(other_server) as client:
        assert (await bounded(client.understand("one"), 5)).text == "answer: one"
        assert (await bounded(client.understand("two"), 5)).text == "answer: two"
    assert other_server.count("jwt") == 1  # not asked again after a refusal
    assert all("x-zerogpu-token" not in r.headers for r in fault_server.requests)
    assert f"HTTP {status}" in caplog.text and "ZeroGPU token" in caplog.text
    assert_no_secret(caplog.text, "the logs")


async def test_hf_token_is_not_sent_to_a_custom_hub_by_default(
    fault_server: FaultServer, other_server: FaultServer, hf_space_at: Callable[[str], None]
) -> None:
    hf_space_at(fault_server.url)
    other_server.jwt = JWT
    other_server.hub_stage = "PAUSED"
    fault_server.fail("config", HttpFault(503, "<html>asleep</html>", "text/html", times=2))
    async with public_space_client(other_server, allow_token_to_custom_host=False) as client:
        with pytest.raises(JanusError):
            await bounded(client.understand("hello"), 5)  # asks the Hub for the stage
        await bounded(client.understand("hello"), 5)  # asks the Hub for a ZeroGPU token
    assert other_server.count("hub") == 1 and other_server.count("jwt") <= 1
    for request in other_server.requests:
        assert "Authorization" not in request.headers, request.endpoint


# --- Logs, errors and cassettes ----------------------------------------------------------------


async def test_logs_and_errors_carry_no_token(
    fault_server: FaultServer,
    other_server: FaultServer,
    hf_space_at: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    hf_space_at(fault_server.url)
    other_server.jwt = JWT
    errors: list[BaseException] = []
    async with public_space_client(
        other_server, max_retries=2, timeout=1.0, idle_timeout=3.0
    ) as client:
        for question in (
            "[odd] fine",
            "[full:1] retried",
            "[apperror] x",
            "[errnull] y",
            "[hang] z",
            "[join:500] w",
            "[nogpu:1] v",
            "[quota] u",
            "after quota",
        ):
            try:
                await bounded(client.understand(question), 5)
            except JanusError as exc:
                errors.append(exc)
        client._quota_until = 0.0  # let the stream faults below through
        fault_server.fail_stream(StreamFault("reset", times=1))
        fault_server.fail_stream(StreamFault("malformed", times=1))
        fault_server.fail("file", HttpFault(500, "no files today", times=3))
        for call in (client.understand("a"), client.understand("b"), client.generate("c")):
            try:
                await bounded(call, 5)
            except JanusError as exc:
                errors.append(exc)
    # The faults that fail whatever the timing (the others may time out or recover, e.g. a
    # reset stream reopened): each error's text is checked below with the logs.
    kinds = Counter(type(e).__name__ for e in errors)
    assert kinds["AppError"] >= 2 and kinds["QuotaExceededError"] >= 2, kinds
    assert kinds["SpaceUnavailableError"] >= 1 and kinds["ProtocolError"] >= 1, kinds
    assert fault_server.stream_faults_applied == {"reset": 1, "malformed": 1}
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert_no_secret(caplog.text, "the logs")
    for record in caplog.records:
        assert_no_secret(record.getMessage() + repr(record.args), f"log record {record.name}")
    for error in errors:
        assert_no_secret(f"{error} {error!r} {vars(error)}", f"{type(error).__name__}")


@pytest.mark.parametrize("endpoint", ["join", "config"])
async def test_server_text_echoing_the_token_is_scrubbed_from_errors(
    fault_server: FaultServer, make_client: MakeClientType, endpoint: Any
) -> None:
    echo = f"bad request: Authorization: Bearer {HF_TOKEN}"
    fault_server.fail(endpoint, HttpFault(400, echo))
    async with make_client(
        fault_server.url, hf_token=HF_TOKEN, allow_token_to_custom_host=True, max_retries=0
    ) as client:
        with pytest.raises(JanusError) as caught:
            await bounded(client.understand("hello"), 5)
    assert_no_secret(str(caught.value), "an error message")


async def test_cassettes_carry_no_token(
    fault_server: FaultServer,
    other_server: FaultServer,
    hf_space_at: Callable[[str], None],
    tmp_path: Path,
) -> None:
    from cassette_support import use_cassette

    hf_space_at(fault_server.url)
    other_server.jwt = JWT
    path = tmp_path / "secrets.yaml"
    with use_cassette(path, record_from=fault_server.url):
        async with public_space_client(other_server, image_transport="upload") as client:
            await bounded(client.understand("hello", tiny_png()), 5)
            await bounded(client.generate("a cat"), 5)
    recorded = path.read_text()
    assert "/gradio_api/queue/join" in recorded and "/jwt" in recorded
    assert_no_secret(recorded, "the cassette")
    assert all("x-zerogpu-token" in r.headers for r in fault_server.of("join"))
