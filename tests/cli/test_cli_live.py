"""``janus-space`` as users run it: the installed console script in a subprocess, against the
replica (live only: a subprocess cannot replay cassettes), and the failures that need a real
server or real time: timeouts, an unreachable host, a Space that is down, Ctrl-C."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassette_support import free_port
from cli_support import CLI

from janus_space.cli import EXIT_INTERRUPTED, EXIT_NETWORK, EXIT_UNAVAILABLE, EXIT_USAGE
from janus_space.replica import parse_understanding_report

SCRIPT = Path(sys.executable).with_name("janus-space")


def environment(base_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "JANUS_BASE_URL")}
    if base_url is not None:
        env["JANUS_BASE_URL"] = base_url
    return env


def test_the_console_script_is_installed_and_answers(replica_url: str) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the package (pip install -e .)"
    done = subprocess.run(
        [str(SCRIPT), "ask", "Hello from a shell"],
        env=environment(replica_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert parse_understanding_report(done.stdout.strip()).question == "Hello from a shell"


def test_chat_reads_turns_from_stdin(replica_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "janus_space.cli", "chat", "-q"],
        input="first\nsecond\n/quit\n",
        env=environment(replica_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, second = (parse_understanding_report(line) for line in done.stdout.splitlines())
    assert first.question == "first"
    assert second.question.endswith("\n\nsecond") and "User: first" in second.question


def test_ctrl_c_cancels_the_call_and_exits_130(replica_url: str) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "ask", "Take your time [slow:300]"],
        env=environment(replica_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "replica working" in line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == EXIT_INTERRUPTED
    assert "janus-space: interrupted; the job on the Space was cancelled" in err
    assert out == ""


def test_timeout_exits_5(cli: CLI, replica_url: str) -> None:
    run = cli("ask", "Slow [slow:40]", "--timeout", "1", "--base-url", replica_url, "-q")
    assert run.code == EXIT_NETWORK
    assert run.err.startswith("janus-space: timeout: ")
    assert "raise --timeout" in run.err


def test_unreachable_host_exits_5_with_a_hint_about_the_replica(cli: CLI) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = cli("ask", "Hello", "--base-url", url, "--max-retries", "0", "-q")
    assert run.code == EXIT_NETWORK
    assert run.err.startswith("janus-space: connection failed: ")
    assert "janus-space replica --background" in run.err


class _Down(http.server.BaseHTTPRequestHandler):
    """A Space that is down: every request answers 503 with an HTML page."""

    def do_GET(self) -> None:
        body = b"<html><body>Space is sleeping</body></html>"
        self.send_response(503)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def down_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_space_down_exits_4(cli: CLI, down_url: str) -> None:
    run = cli("ask", "Hello", "--base-url", down_url, "--max-retries", "0", "-q")
    assert run.code == EXIT_UNAVAILABLE
    assert run.err.startswith("janus-space: Space unavailable: ")
    assert "HTTP 503" in run.err


def test_ctrl_c_with_json_prints_a_record(replica_url: str) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "--json", "ask", "Take your time [slow:300]"],
        env=environment(replica_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "replica working" in line:
                break
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == EXIT_INTERRUPTED
    record = json.loads(out)
    assert record["error"] == {
        "type": "KeyboardInterrupt",
        "message": "interrupted; the job on the Space was cancelled",
        "exit_code": EXIT_INTERRUPTED,
        "retry_after": None,
    }


def test_a_pool_of_endpoints_moves_past_one_that_is_down(cli: CLI, replica_url: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    run = cli(
        "--json",
        "ask",
        "Hello pool",
        "--endpoint",
        down,
        "--endpoint",
        replica_url,
        "--max-retries",
        "0",
    )
    assert run.code == 0, run.err
    record = json.loads(run.out)
    assert record["endpoint"] == replica_url
    assert parse_understanding_report(record["answer"]).question == "Hello pool"
    assert f"janus-space: {down} skipped: " in run.err and f"trying {replica_url}" in run.err
    assert "asking the pool of 2 endpoints" in run.err


def test_one_endpoint_is_a_plain_client_of_it(cli: CLI, replica_url: str) -> None:
    run = cli("--json", "ask", "Hello one", "--endpoint", replica_url, "-q")
    assert run.code == 0, run.err
    assert json.loads(run.out)["endpoint"] == replica_url


def test_local_model_that_is_not_there_exits_2_naming_it(cli: CLI, tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    run = cli("ask", "hi", "--local", str(missing))
    if run.code == 1:  # the local extra (torch, transformers) is not installed here
        assert 'pip install "janus-space[local]"' in run.err
    else:
        assert run.code == EXIT_USAGE, run.err
        assert str(missing) in run.err and "model not found" in run.err
