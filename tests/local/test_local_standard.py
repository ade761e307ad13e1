"""langchain-tests' standard unit and integration suites for ChatJanus on the local backend.

The same suites as ``tests/langchain/test_standard_*.py``, with ``backend=LocalJanus(...)``
on the tiny checkpoint instead of the Space. Flags say what Janus can do locally: image
inputs (inline and URL, several per message) yes; tool calling, structured output, usage
metadata, PDF and audio no (those tests skip by the suite's own flags). The sample picture of
``test_image_inputs`` is served from ``tests/langchain/data/sample.png`` by a loopback server,
so the backend's real URL download runs.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
from conftest import load
from tiny_janus import TinyJanus

from janus_space.local import LocalJanus

pytest.importorskip("langchain_tests")

import aiohttp
import httpx
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_janus import ChatJanus

SAMPLE_PNG = (Path(__file__).parent.parent / "langchain" / "data" / "sample.png").read_bytes()
SAMPLE_HOST = "https://raw.githubusercontent.com"
SAMPLE_PREFIX = f"{SAMPLE_HOST}/langchain-ai/docs/"


class _Sample(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(SAMPLE_PNG)))
        self.end_headers()
        self.wfile.write(SAMPLE_PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sample_server() -> Iterator[str]:
    """A loopback server answering every GET with the sample picture."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sample)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def sample_downloads(monkeypatch: pytest.MonkeyPatch, sample_server: str) -> None:
    """The suite's picture URL (only that one) comes from the loopback server."""
    real_httpx_get = httpx.get
    real_aiohttp_get = aiohttp.ClientSession.get

    def httpx_get(url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        if str(url).startswith(SAMPLE_PREFIX):
            return httpx.Response(200, content=SAMPLE_PNG, request=httpx.Request("GET", str(url)))
        return real_httpx_get(url, *args, **kwargs)

    def aiohttp_get(self: aiohttp.ClientSession, url: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(SAMPLE_PREFIX):
            url = sample_server + url[len(SAMPLE_HOST) :]
        return real_aiohttp_get(self, url, **kwargs)

    monkeypatch.setattr(httpx, "get", httpx_get)
    monkeypatch.setattr(aiohttp.ClientSession, "get", aiohttp_get)


@pytest.fixture(scope="module")
def local_backend(tiny: TinyJanus) -> Iterator[LocalJanus]:
    """One backend for a suite (short answers keep the suite quick)."""
    janus = load(tiny, max_new_tokens=24)
    yield janus
    janus.close()


class LocalCapabilities:
    """What Janus can do on the local backend, as langchain-tests' flags."""

    backend: LocalJanus | None = None

    @pytest.fixture(autouse=True)
    def _use_local_backend(self, local_backend: LocalJanus) -> None:
        self.backend = local_backend

    @property
    def chat_model_class(self) -> type[ChatJanus]:
        return ChatJanus

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "janus-pro-7b", "backend": self.backend, "temperature": 1.0}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False  # prompted, validated structured output needs a model that follows it

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str:
        return "janus-pro-7b-image"


class TestLocalChatJanusStandardUnit(LocalCapabilities, ChatModelUnitTests):
    """The unit suite: construction, parameters, serialization, with a local backend."""


class TestLocalChatJanusStandardIntegration(LocalCapabilities, ChatModelIntegrationTests):
    """The integration suite, every call answered by the tiny model on this machine."""

    @pytest.fixture
    async def model(self, request: pytest.FixtureRequest) -> AsyncIterator[BaseChatModel]:
        extra = getattr(request, "param", None) or {}
        llm = self.chat_model_class(
            **{**self.standard_chat_model_params, **self.chat_model_params, **extra}
        )
        yield llm
        await llm.aclose()  # the backend passed in stays open for the next test
