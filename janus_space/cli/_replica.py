"""``janus-space replica``: serve the local replica of the Space, in the foreground or detached.

The replica (``janus_space.replica``) needs gradio, which only the ``replica``/``dev`` extras
install; without it the command says what to install instead of failing on an import.
``--background`` exists because the replica takes a few seconds to start: it returns only
once ``GET /config`` answers, so the next command in a script can use it at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from ._errors import EXIT_FAILURE, EXIT_OK

__all__ = ["missing_replica_modules", "run_replica"]

STARTUP_TIMEOUT = 90.0


def missing_replica_modules() -> list[str]:
    """The modules the replica needs that are not installed (gradio, PIL, numpy)."""
    return [name for name in ("gradio", "PIL", "numpy") if importlib.util.find_spec(name) is None]


def _probe(url: str) -> bool | None:
    """True: the Janus app (or its replica) answers; False: something else; None: nothing."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/config", timeout=2) as response:
            config = json.loads(response.read())
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError, ValueError):
        return None
    names = {d.get("api_name") for d in config.get("dependencies", []) if isinstance(d, dict)}
    return {"multimodal_understanding", "generate_image"} <= names


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"


def run_replica(host: str, port: int, *, background: bool, out: TextIO, err: TextIO) -> int:
    """Serve the replica on ``host:port``; with ``background``, detach and return when ready."""
    missing = missing_replica_modules()
    if missing:
        err.write(
            f"janus-space: the replica needs {', '.join(missing)} (not installed); install "
            'the extra: pip install "janus-space[replica]"\n'
        )
        return EXIT_FAILURE
    url = _url(host, port)
    if not _port_free(host, port):
        if _probe(url):
            out.write(f"a Janus replica (or Space) already answers at {url}\n")
            out.write(f"use it with: export JANUS_BASE_URL={url}\n")
            return EXIT_OK
        err.write(f"janus-space: port {port} on {host} is in use; choose another with --port\n")
        return EXIT_FAILURE
    if background:
        return _start_detached(host, port, url, out, err)
    err.write(
        f"janus-space: serving the replica at {url} (Ctrl-C stops it); in another shell:\n"
        f"  export JANUS_BASE_URL={url}\n"
    )
    err.flush()
    from janus_space.replica import serve

    try:
        serve(host, port)
    except OSError as exc:
        err.write(f"janus-space: the replica could not listen on {host}:{port}: {exc}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _start_detached(host: str, port: int, url: str, out: TextIO, err: TextIO) -> int:
    log = Path(tempfile.gettempdir()) / f"janus-space-replica-{port}.log"
    command = [sys.executable, "-m", "janus_space.replica", "--host", host, "--port", str(port)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives this command and the terminal's Ctrl-C
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _probe(url):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            err.write(f"janus-space: the replica did not start (log: {log}):\n")
            err.write("".join(f"  {line}\n" for line in tail))
            return EXIT_FAILURE
        time.sleep(0.1)
    out.write(f"replica serving at {url} (pid {process.pid}, log {log})\n")
    out.write(f"use it with: export JANUS_BASE_URL={url}\n")
    out.write(f"stop it with: kill {process.pid}\n")
    out.flush()
    return EXIT_OK
