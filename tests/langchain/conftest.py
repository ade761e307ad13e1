"""Fixtures of the LangChain adapter's tests: the sample picture, and the standard suite's Space.

* The standard ``test_image_inputs`` downloads a picture from GitHub with ``httpx.get`` and
  then asks the model to fetch the same URL itself. Both downloads are served from
  ``data/sample.png``: ``httpx.get`` is answered in-process, and ``aiohttp.ClientSession.get``
  (what the core fetches image URLs with) is pointed at a loopback server, so the core's real
  download code runs and, in the replay tier, vcrpy answers from the cassette.
* ``standard_space_url`` is the shared ``space_url`` (``tests/conftest.py``) for the
  langchain-tests integration suite, with one difference: in the replay tier a missing
  cassette replays as an empty one. Many standard tests skip (no tool calling, no structured
  output...) before making any request, so recording leaves no cassette for them; a test that
  does make a request without a cassette still fails (the request is unmatched).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_socket
from cassette_support import REPLAY_BASE_URL, cassette_path, strip_param_id, use_cassette
from lc_support import SAMPLE_HOST, SAMPLE_PNG, SAMPLE_URL_PREFIX


class _SampleHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(SAMPLE_PNG)))
        self.end_headers()
        self.wfile.write(SAMPLE_PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def sample_image_server() -> Iterator[str]:
    """A loopback HTTP server answering every GET with the sample PNG."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SampleHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def sample_image_downloads(monkeypatch: pytest.MonkeyPatch, sample_image_server: str) -> None:
    """Serve the sample picture URL (only that one) from ``data/sample.png``."""
    real_httpx_get = httpx.get
    real_aiohttp_get = aiohttp.ClientSession.get

    def httpx_get(url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        if str(url).startswith(SAMPLE_URL_PREFIX):
            return httpx.Response(200, content=SAMPLE_PNG, request=httpx.Request("GET", str(url)))
        return real_httpx_get(url, *args, **kwargs)

    def aiohttp_get(self: aiohttp.ClientSession, url: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(SAMPLE_URL_PREFIX):
            url = sample_image_server + url[len(SAMPLE_HOST) :]
        return real_aiohttp_get(self, url, **kwargs)

    monkeypatch.setattr(httpx, "get", httpx_get)
    monkeypatch.setattr(aiohttp.ClientSession, "get", aiohttp_get)


@pytest.fixture(params=["replay", "live"])
def standard_space_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``space_url`` for the standard integration suite (a missing cassette replays empty)."""
    if request.param == "live":
        yield request.getfixturevalue("replica_url")
        return
    node = request.node
    path = cassette_path(request.config.rootpath, node.path, strip_param_id(node.name, "replay"))
    if request.config.getoption("--record"):
        live_url = request.getfixturevalue("replica_url")
        with use_cassette(path, record_from=live_url):
            yield live_url
        return
    pytest_socket.disable_socket(allow_unix_socket=True)  # undone by pytest-socket's teardown
    with use_cassette(path) as cassette:
        yield REPLAY_BASE_URL
    if cassette.unmatched:
        pytest.fail(f"requests not in cassette {path}: {cassette.unmatched}")
