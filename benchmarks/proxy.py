"""Counting and delaying TCP proxies in front of the replica (127.0.0.1 only).

The proxy process listens on pairs of ports (one pair per client measured, so each client's
traffic is counted apart), all forwarding to the replica:

* ``local<i>``: no delay; it only counts.
* ``delayed<i>``: every chunk is held back ``delay`` seconds in each direction (50 ms by default,
  so a 100 ms round trip), and a new connection's first bytes wait one extra round trip, as a
  TCP handshake over such a link would (plain http: no TLS handshake is simulated).

For each port it counts accepted TCP connections (and the most open at once), bytes in each
direction, and HTTP requests by kind, parsed from the client's byte stream: that is the number
of HTTP exchanges as the server sees them, whatever the client library does. A third port
answers one-line commands (``stats``, ``reset_peak``) with JSON, so benchmark workers in other
processes can read the counters before and after each phase.

It runs in its own process so that its CPU time is shared fairly by every client measured:
``python -m benchmarks.proxy --upstream-port N --pairs K`` prints ``{"local0": p,
"delayed0": p, ..., "control": p}`` once listening and exits when its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HOST",
    "LinkStats",
    "ProxyLink",
    "RequestParser",
    "control_command",
    "request_kind",
]

HOST = "127.0.0.1"
_READ_SIZE = 65536


def request_kind(target: str) -> str:
    """Name the Gradio endpoint of a request target (``/gradio_api/queue/join?...`` → ``join``)."""
    path = target.split("?", 1)[0]
    if path == "/config":
        return "config"
    for prefix, kind in (
        ("/gradio_api/upload", "upload"),
        ("/gradio_api/queue/join", "join"),
        ("/gradio_api/queue/data", "stream"),
        ("/gradio_api/file=", "download"),
        ("/gradio_api/heartbeat", "heartbeat"),
        ("/gradio_api/info", "info"),
        ("/gradio_api/cancel", "cancel"),
    ):
        if path.startswith(prefix):
            return kind
    return "other"


class RequestParser:
    """Incremental HTTP/1.1 request framing over one connection's client-to-server bytes.

    It only finds where each request starts and ends (``Content-Length`` or chunked bodies),
    which is all that counting needs; bodies are skipped without being buffered whole.
    """

    def __init__(self, on_request: Callable[[str], None] | None = None) -> None:
        self._on_request = on_request  # called with each request's kind (for tracing)
        self._buf = bytearray()
        self._state = "head"
        self._remaining = 0

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Consume ``data``; return ``(method, target)`` of every request whose head completed."""
        self._buf += data
        found: list[tuple[str, str]] = []
        while self._step(found):
            pass
        return found

    def _step(self, found: list[tuple[str, str]]) -> bool:
        buf = self._buf
        if self._state == "head":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            found.append((parts[0], parts[1] if len(parts) > 1 else ""))
            if self._on_request is not None:
                self._on_request(request_kind(found[-1][1]))
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._state = "chunk-size"
            else:
                self._remaining = int(headers.get("content-length", "0") or 0)
                self._state = "body" if self._remaining else "head"
            return True
        if self._state in ("body", "chunk-data"):
            if not buf:
                return False
            taken = min(self._remaining, len(buf))
            del buf[:taken]
            self._remaining -= taken
            if self._remaining:
                return False
            self._state = "head" if self._state == "body" else "chunk-size"
            return True
        end = buf.find(b"\r\n")
        if end < 0:
            return False
        raw = bytes(buf[:end])
        del buf[: end + 2]
        if self._state == "chunk-size":
            size = int(raw.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self._state = "trailer"
            else:
                self._state, self._remaining = "chunk-data", size + 2  # data + CRLF
        elif not raw:  # an empty line ends the trailer
            self._state = "head"
        return True


@dataclass
class LinkStats:
    """Cumulative counters of one listening port."""

    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {
            "connections": self.connections,
            "open_now": self.open_now,
            "max_open": self.max_open,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "requests": dict(self.requests),
        }


class ProxyLink:
    """One listening port that forwards to the upstream server, counting and maybe delaying."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0, handshake_rtts: int = 1) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.handshake = 2 * delay * handshake_rtts if delay else 0.0
        self.stats = LinkStats()
        # While a list: every request as (monotonic time, connection id, kind, first on conn).
        self.trace: list[tuple[float, int, str, bool]] | None = None
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on 127.0.0.1 (an ephemeral port); returns the port."""
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + self.handshake
        stats = self.stats
        stats.connections += 1
        stats.open_now += 1
        stats.max_open = max(stats.max_open, stats.open_now)
        try:
            await self._forward(reader, writer, ready_at, stats.connections)
        except asyncio.CancelledError:  # the proxy is shutting down: drop the connection
            writer.close()
        finally:
            stats.open_now -= 1

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ready_at: float,
        connection: int,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:
            writer.close()
            return
        parser = RequestParser(self._tracer(connection))
        tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer, ready_at, parser)),
            asyncio.ensure_future(self._pipe(up_reader, writer, ready_at, None)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for stream in (writer, up_writer):
                stream.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task

    def _tracer(self, connection: int) -> Callable[[str], None]:
        """A callback recording each request of one connection while ``trace`` is on."""
        loop = asyncio.get_running_loop()
        seen = 0

        def record(kind: str) -> None:
            nonlocal seen
            seen += 1
            if self.trace is not None:
                self.trace.append((loop.time(), connection, kind, seen == 1))

        return record

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        ready_at: float,
        parser: RequestParser | None,
    ) -> None:
        """Copy one direction until EOF, counting, and holding each chunk back ``delay`` s."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await pending.get()
                if not data:
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()

        sender = asyncio.ensure_future(deliver()) if self.delay else None
        try:
            while True:
                try:
                    data = await src.read(_READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if parser is not None:
                    self.stats.bytes_up += len(data)
                    for _method, target in parser.feed(data):
                        self.stats.requests[request_kind(target)] += 1
                else:
                    self.stats.bytes_down += len(data)
                if sender is None:
                    if not data:
                        return
                    dst.write(data)
                    await dst.drain()
                    continue
                now = loop.time()
                # Client-to-server bytes sent right after connect() also wait for the handshake.
                due = max(now, ready_at) + self.delay if parser is not None else now + self.delay
                pending.put_nowait((due, data))
                if not data:
                    await sender
                    return
        finally:
            if sender is not None and not sender.done():
                sender.cancel()


async def _control(
    links: dict[str, ProxyLink], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer one-line commands with JSON.

    ``stats``: every link's counters. ``reset_peak``: restart the most-open-at-once count, then
    stats. ``trace_on <link>`` / ``trace_off <link>``: record that link's requests with their
    times (``time.monotonic()``, the same clock in every process), then return and drop them.
    """
    try:
        while line := await reader.readline():
            command, _, link = line.decode().strip().partition(" ")
            body: dict[str, Any]
            if command == "trace_on":
                links[link].trace = []
                body = {"ok": True}
            elif command == "trace_off":
                trace, links[link].trace = links[link].trace, None
                body = {"trace": trace or []}
            else:
                if command == "reset_peak":
                    for each in links.values():
                        each.stats.max_open = each.stats.open_now
                body = {name: each.stats.as_dict() for name, each in links.items()}
            writer.write(json.dumps(body).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


def control_command(port: int, command: str = "stats") -> dict[str, Any]:
    """Send one command to a proxy's control port (blocking) and return its JSON answer."""
    with socket.create_connection((HOST, port), timeout=10) as conn:
        conn.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


async def _main(upstream_port: int, delay: float, handshake_rtts: int, pairs: int) -> None:
    links: dict[str, ProxyLink] = {}
    for index in range(pairs):
        links[f"local{index}"] = ProxyLink(upstream_port)
        links[f"delayed{index}"] = ProxyLink(
            upstream_port, delay=delay, handshake_rtts=handshake_rtts
        )
    ports = {name: await link.start() for name, link in links.items()}
    control = await asyncio.start_server(lambda r, w: _control(links, r, w), HOST, 0)
    ports["control"] = control.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def watch_stdin() -> None:  # the parent holds our stdin: its end is our signal to stop
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stdin_closed.wait()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="one-way delay")
    parser.add_argument("--handshake-rtts", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=1, help="local/delayed port pairs")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.upstream_port, args.delay_ms / 1000, args.handshake_rtts, args.pairs))


if __name__ == "__main__":
    main()
