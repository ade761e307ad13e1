"""JanusClient: the async client for the Janus-Pro Space — understanding and image generation.

Creating a client touches no network. The first call opens one aiohttp session, reads the
app's ``/config`` once to find the two functions, and from then on every call is a join plus
events on the client's one multiplexed event stream (see ``queue``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from .backend import Capabilities, check_num_images, warn_fixed_answer_length
from .connection import SpaceConnection
from .errors import (
    InvalidInputError,
    JanusError,
    PromptTooLongError,
    ProtocolError,
    QuotaExceededError,
    error_from_app_message,
)
from .events import GenerationResult, JobCompleted, StatusEvent, UnderstandingResult
from .media import ImageData, ImageInput, is_url, load_image, placeholder_image, prepare_for_upload
from .options import (
    DEFAULT_SPACE,
    GENERATION_DEFAULTS,
    UNDERSTANDING_DEFAULTS,
    ImageTransport,
    SpaceOptions,
)
from .params import check_range, check_seed, check_stop, check_text, check_unit
from .prompt import (
    ANSWER_TOKENS,
    CONTEXT_TOKENS,
    DEFAULT_TOKEN_BUDGET,
    Message,
    PreparedPrompt,
    cut_at_stop,
    estimate_tokens,
    flatten_conversation,
)
from .queue import Job, QueueSession
from .reuse import CacheSpec, CallReuse, call_key, resolve_cache
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
R = TypeVar("R", UnderstandingResult, GenerationResult)


class JanusClient:
    """Async client of the Janus-Pro Space (or a self-hosted copy); use as ``async with``."""

    def __init__(
        self,
        space: str = DEFAULT_SPACE,
        *,
        options: SpaceOptions | None = None,
        cache: CacheSpec = None,
        **settings: Any,
    ) -> None:
        """Keyword settings are ``SpaceOptions``' fields, with ``timeout``, ``connect_timeout``,
        ``idle_timeout`` and ``cold_start_timeout`` for its ``Timeouts`` and ``hf_token`` as a
        string; or pass a ready ``options``. Nothing here touches the network.

        ``base_url`` defaults to ``JANUS_BASE_URL`` when that is set; the token to
        Hugging Face's own discovery (``HF_TOKEN``, the ``hf auth login`` file).

        ``cache``: None (default), ``"memory"``, ``MemoryCache(...)`` or ``SQLiteCache(path)``
        keeps completed results, so a repeated seeded call spends no quota (see ``reuse``).
        """
        if options is None:
            options = SpaceOptions.of(space, **settings)
        elif settings:
            raise InvalidInputError("pass either options= or keyword settings, not both")
        if options.max_concurrency is None and options.base_url is None:
            # the public Space: few concurrent calls per token (quota)
            options = dataclasses.replace(options, max_concurrency=4)
        self.options = options
        self._connection = SpaceConnection(options)
        self._image_transport: ImageTransport = options.image_transport
        self._placeholder_path: str | None = None
        self._quota_until = 0.0
        self._quota_error: QuotaExceededError | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Identical calls in flight share one job; ``cache=`` also keeps completed results.
        self._reuse = CallReuse(resolve_cache(cache))

    @property
    def space(self) -> str:
        """The Space id (used for the Hub; the host is ``base_url`` when that is set)."""
        return self.options.space

    @property
    def base_url(self) -> str | None:
        """The URL of a self-hosted copy, or None for the Space's own host."""
        return self.options.base_url

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
        return f"JanusClient({target}, token={self._connection.token_state})"

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> JanusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran; a closed client refuses further calls."""
        return self._connection.closed

    async def connect(self) -> None:
        """Connect now (idempotent): find the token, read ``/config``, waking a sleeping Space.

        Calls connect by themselves; this is for warming up, or for a pool probing an endpoint.
        """
        await self._connection.connect()

    async def aclose(self) -> None:
        """Cancel pending jobs on the Space and close the HTTP session (idempotent)."""
        await self._connection.aclose()

    # -- images --------------------------------------------------------------------------

    async def _resolve_image(self, source: ImageInput | None) -> ImageData:
        """Any accepted image form (or None, per ``text_only``) → checked, downscaled image."""
        if source is None:
            if self.options.text_only == "error":
                raise InvalidInputError(
                    "the Space's understanding function needs an image and text_only='error'"
                )
            return placeholder_image()
        if isinstance(source, str) and is_url(source.strip()):
            image = await fetch_image_url(
                self._connection, source.strip(), self.options.max_download_bytes
            )
        else:
            image = load_image(source)
        return await asyncio.to_thread(prepare_for_upload, image, self.options.max_image_side)

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
        return await self._connection.retrying(lambda: queue.join(fn_index, trigger, data), "join")

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
                output.get("error"),
                title=str(title) if title else None,
                fn=api_name,
                image_sent=api_name == "multimodal_understanding",
            )
            if isinstance(error, QuotaExceededError):
                if error.retry_after:
                    self._quota_until = time.monotonic() + error.retry_after
                    self._quota_error = error
                raise error
            delay = self._connection.retry.delay(error, "job", attempt)
            if delay is not None:
                logger.info("%s: %s; retry %d in %.1fs", api_name, error, attempt + 1, delay)
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
        state = self._connection.state()  # binds the loop; refuses a closed client
        limit = self.options.max_concurrency
        if limit is None:
            yield
            return
        if state.slots is None:
            state.slots = asyncio.Semaphore(limit)
        async with state.slots:
            yield

    async def _job_stream(
        self,
        api_name: str,
        build: Callable[[], Awaitable[list[Any]]],
        finish: Callable[[JobCompleted], Awaitable[R]],
    ) -> AsyncGenerator[StatusEvent | R, None]:
        """One call within its concurrency slot and deadline: status events, then its result."""
        async with self._slot():
            deadline = asyncio.get_running_loop().time() + self.options.timeouts.call
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
            raise PromptTooLongError(
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
            return UnderstandingResult(  # shared and cached whole: stop and prompt are per call
                text=data[0],
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                duration=_duration(done.output),
                endpoint=self.endpoint,
            )

        if self.closed:
            raise JanusError("this JanusClient is closed")
        key = call_key(
            self.endpoint,
            "multimodal_understanding",
            image=picture,
            question=question,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
        )
        events = self._reuse.stream(
            key,
            lambda: self._job_stream("multimodal_understanding", build, finish),
            UnderstandingResult,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, UnderstandingResult):
                    event = dataclasses.replace(
                        event, text=cut_at_stop(event.text, stops), prompt=_prompt
                    )
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
        return flatten_conversation(messages, extra_images=self.options.extra_images)

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
        warn_fixed_answer_length(max_new_tokens, SPACE_CAPABILITIES)
        prompt = self.prepare_conversation(messages)
        events = self.stream_understand(
            prompt.question,
            prompt.image,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
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
            images = await download_gallery(
                self._connection, done.output, self.options.max_download_bytes
            )
            return GenerationResult(
                images=images,
                seed=seed,
                guidance=guidance,
                temperature=temperature,
                duration=_duration(done.output),
                endpoint=self.endpoint,
            )

        if self.closed:
            raise JanusError("this JanusClient is closed")
        key = call_key(
            self.endpoint,
            "generate_image",
            prompt=prompt,
            seed=seed,
            guidance=guidance,
            temperature=temperature,
        )
        events = self._reuse.stream(
            key, lambda: self._job_stream("generate_image", build, finish), GenerationResult
        )
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
