"""``janus-space replica``: a clear message without gradio, no clash with a busy port, and
``--background`` returning only once the replica answers."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cassette_support import free_port
from cli_support import CLI

from janus_space.cli import EXIT_FAILURE


def test_without_gradio_it_says_what_to_install(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "gradio" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    run = cli("replica", "--port", str(free_port()))
    assert run.code == EXIT_FAILURE
    assert run.err == (
        "janus-space: the replica needs gradio (not installed); install the extra: "
        'pip install "janus-space[replica]"\n'
    )


class _NotJanus(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def busy_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotJanus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_port_taken_by_something_else_is_refused(cli: CLI, busy_port: int) -> None:
    run = cli("replica", "--port", str(busy_port))
    assert run.code == EXIT_FAILURE
    assert f"port {busy_port} on 127.0.0.1 is in use" in run.err


def test_a_replica_already_running_is_reused(cli: CLI, replica_url: str) -> None:
    port = replica_url.rsplit(":", 1)[1]
    run = cli("replica", "--background", "--port", port)
    assert run.code == 0
    assert f"already answers at {replica_url}" in run.out
    assert f"export JANUS_BASE_URL={replica_url}" in run.out


def test_background_returns_once_the_replica_answers() -> None:
    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "janus_space.cli", "replica", "--background", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"\(pid (\d+),", done.stdout)
    assert found, done.stdout
    pid = int(found.group(1))
    try:
        assert f"replica serving at http://127.0.0.1:{port}" in done.stdout
        assert f"stop it with: kill {pid}" in done.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
            config = json.loads(response.read())
        names = {d.get("api_name") for d in config["dependencies"]}
        assert {"multimodal_understanding", "generate_image"} <= names
        assert time.monotonic() - started < 120
    finally:
        os.kill(pid, signal.SIGTERM)  # the replica this test started, by the pid it printed
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
