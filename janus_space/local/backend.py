"""LocalJanus: Janus-Pro on this machine through transformers, behind the same seam as the Space.

It implements ``janus_space.JanusBackend``: many images per call, the real conversation with
system messages through the model's chat template, ``max_new_tokens`` and stop sequences
honoured, token-by-token ``TextDelta`` events, and image generation of 1 to 16 images. Calls
queue for one worker thread (one generation at a time on a GPU) and report ``Queued``,
``Started`` and ``Progress`` like the Space. Nothing here is bound to an event loop: each call
brings its own inbox, so one backend serves any loop, or several at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from ..backend import Capabilities, check_num_images
from ..errors import JanusError
from ..events import GenerationResult, StatusEvent, TextDelta, UnderstandingResult
from ..media import ImageInput
from ..options import GENERATION_DEFAULTS, GUIDANCE_RANGE, UNDERSTANDING_DEFAULTS
from ..params import (
    check_max_new_tokens,
    check_range,
    check_seed,
    check_stop,
    check_text,
    check_unit,
)
from ..prompt import TEMPLATE_TOKENS, Message
from .chat import to_turns
from .fetch import fetch_urls
from .worker import Finished, Job, Mailbox, Worker

__all__ = ["DEFAULT_LOCAL_MODEL", "MAX_IMAGES_PER_GENERATION", "LocalJanus"]

DEFAULT_LOCAL_MODEL = "deepseek-community/Janus-Pro-7B"
MAX_IMAGES_PER_GENERATION = 16
DEFAULT_MAX_NEW_TOKENS = 512  # DeepSeek's demo and the Space answer with up to 512 tokens
R = TypeVar("R", UnderstandingResult, GenerationResult)
_Event = StatusEvent | TextDelta
_numbers = itertools.count(1)


class LocalJanus:
    """Janus-Pro loaded with transformers on a GPU (or the CPU); use as ``async with``.

    Creating it imports torch and transformers and loads the weights (blocking: from async
    code use ``await LocalJanus.aload(...)``). ``model`` is a Hugging Face id in the cache
    (``download=True`` fetches it) or a folder. ``device``/``dtype`` default to CUDA with
    bfloat16, then Apple ``mps`` with float16, then the CPU with float32 (with a
    ``SlowDeviceWarning``); ``device_map="auto"`` spreads the model over several GPUs (needs
    accelerate); ``cache_dir`` overrides the Hugging Face cache folder. ``max_new_tokens`` is
    the answer length when a call gives none (a call may ask for more, up to the context);
    ``upscale`` doubles the side of generated images, like the Space's 768x768 (Lanczos here;
    the Space uses Real-ESRGAN).
    """

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        *,
        device: Any = None,
        dtype: Any = None,
        device_map: str | dict[str, Any] | None = None,
        download: bool = False,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        context_tokens: int | None = None,
        upscale: bool = False,
    ) -> None:
        check_text(model, "model")
        check_max_new_tokens(max_new_tokens, 1_000_000)
        if context_tokens is not None:
            check_max_new_tokens(context_tokens, 10_000_000)
        from .loading import choose_placement, import_stack, load, warn_if_slow

        torch, _ = import_stack()
        placement = choose_placement(torch, device, dtype, device_map)
        self._loaded: Any = load(
            model,
            placement,
            download=bool(download),
            revision=revision,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            context_tokens=context_tokens,
        )
        warn_if_slow(placement)
        self.model = model
        """The checkpoint: a Hugging Face model id or a folder."""
        self._default_max_new_tokens = max_new_tokens
        self._upscale = bool(upscale)
        self._closed = False
        self._worker = Worker(f"janus-local-{next(_numbers)}")
        # A backend dropped without aclose still ends its thread.
        self._finalizer = weakref.finalize(self, self._worker.stop, _nothing)
        window = self._loaded.context_tokens
        self._capabilities = Capabilities(
            kind="local",
            images_per_call=None,
            native_history=True,
            token_streaming=True,
            max_new_tokens=max_new_tokens,  # a call may ask for more, up to the context
            max_new_tokens_settable=True,
            context_tokens=window,
            prompt_token_budget=max(
                0, window - max_new_tokens - self._loaded.num_image_tokens - TEMPLATE_TOKENS
            ),
            images_per_generation=(1, MAX_IMAGES_PER_GENERATION),
        )

    @classmethod
    async def aload(cls, model: str = DEFAULT_LOCAL_MODEL, **settings: Any) -> LocalJanus:
        """Create a backend without blocking the event loop while the weights load."""
        return await asyncio.to_thread(cls, model, **settings)

    # -- what it is ----------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """Many images per call, real turns, token streaming, a settable answer length."""
        return self._capabilities

    @property
    def endpoint(self) -> str:
        """How results name this backend: ``local:<model>``."""
        return f"local:{self.model}"

    @property
    def transformers_model(self) -> Any:
        """The loaded ``JanusForConditionalGeneration`` (None once closed)."""
        return None if self._loaded is None else self._loaded.model

    @property
    def processor(self) -> Any:
        """The loaded ``JanusProcessor`` (None once closed)."""
        return None if self._loaded is None else self._loaded.processor

    @property
    def device(self) -> Any:
        """The torch device the model (or its first part) is on."""
        return None if self._loaded is None else self._loaded.device

    @property
    def dtype(self) -> Any:
        """The torch dtype of the weights."""
        return None if self._loaded is None else self._loaded.dtype

    @property
    def default_max_new_tokens(self) -> int:
        """The answer length of a call that gives no ``max_new_tokens``."""
        return self._default_max_new_tokens

    def __repr__(self) -> str:
        return f"LocalJanus(model={self.model!r}, device={self.device!s}, dtype={self.dtype})"

    # -- lifetime ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``aclose`` (or ``close``) ran; a closed backend refuses calls."""
        return self._closed

    async def __aenter__(self) -> LocalJanus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Fail waiting calls, stop the running one at its next token, end the worker thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, exited)

        self._worker.stop(on_exit)
        await exited
        self._release()

    def close(self) -> None:
        """``aclose`` for sync code: blocks until the worker thread has ended."""
        if self._closed:
            return
        self._closed = True
        self._worker.stop(_nothing)
        self._release()

    def _release(self) -> None:
        self._worker.join()
        self._finalizer.detach()
        loaded, self._loaded = self._loaded, None
        if loaded is not None and getattr(loaded.device, "type", "") == "cuda":
            del loaded
            import torch

            torch.cuda.empty_cache()

    # -- calls ---------------------------------------------------------------------------

    def _check_open(self) -> Any:
        if self._closed or self._loaded is None:
            raise JanusError("this LocalJanus is closed")
        return self._loaded

    async def _run(
        self, prepare: Callable[[Any], Awaitable[Callable[[Job], R]]]
    ) -> AsyncGenerator[_Event | R, None]:
        """Check the call (``prepare``), queue its work, yield what it posts, then its result.

        The one async generator of a call: every token's ``TextDelta`` passes through it alone.
        """
        work = await prepare(self._check_open())
        inbox = Mailbox(asyncio.get_running_loop())
        job = Job(work, inbox.put)
        self._worker.submit(job)
        finished = False
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, Finished):
                    finished = True
                    if item.error is not None:
                        raise _public(item.error)
                    yield item.result
                    return
                yield cast(_Event, item)
        finally:
            if not finished:
                job.cancel()
                if not self._worker.withdraw(job):
                    # It runs: wait for its next token, when it sees the cancel, so no
                    # generation outlives the call that asked for it.
                    while not isinstance(await inbox.get(), Finished):
                        pass

    def _answer(
        self,
        conversation: Callable[[], Sequence[Message]],
        seed: int,
        top_p: float,
        temperature: float,
        max_new_tokens: int | None,
        stop: Sequence[str],
    ) -> AsyncGenerator[_Event | UnderstandingResult, None]:
        async def prepare(loaded: Any) -> Callable[[Job], UnderstandingResult]:
            from .generation import AnswerRequest, answer

            prompt = to_turns(conversation())
            request = AnswerRequest(
                prompt=prompt,
                seed=check_seed(seed),
                top_p=check_unit(top_p, "top_p"),
                temperature=check_unit(temperature, "temperature"),
                max_new_tokens=check_max_new_tokens(max_new_tokens, loaded.context_tokens),
                default_max_new_tokens=self._default_max_new_tokens,
                stops=check_stop(stop),
            )
            request = dataclasses.replace(request, prompt=await fetch_urls(prompt))
            return lambda job: answer(loaded, job, request)

        return self._run(prepare)

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncGenerator[_Event | UnderstandingResult, None]:
        """Answer the last user turn: ``Queued``, ``Started``, ``TextDelta``s…, the result.

        Every turn, system message and image reaches the model through its chat template
        (image URLs are downloaded first). Temperature 0 (or top_p 0) decodes greedily. Bad
        input raises ``InvalidInputError`` at the first iteration, before anything queues.
        """
        return self._answer(lambda: messages, seed, top_p, temperature, max_new_tokens, stop)

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
        """``stream_chat``'s result."""
        stream = self.stream_chat(
            messages,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=stop,
        )
        return await _last(stream, UnderstandingResult)

    def stream_understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncGenerator[_Event | UnderstandingResult, None]:
        """One question about one image, or about none (a text-only question works locally)."""

        def conversation() -> list[Message]:
            text = check_text(question, "question")
            return [Message("user", text, () if image is None else (image,))]

        return self._answer(conversation, seed, top_p, temperature, max_new_tokens, stop)

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
        """``stream_understand``'s result."""
        stream = self.stream_understand(
            question,
            image,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=stop,
        )
        return await _last(stream, UnderstandingResult)

    def stream_generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> AsyncGenerator[StatusEvent | GenerationResult, None]:
        """Draw 1 to 16 images (default 5): ``Queued``, ``Started``, ``Progress``…, the result.

        ``Progress`` counts image tokens (576 per image for Janus-Pro, all images at once);
        the images are PNG bytes at the model's size (Janus-Pro: 384x384; doubled with
        ``upscale``).
        """

        async def prepare(loaded: Any) -> Callable[[Job], GenerationResult]:
            from .generation import DrawRequest, draw

            request = DrawRequest(
                prompt=check_text(prompt, "prompt"),
                seed=check_seed(seed),
                guidance=check_range(guidance, "guidance", *GUIDANCE_RANGE),
                temperature=check_unit(temperature, "temperature"),
                num_images=check_num_images(num_images, self._capabilities)
                or GENERATION_DEFAULTS.num_images,
                upscale=self._upscale,
            )
            return lambda job: draw(loaded, job, request)

        # A drawing posts status events only (no TextDelta): the narrower type is the truth.
        return cast("AsyncGenerator[StatusEvent | GenerationResult, None]", self._run(prepare))

    async def generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> GenerationResult:
        """``stream_generate``'s result."""
        stream = self.stream_generate(
            prompt, seed=seed, guidance=guidance, temperature=temperature, num_images=num_images
        )
        return await _last(stream, GenerationResult)


def _nothing() -> None:
    """An exit callback for when nobody waits."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _public(error: BaseException) -> BaseException:
    """The error a caller sees: a generation stopped by ``aclose`` says so."""
    from .generation import Cancelled

    if isinstance(error, Cancelled):
        return JanusError("the LocalJanus was closed while this call ran")
    return error


async def _last(stream: AsyncGenerator[Any, None], kind: type[R]) -> R:
    """Drain a call's events and return its result, closing the stream either way."""
    result: Any = None
    async with contextlib.aclosing(stream):
        async for item in stream:
            result = item
    if not isinstance(result, kind):
        raise JanusError("the call ended without a result")
    return result
