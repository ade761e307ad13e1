"""A small local stand-in for the Hub's API (aiohttp, on 127.0.0.1, in its own thread).

It serves the few routes ``huggingface_hub`` uses for Spaces — ``whoami-v2``, a Space's
``runtime``, ``duplicate`` — with the Hub's status codes and error headers, and records every
request (method, path, JSON body, whether an ``Authorization`` header came and whether it held
a known token; never the token itself), so tests assert what ``huggingface_hub`` really sent.
A Space's runtime follows a script of stages, one per read, the last one repeating.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["TOKEN", "HubRequest", "HubStandIn", "ScriptedSpace", "running_hub"]

TOKEN = "hf_standinstandinstandinstandin"
"""The token the ``hub`` fixture's user has (a made-up value; it never leaves 127.0.0.1)."""


@dataclass(frozen=True)
class HubRequest:
    """One request as the stand-in saw it."""

    method: str
    path: str
    body: Any
    auth: str | None
    """None: no Authorization header; 'known': a token the stand-in knows; 'unknown'."""


@dataclass
class ScriptedSpace:
    """A Space on the stand-in: its stages (one per runtime read), hardware and settings."""

    stages: list[str]
    hardware: str | None = "cpu-basic"
    requested_hardware: str | None = None
    sleep_time: int | None = None
    private: bool = False
    error_message: str | None = None
    reads: int = 0

    def runtime(self) -> dict[str, Any]:
        stage = self.stages[min(self.reads, len(self.stages) - 1)]
        self.reads += 1
        body: dict[str, Any] = {
            "stage": stage,
            "hardware": {"current": self.hardware, "requested": self.requested_hardware},
            "gcTimeout": self.sleep_time,
            "storage": None,
            "replicas": {"current": 1, "requested": 1},
        }
        if self.error_message and stage.endswith("ERROR"):
            body["errorMessage"] = self.error_message
        return body


@dataclass
class HubStandIn:
    """The stand-in's state; ``url`` is where it listens."""

    url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    """token → the ``whoami-v2`` answer for it."""
    spaces: dict[str, ScriptedSpace] = field(default_factory=dict)
    build_stages: list[str] = field(default_factory=lambda: ["BUILDING", "RUNNING"])
    """The stages a new copy goes through."""
    build_error: str | None = None
    hang: bool = False
    """True: every request is recorded, then left unanswered until the stand-in stops."""
    requests: list[HubRequest] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, in order."""
        return [(r.method, r.path) for r in self.requests]


def _error(status: int, message: str, code: str | None = None) -> web.Response:
    headers = {"X-Error-Message": message}
    if code:
        headers["X-Error-Code"] = code
    return web.json_response({"error": message}, status=status, headers=headers)


def _app(hub: HubStandIn) -> web.Application:
    def user_of(request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        return hub.users.get(header.removeprefix("Bearer ").strip()) if header else None

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        header = request.headers.get("Authorization")
        auth = None if header is None else ("known" if user_of(request) else "unknown")
        hub.requests.append(HubRequest(request.method, request.path, body, auth))
        while hub.hang and not hub.released.is_set():
            await asyncio.sleep(0.02)
        response: web.StreamResponse = await handler(request)
        return response

    async def whoami(request: web.Request) -> web.Response:
        user = user_of(request)
        if user is None:
            return _error(401, "Invalid credentials in Authorization header")
        return web.json_response({"type": "user", "orgs": [], **user})

    def space_or_error(request: web.Request) -> ScriptedSpace | web.Response:
        space_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        space = hub.spaces.get(space_id)
        if space is None or (space.private and user_of(request) is None):
            return _error(404, "Repository not found", "RepoNotFound")
        return space

    async def runtime(request: web.Request) -> web.Response:
        space = space_or_error(request)
        if isinstance(space, web.Response):
            return space
        return web.json_response(space.runtime())

    async def duplicate(request: web.Request) -> web.Response:
        user = user_of(request)
        if user is None:
            return _error(401, "Invalid credentials in Authorization header")
        source = space_or_error(request)
        if isinstance(source, web.Response):
            return source
        body = await request.json()
        target = str(body.get("repository", ""))
        if target in hub.spaces:
            return _error(409, f"You already created this space repo: {target}")
        private = body.get("private", body.get("visibility") == "private")
        hub.spaces[target] = ScriptedSpace(
            stages=list(hub.build_stages),
            hardware=body.get("hardware", "cpu-basic"),
            requested_hardware=body.get("hardware", "cpu-basic"),
            sleep_time=body.get("sleepTimeSeconds"),
            private=bool(private),
            error_message=hub.build_error,
        )
        return web.json_response({"url": f"{hub.url}/spaces/{target}"})

    app = web.Application(middlewares=[record])
    app.router.add_get("/api/whoami-v2", whoami)
    app.router.add_get("/api/spaces/{owner}/{name}/runtime", runtime)
    app.router.add_post("/api/spaces/{owner}/{name}/duplicate", duplicate)
    return app


@contextmanager
def running_hub() -> Iterator[HubStandIn]:
    """Serve a fresh stand-in on 127.0.0.1 (a free port) for the duration of the block."""
    hub = HubStandIn()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(_app(hub), access_log=None, shutdown_timeout=1.0)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        hub.url = f"http://127.0.0.1:{port}"
        started.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="hub-stand-in", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the Hub stand-in did not start")
    try:
        yield hub
    finally:
        hub.released.set()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
