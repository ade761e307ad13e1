"""JanusClient: the async client for the Janus-Pro Space — understanding and image generation.

Creating a client touches no network. The first call opens one aiohttp session, reads the
app's ``/config`` once to find the two functions, and from then on every call is a join plus
events on the client's one multiplexed event stream (see ``queue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from .auth import Secret, is_hf_host, resolve_hf_token, space_host_url
from .backend import Capabilities, check_num_images, warn_fixed_answer_length
from .connection import SpaceConnection
from .errors import (
    GPUUnavailableError,
    InvalidInputError,
    JanusError,
    ProtocolError,
    QuotaExceededError,
    SpaceUnavailableError,
    error_from_app_message,
)
from .events import GenerationResult, JobCompleted, StatusEvent, UnderstandingResult
from .media import ImageData, ImageInput, is_url, load_image, placeholder_image, prepare_for_upload
from .options import DEFAULT_SPACE, GENERATION_DEFAULTS, UNDERSTANDING_DEFAULTS
from .params import check_range, check_seed, check_stop, check_text, check_unit
from .prompt import (
    ANSWER_TOKENS,
    CONTEXT_TOKENS,
    DEFAULT_TOKEN_BUDGET,
    ExtraImages,
    Message,
    PreparedPrompt,
    cut_at_stop,
    estimate_tokens,
    flatten_conversation,
)
from .queue import Job, QueueSession
from .transfer import download_gallery, fetch_image_url, file_data, upload_image

logger = logging.getLogger("janus_space")

__all__ = ["DEFAULT_SPACE", "SPACE_CAPABILITIES", "JanusClient"]

SPACE_CAPABILITIES = Capabilities(
    kind="space",
    images_per_call=1,
    native_history=False,
    token_streaming=False,
    max_new_tokens=ANSWER_TOKENS,
    max_new_tokens_settable=False,
    context_tokens=CONTEXT_TOKENS,
    prompt_token_budget=DEFAULT_TOKEN_BUDGET,
    images_per_generation=(GENERATION_DEFAULTS.num_images, GENERATION_DEFAULTS.num_images),
)
"""What the Janus-Pro Space honours: one image, a flattened history, a fixed 512-token answer."""
TextOnly = Literal["placeholder", "error"]
ImageTransport = Literal["inline", "upload"]
R = TypeVar("R", UnderstandingResult, GenerationResult)


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
            url = base_url.rstrip("/")
        else:
            try:
                url = space_host_url(space)
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
        token = resolve_hf_token(hf_token)
        hub = hub_url.rstrip("/")
        self._connection = SpaceConnection(
            url,
            space=space,
            public_space=base_url is None,
            token=token,
            token_to_space=is_hf_host(url) or allow_token_to_custom_host,
            hub_url=hub,
            token_to_hub=is_hf_host(hub) or allow_token_to_custom_host,
            extra_headers=extra_headers or {},
            connect_timeout=float(connect_timeout),
            idle_timeout=float(idle_timeout),
            cold_start_timeout=float(cold_start_timeout),
            max_retries=max_retries,
            max_connections=max_connections,
        )
        self._timeout = float(timeout)
        self._max_retries = max_retries
        self._text_only: TextOnly = text_only
        self._extra_images: ExtraImages = extra_images
        self._max_download = int(max_download_bytes)
        self._max_side = max_image_side
        self._image_transport: ImageTransport = image_transport
        if max_concurrency is None and base_url is None:
            max_concurrency = 4  # the public Space: few concurrent calls per token (quota)
        self._max_concurrency = max_concurrency
        self._slots: asyncio.Semaphore | None = None
        self._placeholder_path: str | None = None
        self._quota_until = 0.0
        self._quota_error: QuotaExceededError | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def capabilities(self) -> Capabilities:
        """What the Space honours (the same for every copy of it)."""
        return SPACE_CAPABILITIES

    @property
    def endpoint(self) -> str:
        """How results name this client's Space: its base URL, else its Space id."""
        return self.base_url or self.space

    def __repr__(self) -> str:
        target = f"base_url={self.base_url!r}" if self.base_url else f"space={self.space!r}"
        return f"JanusClient({target}, token={'set' if self._connection.token else 'none'})"

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> JanusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran; a closed client refuses further calls."""
        return self._connection.closed

    async def aclose(self) -> None:
        """Cancel pending jobs on the Space and close the HTTP session (idempotent)."""
        await self._connection.aclose()

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
            image = await fetch_image_url(self._connection, source.strip(), self._max_download)
        else:
            image = load_image(source)
        if self._max_side is None and image.mime_type in ("image/png", "image/jpeg"):
            return image
        return await asyncio.to_thread(prepare_for_upload, image, self._max_side)

    async def _image_value(self, image: ImageData) -> dict[str, Any]:
        """The image input of a join: inline as a data URL, or uploaded first."""
        if self._image_transport == "inline":
            return file_data(image, None, image.to_data_uri())
        if image is placeholder_image():  # uploaded once per client, then reused
            if self._placeholder_path is None:
                self._placeholder_path = await upload_image(self._connection, image)
            path = self._placeholder_path
        else:
            path = await upload_image(self._connection, image)
        return file_data(image, path, f"{await self._connection.api_url()}/file={path}")

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

        return await self._connection.retrying(
            lambda: queue.join(fn_index, trigger, data), "join", retry_if=retry_join
        )

    async def _run(
        self, api_name: str, build: Callable[[], Awaitable[list[Any]]], deadline: float
    ) -> AsyncGenerator[StatusEvent | JobCompleted, None]:
        """Join one job (retrying GPU-unavailable failures) and yield its events, then its end."""
        self._check_quota()
        config, queue = await self._connection.connect()
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
                delay = self._connection.backoff.delay(attempt) or 1.0
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
        """Hold one of ``max_concurrency`` places for a call (no limit when it is None)."""
        self._connection.session()  # binds the loop; refuses a closed client
        if self._max_concurrency is None:
            yield
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_concurrency)
        async with self._slots:
            yield

    async def _job_stream(
        self,
        api_name: str,
        build: Callable[[], Awaitable[list[Any]]],
        finish: Callable[[JobCompleted], Awaitable[R]],
    ) -> AsyncGenerator[StatusEvent | R, None]:
        """One call within its concurrency slot and deadline: status events, then its result."""
        async with self._slot():
            deadline = asyncio.get_running_loop().time() + self._timeout
            events = self._run(api_name, build, deadline)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield await finish(event) if isinstance(event, JobCompleted) else event

    # -- understanding -------------------------------------------------------------------

    async def stream_understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        _prompt: PreparedPrompt | None = None,
    ) -> AsyncGenerator[StatusEvent | UnderstandingResult, None]:
        """Ask about an image; yields status events, then the ``UnderstandingResult``.

        The Space answers with up to 512 new tokens whatever ``max_new_tokens`` says (a
        ``JanusWarning`` says so); ``stop`` cuts the answer after it arrives.
        """
        check_text(question, "question")
        stops = check_stop(stop)
        warn_fixed_answer_length(max_new_tokens, SPACE_CAPABILITIES)
        if _prompt is None and estimate_tokens(question) > DEFAULT_TOKEN_BUDGET:
            raise InvalidInputError(
                f"the question needs about {estimate_tokens(question)} tokens, more than the "
                f"{DEFAULT_TOKEN_BUDGET} Janus-Pro has room for"
            )
        seed = check_seed(seed)
        top_p = check_unit(top_p, "top_p")
        temperature = check_unit(temperature, "temperature")
        picture = await self._resolve_image(image)

        async def build() -> list[Any]:
            return [await self._image_value(picture), question, seed, top_p, temperature]

        async def finish(done: JobCompleted) -> UnderstandingResult:
            data = done.output.get("data")
            if not isinstance(data, list) or not data or not isinstance(data[0], str):
                raise ProtocolError("the Space's answer holds no text (was the job cancelled?)")
            return UnderstandingResult(
                text=cut_at_stop(data[0], stops),
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                duration=_duration(done.output),
                prompt=_prompt,
                endpoint=self.endpoint,
            )

        events = self._job_stream("multimodal_understanding", build, finish)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """Ask one question about one image (or none: see ``text_only``) and return the answer."""
        return await _last(
            self.stream_understand(
                question,
                image,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
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
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncGenerator[StatusEvent | UnderstandingResult, None]:
        """Flatten a conversation to one question and image, streamed like ``stream_understand``."""
        prompt = self.prepare_conversation(messages)
        events = self.stream_understand(
            prompt.question,
            prompt.image,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=stop,
            _prompt=prompt,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """Answer the last user message of a conversation (history flattened into the question)."""
        return await _last(
            self.stream_chat(
                messages,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
            ),
            UnderstandingResult,
        )

    # -- generation ----------------------------------------------------------------------

    async def stream_generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> AsyncGenerator[StatusEvent | GenerationResult, None]:
        """Generate images from a prompt; yields status events, then the ``GenerationResult``.

        The Space always draws five: ``num_images`` must be None or 5.
        """
        check_text(prompt, "prompt")
        check_num_images(num_images, SPACE_CAPABILITIES)
        seed = check_seed(seed)
        guidance = check_range(guidance, "guidance", 1.0, 10.0)
        temperature = check_unit(temperature, "temperature")

        async def build() -> list[Any]:
            return [prompt, seed, guidance, temperature]

        async def finish(done: JobCompleted) -> GenerationResult:
            images = await download_gallery(self._connection, done.output, self._max_download)
            return GenerationResult(
                images=images,
                seed=seed,
                guidance=guidance,
                temperature=temperature,
                duration=_duration(done.output),
                endpoint=self.endpoint,
            )

        events = self._job_stream("generate_image", build, finish)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> GenerationResult:
        """Generate images (the Space draws five) and download them."""
        return await _last(
            self.stream_generate(
                prompt, seed=seed, guidance=guidance, temperature=temperature, num_images=num_images
            ),
            GenerationResult,
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
