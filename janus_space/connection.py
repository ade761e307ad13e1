"""The connection to one Space: per-loop HTTP sessions, credentials and the discovered endpoints.

Everything a request needs lives here: one aiohttp session per event loop (released when that
loop ends), the headers (the HF token only as ``X-HF-Authorization``, which the Space proxy
consumes, and only where it may go), the ZeroGPU token fetched from the Hub, and the app's
``/config``, read once — waiting for a sleeping Space when the Hub says it is starting, failing
at once when the Hub says it is paused or broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from .auth import Secret, is_hf_host, jwt_expiry, space_host_url
from .config import SpaceConfig, parse_config
from .errors import JanusError, SpaceUnavailableError
from .http import Reply, open_response, request
from .options import SpaceOptions
from .queue import QueueSession
from .retry import RetryPolicy
from .runtime import LoopBound

logger = logging.getLogger("janus_space")

__all__ = ["LoopState", "SpaceConnection"]

T = TypeVar("T")
COLD_START_POLL_SECONDS = 10.0
SPACE_TOKEN_HEADER = "X-HF-Authorization"
"""The header the Hugging Face Space proxy consumes and strips (the app never sees it)."""
_UNAVAILABLE_STAGES = {
    "PAUSED",
    "STOPPED",
    "RUNTIME_ERROR",
    "BUILD_ERROR",
    "CONFIG_ERROR",
    "NO_APP_FILE",
}
_warned_anonymous = False


@dataclass
class LoopState:
    """What one client holds in one event loop: its session, queue and call slots."""

    http: aiohttp.ClientSession
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queue: QueueSession | None = None
    slots: asyncio.Semaphore | None = None


class SpaceConnection:
    """One Space's sessions, headers and configuration, made lazily on the first request."""

    def __init__(self, options: SpaceOptions) -> None:
        self.options = options
        self.url = options.base_url or space_host_url(options.space)
        self.space = options.space
        self.public_space = options.base_url is None  # the Hub knows it: ZeroGPU, stage apply
        custom_ok = options.allow_token_to_custom_host
        self._token_to_space = is_hf_host(self.url) or custom_ok
        self._hub = options.hub_url
        self._token_to_hub = is_hf_host(self._hub) or custom_ok
        self._token_pending = options.hf_token is None and options.discover_token
        self._set_token(options.hf_token)
        self.retry = RetryPolicy(options.max_retries)
        self._loops: LoopBound[LoopState] = LoopBound(self._new_state, _close_state)
        self.config: SpaceConfig | None = None
        self.zerogpu: tuple[Secret, float] | None = None
        self.closed = False

    @property
    def connect_timeout(self) -> float:
        """Seconds to open a connection."""
        return self.options.timeouts.connect

    @property
    def request_timeout(self) -> aiohttp.ClientTimeout:
        """The bound on one ordinary request (config, upload, download)."""
        return aiohttp.ClientTimeout(total=self.connect_timeout * 2)

    # -- per-loop state ---------------------------------------------------------------------

    def _new_state(self) -> LoopState:
        # Queue traffic (joins + streams) stays within max_connections (the queue limits its
        # joins); two more let a generation's five downloads run at once.
        connector = aiohttp.TCPConnector(limit_per_host=self.options.max_connections + 2)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        http = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            proxy=self.options.proxy,
            trust_env=self.options.trust_env,
        )
        return LoopState(http=http)

    def state(self) -> LoopState:
        """This event loop's state, made on first use in it; refuses a closed client."""
        if self.closed:
            raise JanusError("this JanusClient is closed")
        return self._loops.get()

    def session(self) -> aiohttp.ClientSession:
        """This event loop's aiohttp session."""
        return self.state().http

    @property
    def queue(self) -> QueueSession | None:
        """The running loop's queue session, if one was made (for tests and diagnostics)."""
        state = self._loops.peek()
        return state.queue if state is not None else None

    @property
    def open_loops(self) -> int:
        """How many event loops hold a session of this client now (for leak checks)."""
        return len(self._loops)

    async def aclose(self) -> None:
        """Cancel this loop's pending jobs and close its session; other loops' are scheduled."""
        self.closed = True
        await self._loops.release_current()
        self._loops.release_all()

    async def retrying(self, attempt: Callable[[], Awaitable[T]], step: str) -> T:
        """Run one request with the client's retry policy for ``step``."""
        return await self.retry.run(attempt, step)

    # -- requests ---------------------------------------------------------------------------

    async def space_request(self, method: str, path_or_url: str, *, what: str, **kw: Any) -> Reply:
        """One request to the Space's own host, with its headers; statuses map to errors."""
        headers = await self.headers()
        headers.update(kw.pop("headers", None) or {})
        return await request(
            self.session(),
            method,
            self._absolute(path_or_url),
            what=what,
            headers=headers,
            token_sent=SPACE_TOKEN_HEADER in headers,
            timeout=kw.pop("timeout", self.request_timeout),
            **kw,
        )

    @contextlib.asynccontextmanager
    async def space_response(
        self, method: str, path_or_url: str, *, what: str, **kw: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Like ``space_request``, yielding the response for reading as it arrives."""
        headers = await self.headers()
        headers.update(kw.pop("headers", None) or {})
        async with open_response(
            self.session(),
            method,
            self._absolute(path_or_url),
            what=what,
            headers=headers,
            token_sent=SPACE_TOKEN_HEADER in headers,
            timeout=kw.pop("timeout", self.request_timeout),
            **kw,
        ) as resp:
            yield resp

    async def hub_request(self, path: str, *, what: str, timeout: float | None = None) -> Reply:
        """A GET of the Hub's API (``Authorization`` goes to the Hub only)."""
        headers = self._hub_headers()
        return await request(
            self.session(),
            "GET",
            f"{self._hub}{path}",
            what=what,
            headers=headers,
            token_sent=bool(headers),
            timeout=aiohttp.ClientTimeout(total=timeout or self.connect_timeout),
        )

    def _absolute(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.url}{path_or_url}"

    # -- credentials ---------------------------------------------------------------------

    def _set_token(self, token: Secret | None) -> None:
        self.token = token
        self._use_zerogpu = token is not None and self.public_space and self._token_to_hub

    async def find_token(self) -> None:
        """Find the implicit HF token once, off the event loop (huggingface_hub imports slowly)."""
        if self._token_pending:
            from .hub import discover_token  # here: hub imports huggingface_hub lazily

            token = await asyncio.to_thread(discover_token)
            if self._token_pending:
                self._token_pending = False
                self._set_token(token)

    @property
    def token_state(self) -> str:
        """'set', 'none', or 'implicit' (not looked for yet); never the token itself."""
        if self._token_pending:
            return "implicit"
        return "set" if self.token is not None else "none"

    async def headers(self) -> dict[str, str]:
        """Headers for a request to the Space's own host."""
        headers = dict(self.options.extra_headers)
        if self.token is not None and self._token_to_space:
            headers[SPACE_TOKEN_HEADER] = f"Bearer {self.token.get()}"
        if self._use_zerogpu:
            token = await self._zerogpu_token()
            if token is not None:
                headers["x-zerogpu-token"] = token.get()
        return headers

    def _hub_headers(self) -> dict[str, str]:
        if self.token is None or not self._token_to_hub:
            return {}
        return {"Authorization": f"Bearer {self.token.get()}"}

    async def _zerogpu_token(self) -> Secret | None:
        """The Space token from the Hub's ``/jwt`` endpoint, cached until shortly before expiry."""
        if self.zerogpu is not None and self.zerogpu[1] - 30 > time.time():
            return self.zerogpu[0]
        token: str | None = None
        try:
            reply = await self.hub_request(f"/api/spaces/{self.space}/jwt", what="ZeroGPU token")
            token = str(json.loads(reply.body)["token"])
        except JanusError as exc:
            reason = str(exc)
        except (ValueError, KeyError, TypeError) as exc:
            reason = f"unreadable answer: {type(exc).__name__}"
        if token is None:
            logger.warning("no ZeroGPU token from the Hub (%s); going on without it", reason)
            self._use_zerogpu = False
            return None
        secret = Secret(token)
        self.zerogpu = (secret, jwt_expiry(token))
        return secret

    # -- discovery -----------------------------------------------------------------------

    async def connect(self) -> tuple[SpaceConfig, QueueSession]:
        """The app's configuration (read once per client) and this loop's queue session."""
        state = self.state()
        if self.config is not None and state.queue is not None:
            return self.config, state.queue
        async with state.lock:
            await self.find_token()
            if self.config is None:
                global _warned_anonymous
                if self.token is None and self.public_space and not _warned_anonymous:
                    _warned_anonymous = True
                    logger.warning(
                        "no HF token (HF_TOKEN or hf auth login) found: calls to the public "
                        "Space use the small anonymous ZeroGPU quota"
                    )
                self.config = await self._fetch_config()
            if state.queue is None:
                state.queue = QueueSession(
                    state.http,
                    self.url + self.config.api_prefix,
                    self.headers,
                    idle_timeout=self.options.timeouts.idle,
                    request_timeout=self.connect_timeout * 2,
                    max_connections=self.options.max_connections,
                )
        return self.config, state.queue

    async def api_url(self) -> str:
        """Where the app's API lives (``{host}/gradio_api`` on Gradio 5); connects if needed."""
        config, _ = await self.connect()
        return self.url + config.api_prefix

    async def _fetch_config(self) -> SpaceConfig:
        async def attempt() -> SpaceConfig:
            reply = await self.space_request("GET", "/config", what="config")
            try:
                return parse_config(json.loads(reply.body))
            except ValueError:
                raise SpaceUnavailableError(
                    "the Space's /config is not JSON: it is not serving its app"
                ) from None

        deadline = time.monotonic() + self.options.timeouts.cold_start
        while True:
            try:
                return await self.retrying(attempt, "config")
            except SpaceUnavailableError as exc:
                if not self.public_space:
                    raise
                stage = await self._space_stage()
                if stage is None or stage in _UNAVAILABLE_STAGES or time.monotonic() > deadline:
                    if stage:
                        raise SpaceUnavailableError(
                            f"the Space {self.space} is {stage}: it cannot answer",
                            stage=stage,
                            status=exc.status,
                        ) from None
                    raise
                logger.info("the Space %s is %s; waiting for it to start", self.space, stage)
                await asyncio.sleep(COLD_START_POLL_SECONDS)

    async def _space_stage(self) -> str | None:
        """The Space's ``runtime.stage`` from the Hub (RUNNING, SLEEPING, PAUSED, …), or None."""
        try:
            reply = await self.hub_request(f"/api/spaces/{self.space}", what="Space status")
            info = json.loads(reply.body)
            stage = info.get("runtime", {}).get("stage")
            return str(stage) if stage else None
        except (JanusError, ValueError, AttributeError):
            return None


async def _close_state(state: LoopState) -> None:
    """Cancel the loop's pending jobs, stop its stream readers and close its session."""
    try:
        if state.queue is not None:
            await state.queue.aclose()
    finally:
        await state.http.close()
