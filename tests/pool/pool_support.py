"""Helpers of the pool tests: several replica processes at once, hosts that fail every request.

The replicas are real Gradio servers (``python -m janus_space.replica``), started together once
per session, one job at a time each (Gradio's default). Each keeps a call log (every call that
reached its function, with the time it started), so a test counts what the Space really ran;
tests put a fresh tag in their questions and count only their own calls. The quota'd replica
answers every call with the ZeroGPU quota error (``--faults "[quota]"``, retry in 7 s).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cassette_support import free_port

from janus_space.replica import read_call_log

HUB_TESTS = Path(__file__).resolve().parent.parent / "hub"
if str(HUB_TESTS) not in sys.path:  # the Hub stand-in of tests/hub, for the Space-id tests
    sys.path.insert(0, str(HUB_TESTS))

FAST: dict[str, Any] = {"timeout": 60.0, "connect_timeout": 5.0, "max_retries": 0}
"""Shared settings of the test pools: no client-side retries, so every request is the pool's."""

PAUSED_PAGE = (
    b"<!DOCTYPE html><html><head><title>Space paused</title></head><body>"
    b"<h1>This Space has been paused by its owner.</h1></body></html>"
)


@dataclass(frozen=True)
class Replica:
    """One replica process: its base URL and the log of the calls it ran."""

    url: str
    call_log: Path

    def calls(self, tag: str) -> list[dict[str, Any]]:
        """The calls this replica ran whose question or prompt holds ``tag`` (oldest first)."""
        return [entry for entry in read_call_log(self.call_log) if tag in entry["text"]]


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/config", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_replicas(
    specs: dict[str, list[str]], folder: Path, startup_timeout: float = 100.0
) -> Iterator[dict[str, Replica]]:
    """Start one replica per ``name: extra args`` at once; yield them when all answer."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "JANUS_REPLICA_FAULTS"):
        env.pop(name, None)
    started: list[tuple[subprocess.Popen[bytes], Any, str]] = []
    replicas: dict[str, Replica] = {}
    try:
        for name, args in specs.items():
            port = free_port()
            log = folder / f"{name}.calls.jsonl"
            output = open(folder / f"{name}.out", "wb")  # noqa: SIM115 - closed in finally
            command = [
                sys.executable,
                "-m",
                "janus_space.replica",
                "--port",
                str(port),
                "--call-log",
                str(log),
                *args,
            ]
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
            started.append((process, output, name))
            replicas[name] = Replica(f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + startup_timeout
        waiting = dict(replicas)
        while waiting:
            for name, replica in list(waiting.items()):
                if _answers(replica.url):
                    del waiting[name]
            for process, _, name in started:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = (folder / f"{name}.out").read_text(errors="replace")
                    raise RuntimeError(f"replica {name} did not start:\n{text}")
            time.sleep(0.2)
        yield replicas
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, output, _ in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output.close()


@dataclass
class FaultyHost:
    """A host answering every request one way, and the requests it saw."""

    url: str = ""
    requests: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def faulty_host(
    status: int, body: bytes, headers: dict[str, str]
) -> AsyncIterator[FaultyHost]:
    """Serve a ``FaultyHost`` on 127.0.0.1 (a free port) for the duration of the block."""
    host = FaultyHost()

    async def answer(request: web.Request) -> web.Response:
        host.requests.append(f"{request.method} {request.path}")
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield host
    finally:
        await runner.cleanup()
