"""JanusClient: the async client for the Janus-Pro Space — understanding and image generation.

Creating a client touches no network. The first call opens one aiohttp session, reads the
app's ``/config`` once to find the two functions, and from then on every call is a join plus
events on the client's one multiplexed event stream (see ``queue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

import aiohttp

from .auth import Secret, is_hf_host, jwt_expiry, resolve_hf_token, space_host_url
from .config import SpaceConfig, parse_config
from .errors import (
    GPUUnavailableError,
    InvalidInputError,
    JanusError,
    ProtocolError,
    QuotaExceededError,
    ResultUnavailableError,
    SpaceUnavailableError,
    error_from_app_message,
)
from .events import (
    GeneratedImage,
    GenerationResult,
    JobCompleted,
    StatusEvent,
    UnderstandingResult,
)
from .media import (
    ImageData,
    ImageInput,
    check_image_bytes,
    is_url,
    load_image,
    placeholder_image,
    prepare_for_upload,
)
from .params import check_range, check_seed, check_text, check_unit
from .prompt import (
    DEFAULT_TOKEN_BUDGET,
    ExtraImages,
    Message,
    PreparedPrompt,
    estimate_tokens,
    flatten_conversation,
)
from .queue import Job, QueueSession
from .transport import Backoff, error_for_status, with_retries

logger = logging.getLogger("janus_space")

__all__ = ["DEFAULT_SPACE", "JanusClient"]

DEFAULT_SPACE = "deepseek-ai/Janus-Pro-7B"
TextOnly = Literal["placeholder", "error"]
ImageTransport = Literal["inline", "upload"]
_UNAVAILABLE_STAGES = {
    "PAUSED",
    "STOPPED",
    "RUNTIME_ERROR",
    "BUILD_ERROR",
    "CONFIG_ERROR",
    "NO_APP_FILE",
}
_warned_anonymous = False
R = TypeVar("R", UnderstandingResult, GenerationResult)


def _file_data(image: ImageData, path: str | None, url: str) -> dict[str, Any]:
    return {
        "path": path,
        "url": url,
        "orig_name": image.filename,
        "size": image.size,
        "mime_type": image.mime_type,
        "is_stream": False,
        "meta": {"_type": "gradio.FileData"},
    }


class JanusClient:
    """Async client of the Janus-Pro Space (or a self-hosted copy); use as ``async with``."""

    def __init__(
        self,
        space: str = DEFAULT_SPACE,
        *,
        base_url: str | None = None,
        hf_token: str | Secret | None = None,
        allow_token_to_custom_host: bool = False,
        timeout: float = 300.0,
        connect_timeout: float = 30.0,
        max_retries: int = 2,
        text_only: TextOnly = "placeholder",
        extra_images: ExtraImages = "latest",
        extra_headers: Mapping[str, str] | None = None,
        hub_url: str = "https://huggingface.co",
        max_download_bytes: int = 20_000_000,
        max_image_side: int | None = 384,
        max_concurrency: int | None = None,
        max_connections: int = 4,
        image_transport: ImageTransport = "inline",
        idle_timeout: float = 45.0,
        cold_start_timeout: float = 600.0,
    ) -> None:
        if base_url is not None:
            if not isinstance(base_url, str) or not base_url.lower().startswith(
                ("http://", "https://")
            ):
                raise InvalidInputError(f"base_url must be an http(s) URL, not {base_url!r}")
            self._url = base_url.rstrip("/")
        else:
            try:
                self._url = space_host_url(space)
            except ValueError as exc:
                raise InvalidInputError(str(exc)) from None
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("idle_timeout", idle_timeout),
            ("cold_start_timeout", cold_start_timeout),
        ):
            check_range(value, name, 0.001, 86_400)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInputError(
                f"max_retries must be a non-negative integer, not {max_retries!r}"
            )
        if text_only not in ("placeholder", "error"):
            raise InvalidInputError(
                f"text_only must be 'placeholder' or 'error', not {text_only!r}"
            )
        if extra_images not in ("latest", "error"):
            raise InvalidInputError(
                f"extra_images must be 'latest' or 'error', not {extra_images!r}"
            )
        if image_transport not in ("inline", "upload"):
            raise InvalidInputError(
                f"image_transport must be 'inline' or 'upload', not {image_transport!r}"
            )
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise InvalidInputError("max_concurrency must be a positive integer or None")
        if isinstance(max_concurrency, bool):
            raise InvalidInputError("max_concurrency must be a positive integer or None")
        if (
            isinstance(max_download_bytes, bool)
            or not isinstance(max_download_bytes, int)
            or max_download_bytes < 1
        ):
            raise InvalidInputError("max_download_bytes must be a positive integer")
        if max_image_side is not None and (
            isinstance(max_image_side, bool)
            or not isinstance(max_image_side, int)
            or max_image_side < 16
        ):
            raise InvalidInputError("max_image_side must be None or an integer of at least 16")
        if not isinstance(hub_url, str) or not hub_url.lower().startswith(("http://", "https://")):
            raise InvalidInputError(f"hub_url must be an http(s) URL, not {hub_url!r}")
        if extra_headers is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra_headers.items()
        ):
            raise InvalidInputError("extra_headers must map strings to strings")
        if hf_token is not None and not isinstance(hf_token, (str, Secret)):
            raise InvalidInputError("hf_token must be a string")
        if not isinstance(max_connections, int) or max_connections < 2:
            raise InvalidInputError("max_connections must be an integer of at least 2")
        self.space = space
        self.base_url = base_url
        self._token = resolve_hf_token(hf_token)
        self._token_allowed = is_hf_host(self._url) or allow_token_to_custom_host
        self._use_zerogpu = self._token is not None and base_url is None
        self._hub = hub_url.rstrip("/")
        self._hub_token_allowed = is_hf_host(self._hub) or allow_token_to_custom_host
        self._use_zerogpu = self._use_zerogpu and self._hub_token_allowed
        self._timeout = float(timeout)
        self._connect_timeout = float(connect_timeout)
        self._idle_timeout = float(idle_timeout)
        self._cold_start_timeout = float(cold_start_timeout)
        self._max_retries = max_retries
        self._text_only: TextOnly = text_only
        self._extra_images: ExtraImages = extra_images
        self._extra_headers = dict(extra_headers or {})
        self._max_download = int(max_download_bytes)
        self._max_side = max_image_side
        self._image_transport: ImageTransport = image_transport
        self._max_connections = max_connections
        if max_concurrency is None and base_url is None:
            max_concurrency = 4  # the public Space: few concurrent calls per token (quota)
        self._max_concurrency = max_concurrency
        self._backoff = Backoff()
        self._http: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._config: SpaceConfig | None = None
        self._queue: QueueSession | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._zerogpu: tuple[Secret, float] | None = None
        self._placeholder_path: str | None = None
        self._quota_until = 0.0
        self._quota_error: QuotaExceededError | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        target = f"base_url={self.base_url!r}" if self.base_url else f"space={self.space!r}"
        return f"JanusClient({target}, token={'set' if self._token else 'none'})"

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> JanusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran; a closed client refuses further calls."""
        return self._closed

    async def aclose(self) -> None:
        """Cancel pending jobs' streams and close the HTTP session (idempotent)."""
        self._closed = True
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.aclose()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise JanusError("this JanusClient is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._connect_lock = asyncio.Lock()
            if self._max_concurrency is not None:
                self._slots = asyncio.Semaphore(self._max_concurrency)
        elif self._loop is not loop:
            raise JanusError(
                "a JanusClient belongs to the event loop it first ran in; use one client per "
                "loop (janus_space.ClientPerLoop does that)"
            )
        if self._http is None:
            # Queue traffic (joins + the one stream) stays within max_connections (the queue
            # session limits its joins); two more let a generation's five downloads run at once.
            connector = aiohttp.TCPConnector(limit_per_host=self._max_connections + 2)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    # -- connection: config, headers, tokens ---------------------------------------------

    async def _headers(self) -> dict[str, str]:
        headers = dict(self._extra_headers)
        if self._token is not None and self._token_allowed:
            headers["Authorization"] = f"Bearer {self._token.get()}"
        if self._use_zerogpu:
            token = await self._zerogpu_token()
            if token is not None:
                headers["x-zerogpu-token"] = token.get()
        return headers

    async def _zerogpu_token(self) -> Secret | None:
        """The Space token from the Hub's ``/jwt`` endpoint, cached until shortly before expiry."""
        if self._zerogpu is not None and self._zerogpu[1] - 30 > time.time():
            return self._zerogpu[0]
        assert self._token is not None
        url = f"{self._hub}/api/spaces/{self.space}/jwt"
        try:
            async with self._session().get(
                url,
                headers={"Authorization": f"Bearer {self._token.get()}"},
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout),
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    logger.warning(
                        "could not get a ZeroGPU token from the Hub (HTTP %d)", resp.status
                    )
                    self._use_zerogpu = False
                    return None
            token = json.loads(body)["token"]
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
            logger.warning("could not get a ZeroGPU token from the Hub (%s)", type(exc).__name__)
            self._use_zerogpu = False
            return None
        secret = Secret(str(token))
        self._zerogpu = (secret, jwt_expiry(str(token)))
        return secret

    async def _connect(self) -> tuple[SpaceConfig, QueueSession]:
        http = self._session()
        if self._config is not None and self._queue is not None:
            return self._config, self._queue
        assert self._connect_lock is not None
        async with self._connect_lock:
            if self._config is None:
                global _warned_anonymous
                if self._token is None and self.base_url is None and not _warned_anonymous:
                    _warned_anonymous = True
                    logger.warning(
                        "no HF token (HF_TOKEN) set: calls to the public Space use the small "
                        "anonymous ZeroGPU quota"
                    )
                self._config = await self._fetch_config(http)
            if self._queue is None:
                self._queue = QueueSession(
                    http,
                    self._url + self._config.api_prefix,
                    self._headers,
                    idle_timeout=self._idle_timeout,
                    request_timeout=self._connect_timeout * 2,
                    max_joins=self._max_connections - 1,
                )
        assert self._queue is not None
        return self._config, self._queue

    async def _fetch_config(self, http: aiohttp.ClientSession) -> SpaceConfig:
        async def attempt() -> SpaceConfig:
            async with http.get(
                f"{self._url}/config",
                headers=await self._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout * 2),
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
                return await with_retries(
                    attempt, what="config", max_retries=self._max_retries, backoff=self._backoff
                )
            except SpaceUnavailableError as exc:
                if self.base_url is not None:
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
                await asyncio.sleep(10)

    async def _space_stage(self, http: aiohttp.ClientSession) -> str | None:
        """The Space's ``runtime.stage`` from the Hub (RUNNING, SLEEPING, PAUSED, …), or None."""
        headers = (
            {"Authorization": f"Bearer {self._token.get()}"}
            if self._token and self._hub_token_allowed
            else {}
        )
        try:
            async with http.get(
                f"{self._hub}/api/spaces/{self.space}",
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout),
            ) as resp:
                if resp.status != 200:
                    return None
                info = json.loads(await resp.read())
            stage = info.get("runtime", {}).get("stage")
            return str(stage) if stage else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError):
            return None

    # -- images --------------------------------------------------------------------------

    async def _resolve_image(self, source: ImageInput | None) -> ImageData:
        """Any accepted image form (or None, per ``text_only``) → checked, downscaled image."""
        if source is None:
            if self._text_only == "error":
                raise InvalidInputError(
                    "the Space's understanding function needs an image and text_only='error'"
                )
            return placeholder_image()
        if isinstance(source, str) and is_url(source.strip()):
            image = await self._download_image(source.strip())
        else:
            image = load_image(source)
        if self._max_side is None and image.mime_type in ("image/png", "image/jpeg"):
            return image
        return await asyncio.to_thread(prepare_for_upload, image, self._max_side)

    async def _download_image(self, url: str) -> ImageData:
        """Fetch a user's image URL (no credentials sent), refusing more than the size cap."""
        http = self._session()
        try:
            async with http.get(
                url, timeout=aiohttp.ClientTimeout(total=self._connect_timeout * 2)
            ) as resp:
                if resp.status != 200:
                    raise InvalidInputError(f"image URL answered HTTP {resp.status}: {url[:200]}")
                if (resp.content_length or 0) > self._max_download:
                    raise InvalidInputError(
                        f"image at {url[:200]} is {resp.content_length:,} bytes; the limit is "
                        f"{self._max_download:,}"
                    )
                data = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    data += chunk
                    if len(data) > self._max_download:
                        raise InvalidInputError(
                            f"image at {url[:200]} is over the {self._max_download:,}-byte limit"
                        )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise InvalidInputError(
                f"could not fetch the image URL {url[:200]}: {type(exc).__name__}"
            ) from None
        name = url.rsplit("/", 1)[-1].split("?", 1)[0] or "image"
        return check_image_bytes(bytes(data), name=name, what=f"image at {url[:200]}")

    async def _upload(self, image: ImageData) -> str:
        """POST the image to ``/upload``; returns the server path (one request, retried safely)."""
        config, _ = await self._connect()
        digest = hashlib.sha256(image.data).hexdigest()
        url = f"{self._url}{config.api_prefix}/upload"

        async def attempt() -> str:
            writer = aiohttp.MultipartWriter("form-data", boundary=f"janus-{digest[:32]}")
            part = writer.append(image.data, {"Content-Type": image.mime_type})
            part.set_content_disposition("form-data", name="files", filename=image.filename)
            async with self._session().post(
                url,
                params={"upload_id": digest[:12]},
                data=writer,
                headers=await self._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout * 2),
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise error_for_status(resp.status, resp.headers, body, "upload")
            try:
                paths = json.loads(body)
                return str(paths[0])
            except (ValueError, IndexError, KeyError, TypeError):
                raise ProtocolError("upload: the Space's answer lists no file path") from None

        return await with_retries(
            attempt, what="upload", max_retries=self._max_retries, backoff=self._backoff
        )

    async def _image_value(self, image: ImageData) -> dict[str, Any]:
        """The image input of a join: inline as a data URL, or uploaded first."""
        if self._image_transport == "inline":
            return _file_data(image, None, image.to_data_uri())
        config, _ = await self._connect()
        if image is placeholder_image():
            if self._placeholder_path is None:
                self._placeholder_path = await self._upload(image)
            path = self._placeholder_path
        else:
            path = await self._upload(image)
        return _file_data(image, path, f"{self._url}{config.api_prefix}/file={path}")

    # -- jobs ----------------------------------------------------------------------------

    def _check_quota(self) -> None:
        remaining = self._quota_until - time.monotonic()
        if remaining > 0 and self._quota_error is not None:
            raise QuotaExceededError(
                f"{self._quota_error} (this client fails fast until the retry time passes)",
                retry_after=remaining,
                requested=self._quota_error.requested,
                left=self._quota_error.left,
            )

    async def _join(
        self, queue: QueueSession, fn_index: int, trigger: int | None, data: list[Any]
    ) -> Job:
        def retry_join(error: JanusError) -> bool:
            if isinstance(error, SpaceUnavailableError):
                return error.status in (502, 503, 504)
            if isinstance(error, ProtocolError) and error.status and 400 <= error.status < 500:
                return False  # the same request would be refused again
            return error.retryable

        return await with_retries(
            lambda: queue.join(fn_index, trigger, data),
            what="join",
            max_retries=self._max_retries,
            backoff=self._backoff,
            retry_if=retry_join,
        )

    async def _run(
        self, api_name: str, build: Any, deadline: float
    ) -> AsyncGenerator[StatusEvent | JobCompleted, None]:
        """Join one job (retrying GPU-unavailable failures) and yield its events, then its end."""
        self._check_quota()
        config, queue = await self._connect()
        endpoint = config.understand if api_name == config.understand.api_name else config.generate
        attempt = 0
        while True:
            data = await build()
            join = asyncio.ensure_future(
                self._join(queue, endpoint.fn_index, endpoint.trigger_id, data)
            )
            try:
                job = await asyncio.shield(join)
            except asyncio.CancelledError:
                join.add_done_callback(lambda done: self._cancel_late_join(queue, done))
                raise
            except ProtocolError as exc:
                if exc.status != 413 or self._image_transport != "inline":
                    raise
                logger.info("the Space refused an inline image (HTTP 413); uploading instead")
                self._image_transport = "upload"
                continue
            completed: JobCompleted | None = None
            try:
                async for event in queue.events(job, deadline=deadline):
                    if isinstance(event, JobCompleted):
                        completed = event
                        break
                    yield event  # type: ignore[misc]
            finally:
                if completed is None:
                    await asyncio.shield(queue.cancel(job))
            assert completed is not None
            if completed.success:
                yield completed
                return
            output = completed.output
            title = output.get("title")
            error = error_from_app_message(
                output.get("error"), title=str(title) if title else None, fn=api_name
            )
            if isinstance(error, QuotaExceededError):
                if error.retry_after:
                    self._quota_until = time.monotonic() + error.retry_after
                    self._quota_error = error
                raise error
            if isinstance(error, GPUUnavailableError) and attempt < self._max_retries:
                delay = self._backoff.delay(attempt) or 1.0
                logger.info(
                    "%s: %s; retry %d/%d in %.1fs",
                    api_name,
                    error,
                    attempt + 1,
                    self._max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                attempt += 1
                continue
            raise error

    def _cancel_late_join(self, queue: QueueSession, join: asyncio.Future[Job]) -> None:
        """The caller left while its join was in flight: cancel the job the join queued."""
        if join.cancelled() or join.exception() is not None:
            return
        task = asyncio.ensure_future(queue.cancel(join.result()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self._session()
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield

    # -- understanding -------------------------------------------------------------------

    async def stream_understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = 42,
        top_p: float = 0.95,
        temperature: float = 0.1,
        _prompt: PreparedPrompt | None = None,
    ) -> AsyncGenerator[StatusEvent | UnderstandingResult, None]:
        """Ask about an image; yields status events, then the ``UnderstandingResult``."""
        check_text(question, "question")
        if _prompt is None and estimate_tokens(question) > DEFAULT_TOKEN_BUDGET:
            raise InvalidInputError(
                f"the question needs about {estimate_tokens(question)} tokens, more than the "
                f"{DEFAULT_TOKEN_BUDGET} Janus-Pro has room for"
            )
        seed = check_seed(seed)
        top_p = check_unit(top_p, "top_p")
        temperature = check_unit(temperature, "temperature")
        picture = await self._resolve_image(image)
        loop = asyncio.get_running_loop()

        async def build() -> list[Any]:
            return [await self._image_value(picture), question, seed, top_p, temperature]

        async with self._slot():
            deadline = loop.time() + self._timeout
            events = self._run("multimodal_understanding", build, deadline)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, JobCompleted):
                        data = event.output.get("data")
                        if not isinstance(data, list) or not data or not isinstance(data[0], str):
                            raise ProtocolError(
                                "the Space's answer holds no text (was the job cancelled?)"
                            )
                        yield UnderstandingResult(
                            text=data[0],
                            seed=seed,
                            top_p=top_p,
                            temperature=temperature,
                            duration=_duration(event.output),
                            prompt=_prompt,
                        )
                    else:
                        yield event

    async def understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = 42,
        top_p: float = 0.95,
        temperature: float = 0.1,
    ) -> UnderstandingResult:
        """Ask one question about one image (or none: see ``text_only``) and return the answer."""
        return await _last(
            self.stream_understand(
                question, image, seed=seed, top_p=top_p, temperature=temperature
            ),
            UnderstandingResult,
        )

    def prepare_conversation(self, messages: Sequence[Message]) -> PreparedPrompt:
        """Flatten a conversation with this client's image policy (no network)."""
        return flatten_conversation(messages, extra_images=self._extra_images)

    async def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = 42,
        top_p: float = 0.95,
        temperature: float = 0.1,
    ) -> AsyncGenerator[StatusEvent | UnderstandingResult, None]:
        """Flatten a conversation to one question and image, streamed like ``stream_understand``."""
        prompt = self.prepare_conversation(messages)
        events = self.stream_understand(
            prompt.question,
            prompt.image,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            _prompt=prompt,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = 42,
        top_p: float = 0.95,
        temperature: float = 0.1,
    ) -> UnderstandingResult:
        """Answer the last user message of a conversation (history flattened into the question)."""
        return await _last(
            self.stream_chat(messages, seed=seed, top_p=top_p, temperature=temperature),
            UnderstandingResult,
        )

    # -- generation ----------------------------------------------------------------------

    async def stream_generate(
        self,
        prompt: str,
        *,
        seed: int = 12345,
        guidance: float = 5.0,
        temperature: float = 1.0,
    ) -> AsyncGenerator[StatusEvent | GenerationResult, None]:
        """Generate images from a prompt; yields status events, then the ``GenerationResult``."""
        check_text(prompt, "prompt")
        seed = check_seed(seed)
        guidance = check_range(guidance, "guidance", 1.0, 10.0)
        temperature = check_unit(temperature, "temperature")
        loop = asyncio.get_running_loop()

        async def build() -> list[Any]:
            return [prompt, seed, guidance, temperature]

        async with self._slot():
            deadline = loop.time() + self._timeout
            events = self._run("generate_image", build, deadline)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, JobCompleted):
                        images = await self._download_gallery(event.output)
                        yield GenerationResult(
                            images=images,
                            seed=seed,
                            guidance=guidance,
                            temperature=temperature,
                            duration=_duration(event.output),
                        )
                    else:
                        yield event

    async def generate(
        self,
        prompt: str,
        *,
        seed: int = 12345,
        guidance: float = 5.0,
        temperature: float = 1.0,
    ) -> GenerationResult:
        """Generate images (the Space draws five) and download them."""
        return await _last(
            self.stream_generate(prompt, seed=seed, guidance=guidance, temperature=temperature),
            GenerationResult,
        )

    async def _download_gallery(self, output: Mapping[str, Any]) -> tuple[GeneratedImage, ...]:
        data = output.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], list):
            raise ProtocolError("the Space's generation answer holds no gallery")
        config, _ = await self._connect()
        urls = []
        for item in data[0]:
            file = (
                item.get("image")
                if isinstance(item, Mapping)
                else (item[0] if isinstance(item, list) and item else None)
            )
            if not isinstance(file, Mapping) or not isinstance(file.get("path"), str):
                raise ProtocolError("a gallery item of the Space's answer has no file path")
            urls.append(f"{self._url}{config.api_prefix}/file={file['path']}")
        return tuple(await asyncio.gather(*(self._download_result(u) for u in urls)))

    async def _download_result(self, url: str) -> GeneratedImage:
        async def attempt() -> GeneratedImage:
            async with self._session().get(
                url,
                headers=await self._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._connect_timeout * 2),
            ) as resp:
                if resp.status in (403, 404):
                    raise ResultUnavailableError(
                        f"the Space no longer serves a generated image (HTTP {resp.status})"
                    )
                if resp.status != 200:
                    raise error_for_status(resp.status, resp.headers, await resp.read(), "download")
                data = await resp.content.read(self._max_download + 1)
                if len(data) > self._max_download:
                    raise ProtocolError("a generated image is larger than max_download_bytes")
            try:
                image = check_image_bytes(data, what="generated image")
            except InvalidInputError as exc:
                raise ProtocolError(f"the Space served a broken image: {exc}") from None
            return GeneratedImage(data=image.data, mime_type=image.mime_type, url=url)

        return await with_retries(
            attempt, what="download", max_retries=self._max_retries, backoff=self._backoff
        )


def _duration(output: Mapping[str, Any]) -> float | None:
    value = output.get("duration")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


async def _last(stream: AsyncGenerator[StatusEvent | R, None], kind: type[R]) -> R:
    """Drain a call's event stream and return its final result, closing the stream either way."""
    result: StatusEvent | R | None = None
    try:
        async for item in stream:
            result = item
    finally:
        await stream.aclose()
    if not isinstance(result, kind):
        raise ProtocolError("the call ended without a result")
    return result
