"""The connection to one Space: its HTTP session, credentials and discovered endpoints.

Everything a request needs lives here: the aiohttp session (bound to the event loop it was
made in), the headers (the HF token only where it may go, the ZeroGPU token fetched from the
Hub), and the app's ``/config``, read once — waiting for a sleeping Space when the Hub says it
is starting, failing at once when the Hub says it is paused or broken.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp

from .auth import Secret, jwt_expiry
from .config import SpaceConfig, parse_config
from .errors import JanusError, SpaceUnavailableError
from .queue import QueueSession
from .transport import Backoff, error_for_status, with_retries

logger = logging.getLogger("janus_space")

__all__ = ["SpaceConnection"]

T = TypeVar("T")
COLD_START_POLL_SECONDS = 10.0
_UNAVAILABLE_STAGES = {
    "PAUSED",
    "STOPPED",
    "RUNTIME_ERROR",
    "BUILD_ERROR",
    "CONFIG_ERROR",
    "NO_APP_FILE",
}
_warned_anonymous = False


class SpaceConnection:
    """One Space's session, headers and configuration, made lazily on the first request."""

    def __init__(
        self,
        url: str,
        *,
        space: str,
        public_space: bool,
        token: Secret | None,
        token_to_space: bool,
        hub_url: str,
        token_to_hub: bool,
        extra_headers: Mapping[str, str],
        connect_timeout: float,
        idle_timeout: float,
        cold_start_timeout: float,
        max_retries: int,
        max_connections: int,
    ) -> None:
        self.url = url
        self.space = space
        self.public_space = public_space  # the Hub knows it: ZeroGPU token and stage apply
        self.token = token
        self._token_to_space = token_to_space
        self._hub = hub_url
        self._token_to_hub = token_to_hub
        self._use_zerogpu = token is not None and public_space and token_to_hub
        self._extra_headers = dict(extra_headers)
        self.connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._cold_start_timeout = cold_start_timeout
        self.max_retries = max_retries
        self._max_connections = max_connections
        self.backoff = Backoff()
        self._http: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.config: SpaceConfig | None = None
        self.queue: QueueSession | None = None
        self.zerogpu: tuple[Secret, float] | None = None
        self.closed = False

    @property
    def request_timeout(self) -> aiohttp.ClientTimeout:
        """The bound on one ordinary request (config, upload, download)."""
        return aiohttp.ClientTimeout(total=self.connect_timeout * 2)

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use in the running loop (and only that loop)."""
        if self.closed:
            raise JanusError("this JanusClient is closed")
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
            self._lock = asyncio.Lock()
        elif self.loop is not loop:
            raise JanusError(
                "a JanusClient belongs to the event loop it first ran in; use one client per "
                "loop (janus_space.ClientPerLoop does that)"
            )
        if self._http is None:
            # Queue traffic (joins + the one stream) stays within max_connections (the queue
            # session limits its joins); two more let a generation's five downloads run at once.
            connector = aiohttp.TCPConnector(limit_per_host=self._max_connections + 2)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    async def aclose(self) -> None:
        """Cancel pending jobs, stop the stream reader and close the session (idempotent)."""
        self.closed = True
        queue, self.queue = self.queue, None
        if queue is not None:
            await queue.aclose()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        what: str,
        retry_if: Callable[[JanusError], bool] = lambda error: error.retryable,
    ) -> T:
        """Run one request with the client's bounded retries for the errors ``retry_if`` allows."""
        return await with_retries(
            attempt,
            what=what,
            max_retries=self.max_retries,
            backoff=self.backoff,
            retry_if=retry_if,
        )

    # -- credentials ---------------------------------------------------------------------

    async def headers(self) -> dict[str, str]:
        """Headers for a request to the Space's own host."""
        headers = dict(self._extra_headers)
        if self.token is not None and self._token_to_space:
            headers["Authorization"] = f"Bearer {self.token.get()}"
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
            async with self.session().get(
                f"{self._hub}/api/spaces/{self.space}/jwt",
                headers=self._hub_headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.connect_timeout),
            ) as resp:
                body = await resp.read()
                reason = f"HTTP {resp.status}"
            if resp.status == 200:
                token = str(json.loads(body)["token"])
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
            reason = type(exc).__name__
        if token is None:
            logger.warning("no ZeroGPU token from the Hub (%s); going on without it", reason)
            self._use_zerogpu = False
            return None
        secret = Secret(token)
        self.zerogpu = (secret, jwt_expiry(token))
        return secret

    # -- discovery -----------------------------------------------------------------------

    async def connect(self) -> tuple[SpaceConfig, QueueSession]:
        """The app's configuration and the queue session, made once per client."""
        http = self.session()
        if self.config is not None and self.queue is not None:
            return self.config, self.queue
        assert self._lock is not None
        async with self._lock:
            if self.config is None:
                global _warned_anonymous
                if self.token is None and self.public_space and not _warned_anonymous:
                    _warned_anonymous = True
                    logger.warning(
                        "no HF token (HF_TOKEN) set: calls to the public Space use the small "
                        "anonymous ZeroGPU quota"
                    )
                self.config = await self._fetch_config(http)
            if self.queue is None:
                self.queue = QueueSession(
                    http,
                    self.url + self.config.api_prefix,
                    self.headers,
                    idle_timeout=self._idle_timeout,
                    request_timeout=self.connect_timeout * 2,
                    max_joins=self._max_connections - 1,
                )
        return self.config, self.queue

    async def api_url(self) -> str:
        """Where the app's API lives (``{host}/gradio_api`` on Gradio 5); connects if needed."""
        config, _ = await self.connect()
        return self.url + config.api_prefix

    async def _fetch_config(self, http: aiohttp.ClientSession) -> SpaceConfig:
        async def attempt() -> SpaceConfig:
            async with http.get(
                f"{self.url}/config",
                headers=await self.headers(),
                allow_redirects=False,
                timeout=self.request_timeout,
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise error_for_status(resp.status, resp.headers, body, "config")
            try:
                return parse_config(json.loads(body))
            except ValueError:
                raise SpaceUnavailableError(
                    "the Space's /config is not JSON: it is not serving its app"
                ) from None

        deadline = time.monotonic() + self._cold_start_timeout
        while True:
            try:
                return await self.retrying(attempt, "config")
            except SpaceUnavailableError as exc:
                if not self.public_space:
                    raise
                stage = await self._space_stage(http)
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

    async def _space_stage(self, http: aiohttp.ClientSession) -> str | None:
        """The Space's ``runtime.stage`` from the Hub (RUNNING, SLEEPING, PAUSED, …), or None."""
        try:
            async with http.get(
                f"{self._hub}/api/spaces/{self.space}",
                headers=self._hub_headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.connect_timeout),
            ) as resp:
                if resp.status != 200:
                    return None
                info = json.loads(await resp.read())
            stage = info.get("runtime", {}).get("stage")
            return str(stage) if stage else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError):
            return None
