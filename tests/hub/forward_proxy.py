"""A recording HTTP forward proxy on 127.0.0.1 (aiohttp, in its own thread), as a corporate
proxy is for plain-http targets: clients send absolute-form requests to it, it forwards them
and streams the answers back (event streams included). It records what passed through — method,
URL, and which credential headers came, never their values."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

__all__ = ["ProxiedRequest", "RecordingProxy", "running_proxy"]

_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass(frozen=True)
class ProxiedRequest:
    """One request that went through the proxy."""

    method: str
    url: str
    authorization: bool
    x_hf_authorization: bool
    proxy_authorization: bool


@dataclass
class RecordingProxy:
    """The proxy's address and what it forwarded."""

    url: str = ""
    requests: list[ProxiedRequest] = field(default_factory=list)


def _app(proxy: RecordingProxy, session_box: list[aiohttp.ClientSession]) -> web.Application:
    async def forward(request: web.Request) -> web.StreamResponse:
        headers = request.headers
        proxy.requests.append(
            ProxiedRequest(
                request.method,
                str(request.url),
                "Authorization" in headers,
                "X-HF-Authorization" in headers,
                "Proxy-Authorization" in headers,
            )
        )
        upstream_headers = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with session_box[0].request(
            request.method,
            str(request.url),
            headers=upstream_headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP and name.lower() != "content-encoding":
                    response.headers[name] = value
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@contextmanager
def running_proxy() -> Iterator[RecordingProxy]:
    """Serve a fresh recording proxy on 127.0.0.1 (a free port) for the block."""
    proxy = RecordingProxy()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    session_box: list[aiohttp.ClientSession] = []
    runner = web.AppRunner(_app(proxy, session_box), access_log=None, shutdown_timeout=1.0)

    async def start() -> None:
        session_box.append(aiohttp.ClientSession(auto_decompress=False, trust_env=False))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()

    async def stop() -> None:
        await runner.cleanup()
        await session_box[0].close()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(stop())
        loop.close()

    thread = threading.Thread(target=serve, name="forward-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the forward proxy did not start")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
