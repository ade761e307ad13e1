"""JanusPro: DeepSeek's Janus-Pro-7B Space as a LlamaIndex chat LLM that reads images.

A thin mapping onto ``janus_space``: messages and blocks are converted in ``_convert``, the
core's client does every request, and its status events become ``JanusStatusEvent``s on
LlamaIndex's instrumentation (and, when streaming, empty-delta chunks). Async methods run on
the caller's loop; sync ones run the same coroutines on a private loop thread, so they work
from scripts, from inside a running loop (Jupyter) and from worker threads.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.tools import FunctionTool

from janus_space import (
    DEFAULT_SPACE,
    ClientPerLoop,
    GenerationResult,
    JanusClient,
    JanusError,
    LoopThread,
    Message,
    ProtocolError,
    StatusEvent,
    UnderstandingResult,
)
from janus_space.tokens import ANSWER_TOKENS, CL100K_CONTEXT_WINDOW

from ._convert import (
    ExtraImages,
    ImageDocuments,
    choose_image,
    image_documents_to_blocks,
    to_janus_messages,
)
from ._events import JanusStatusEvent, dispatcher, status_event
from ._structured import StructuredPredictMixin

__all__ = ["CONTEXT_WINDOW", "NUM_OUTPUT", "JanusPro"]

MAX_SEED = 2**32 - 1  # the Space seeds numpy, which takes 0 .. 2**32 - 1
CONTEXT_WINDOW = CL100K_CONTEXT_WINDOW
"""The window LlamaIndex packs prompts into, by its own tiktoken counter: Janus-Pro's 4096 less
the image (576) and the Space's template (64), scaled so the core's estimate of a prompt that
fills it still fits the core's budget (see ``janus_space.tokens``)."""
NUM_OUTPUT = ANSWER_TOKENS  # the Space's fixed max_new_tokens for an answer

R = TypeVar("R", UnderstandingResult, GenerationResult)


@dataclass(frozen=True)
class _Request:
    """One understanding call, converted and ready for the core."""

    messages: list[Message]
    dropped_images: int
    seed: int
    top_p: float
    temperature: float


class _Runtime:
    """Per-instance connections: a client per event loop, and the sync methods' loop thread."""

    def __init__(self, factory: Callable[[], JanusClient]) -> None:
        self.clients: ClientPerLoop[JanusClient] = ClientPerLoop(factory)
        self._thread: LoopThread | None = None
        self._lock = threading.Lock()

    def thread(self) -> LoopThread:
        """The loop thread behind the sync methods, started on first use."""
        with self._lock:
            if self._thread is None:
                self._thread = LoopThread(name="llama-index-janus")
            return self._thread

    def close(self) -> None:
        """Close the loop thread's client and stop the thread (idempotent)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            try:
                thread.run(self.clients.aclose_current())
            finally:
                thread.close()


_RUNTIME_LOCK = threading.Lock()


class JanusPro(StructuredPredictMixin, CustomLLM):
    """Janus-Pro-7B (image understanding and image generation) through its Hugging Face Space.

    A chat LLM whose messages may carry ``ImageBlock``s; the Space answers one question about
    one image per call, so history and system messages are flattened into the question by
    ``janus_space`` and one image is chosen (see ``extra_images``). Text-only questions get a
    neutral placeholder image unless ``text_only="error"``.

    Examples:
        ```python
        from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock
        from llama_index_janus import JanusPro

        llm = JanusPro()  # HF_TOKEN from the environment, if set
        reply = llm.chat([ChatMessage(role="user", blocks=[
            ImageBlock(path="cat.png"), TextBlock(text="What is in this picture?")])])
        images = llm.generate_images("a watercolor fox")  # five ImageBlocks
        ```
    """

    space: str = Field(
        default=DEFAULT_SPACE, description="Hugging Face Space id ('owner/name') serving Janus-Pro."
    )
    base_url: str | None = Field(
        default=None,
        description="URL of a self-hosted copy of the Space (overrides `space` for requests).",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="HF token (else HF_TOKEN from the environment); sent to HF hosts only.",
    )
    temperature: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Sampling temperature of the answers."
    )
    top_p: float = Field(
        default=0.95, ge=0.0, le=1.0, description="Nucleus sampling of the answers."
    )
    seed: int = Field(default=42, ge=0, le=MAX_SEED, description="Seed of the understanding.")
    image_seed: int = Field(
        default=12345, ge=0, le=MAX_SEED, description="Seed of image generation."
    )
    guidance: float = Field(
        default=5.0,
        ge=1.0,
        le=10.0,
        description="Classifier-free guidance (CFG weight) of generation.",
    )
    image_temperature: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Sampling temperature of image generation."
    )
    timeout: float = Field(
        default=300.0, gt=0, description="Seconds one call may take, queue wait included."
    )
    connect_timeout: float = Field(default=30.0, gt=0, description="Seconds to open a connection.")
    max_retries: int = Field(
        default=2, ge=0, description="Retries of transient failures (never of quota errors)."
    )
    text_only: Literal["placeholder", "error"] = Field(
        default="placeholder",
        description="A question without an image gets a neutral placeholder image, or raises.",
    )
    extra_images: ExtraImages = Field(
        default="latest",
        description=(
            "The Space reads one image per call. 'latest' sends the first image of the latest "
            "message that has images (warning about the rest); 'error' raises instead."
        ),
    )
    extra_headers: dict[str, str] = Field(
        default_factory=dict,
        exclude=True,
        repr=False,
        description="Extra request headers, e.g. {'x-ip-token': ...} when proxying a user's quota.",
    )
    max_image_side: int | None = Field(
        default=384,
        description="Downscale input images to this longer side before sending (None: never).",
    )
    status_chunks: bool = Field(
        default=True,
        description=(
            "When streaming, yield an empty-delta chunk for each queue/progress update, with the "
            "JanusStatusEvent in additional_kwargs['janus_status']."
        ),
    )

    _runtime: _Runtime | None = PrivateAttr(default=None)

    def __init__(
        self,
        space: str = DEFAULT_SPACE,
        *,
        base_url: str | None = None,
        hf_token: str | SecretStr | None = None,
        temperature: float = 0.1,
        top_p: float = 0.95,
        seed: int = 42,
        image_seed: int = 12345,
        guidance: float = 5.0,
        image_temperature: float = 1.0,
        timeout: float = 300.0,
        connect_timeout: float = 30.0,
        max_retries: int = 2,
        text_only: Literal["placeholder", "error"] = "placeholder",
        extra_images: ExtraImages = "latest",
        extra_headers: Mapping[str, str] | None = None,
        max_image_side: int | None = 384,
        status_chunks: bool = True,
        **kwargs: Any,
    ) -> None:
        """Keyword settings are the fields above; nothing here touches the network.

        ``kwargs`` pass LlamaIndex's own LLM settings (``callback_manager``, ``system_prompt``).
        """
        super().__init__(
            space=space,
            base_url=base_url,
            hf_token=hf_token,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            image_seed=image_seed,
            guidance=guidance,
            image_temperature=image_temperature,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            text_only=text_only,
            extra_images=extra_images,
            extra_headers=dict(extra_headers or {}),
            max_image_side=max_image_side,
            status_chunks=status_chunks,
            **kwargs,
        )

    @classmethod
    def class_name(cls) -> str:
        """Name used when LlamaIndex serializes this LLM."""
        return "janus_pro_llm"

    @property
    def metadata(self) -> LLMMetadata:
        """Janus-Pro-7B's fixed limits, without I/O: LlamaIndex reads this on every call.

        ``context_window`` is counted the way LlamaIndex counts (tiktoken cl100k), so prompts it
        packs to ``context_window - num_output`` pass the core's token budget.
        """
        return LLMMetadata(
            context_window=CONTEXT_WINDOW,
            num_output=NUM_OUTPUT,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.space,
        )

    # -- clients and lifetime ---------------------------------------------------------------

    def _rt(self) -> _Runtime:
        """This instance's connections, made on first use (also after unpickling or copying)."""
        runtime: _Runtime | None = getattr(self, "_runtime", None)
        if runtime is not None:
            return runtime
        with _RUNTIME_LOCK:
            runtime = getattr(self, "_runtime", None)
            if runtime is None:
                # Nothing the finalizer reaches may hold `self`, or it would never be collected.
                this = weakref.ref(self)

                def new_client() -> JanusClient:
                    llm = this()
                    if llm is None:
                        raise JanusError("this JanusPro was garbage-collected")
                    return llm._new_client()

                runtime = _Runtime(new_client)
                weakref.finalize(self, runtime.close)
                self._runtime = runtime
        return runtime

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> JanusPro:
        """A deep copy with its own connections (clients and threads are never copied)."""
        fields = {
            name: copy.deepcopy(getattr(self, name), memo) for name in type(self).model_fields
        }
        return type(self)(**fields)

    def _new_client(self) -> JanusClient:
        return JanusClient(
            self.space,
            base_url=self.base_url,
            hf_token=self.hf_token.get_secret_value() if self.hf_token is not None else None,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_retries=self.max_retries,
            text_only=self.text_only,
            extra_headers=self.extra_headers,
            max_image_side=self.max_image_side,
        )

    async def aclose(self) -> None:
        """Close the client of the running event loop (call before that loop ends)."""
        runtime = getattr(self, "_runtime", None)
        if runtime is not None:
            await runtime.clients.aclose_current()

    def close(self) -> None:
        """Close the sync methods' client and stop their loop thread (they restart on use)."""
        runtime = getattr(self, "_runtime", None)
        if runtime is not None:
            runtime.close()

    def __enter__(self) -> JanusPro:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> JanusPro:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
        await asyncio.to_thread(self.close)  # joining the sync side's thread would block the loop

    # -- the shared paths -------------------------------------------------------------------

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> _Request:
        converted, dropped = choose_image(to_janus_messages(messages), self.extra_images)
        return _Request(
            messages=converted,
            dropped_images=dropped,
            seed=kwargs.get("seed", self.seed),
            top_p=kwargs.get("top_p", self.top_p),
            temperature=kwargs.get("temperature", self.temperature),
        )

    def _completion_request(
        self,
        prompt: str,
        formatted: bool | ImageDocuments,
        image_documents: ImageDocuments | None,
        kwargs: dict[str, Any],
    ) -> _Request:
        # The legacy multimodal signature is complete(prompt, image_documents): accept it too.
        if image_documents is None and not isinstance(formatted, bool):
            image_documents = formatted
        blocks: list[Any] = [*image_documents_to_blocks(image_documents), TextBlock(text=prompt)]
        return self._request([ChatMessage(role=MessageRole.USER, blocks=blocks)], kwargs)

    async def _understand(
        self, request: _Request
    ) -> AsyncGenerator[StatusEvent | UnderstandingResult, None]:
        client = self._rt().clients.get()
        stream = client.stream_chat(
            request.messages,
            seed=request.seed,
            top_p=request.top_p,
            temperature=request.temperature,
        )
        async with aclosing(stream):
            async for item in stream:
                yield item

    def _status(
        self, item: StatusEvent, task: Literal["understanding", "generation"]
    ) -> JanusStatusEvent:
        event = status_event(item, task)
        dispatcher.event(event)
        return event

    @staticmethod
    def _details(result: UnderstandingResult, request: _Request) -> dict[str, Any]:
        prompt = result.prompt
        return {
            "seed": result.seed,
            "top_p": result.top_p,
            "temperature": result.temperature,
            "duration": result.duration,
            "trimmed_messages": prompt.trimmed_messages if prompt else 0,
            "dropped_images": request.dropped_images + (prompt.dropped_images if prompt else 0),
        }

    def _chat_response(self, result: UnderstandingResult, request: _Request) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=result.text),
            delta=result.text,
            raw=result,
            additional_kwargs=self._details(result, request),
        )

    def _status_chunk(self, event: JanusStatusEvent) -> ChatResponse:
        return ChatResponse(
            message=ChatMessage(role=MessageRole.ASSISTANT, content=""),
            delta="",
            raw=event.status,
            additional_kwargs={"janus_status": event},
        )

    @staticmethod
    def _completion(chat: ChatResponse) -> CompletionResponse:
        return CompletionResponse(
            text=chat.message.content or "",
            delta=chat.delta,
            raw=chat.raw,
            additional_kwargs=chat.additional_kwargs,
        )

    def _run_sync(self, request: _Request) -> ChatResponse:
        result = None
        for item in self._rt().thread().iterate(self._understand(request)):
            if isinstance(item, UnderstandingResult):
                result = item
            else:
                self._status(item, "understanding")
        return self._chat_response(_final(result, UnderstandingResult), request)

    async def _run_async(self, request: _Request) -> ChatResponse:
        result = None
        async with aclosing(self._understand(request)) as stream:
            async for item in stream:
                if isinstance(item, UnderstandingResult):
                    result = item
                else:
                    self._status(item, "understanding")
        return self._chat_response(_final(result, UnderstandingResult), request)

    def _stream_sync(self, request: _Request) -> ChatResponseGen:
        for item in self._rt().thread().iterate(self._understand(request)):
            if isinstance(item, UnderstandingResult):
                yield self._chat_response(item, request)
                return
            event = self._status(item, "understanding")
            if self.status_chunks:
                yield self._status_chunk(event)
        raise ProtocolError("the call ended without a result")

    async def _stream_async(self, request: _Request) -> ChatResponseAsyncGen:
        async with aclosing(self._understand(request)) as stream:
            async for item in stream:
                if isinstance(item, UnderstandingResult):
                    yield self._chat_response(item, request)
                    return
                event = self._status(item, "understanding")
                if self.status_chunks:
                    yield self._status_chunk(event)
        raise ProtocolError("the call ended without a result")

    # -- chat -------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer the last user message; images come from the messages' ``ImageBlock``s."""
        return self._run_sync(self._request(messages, kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async ``chat`` on the caller's event loop."""
        return await self._run_async(self._request(messages, kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream status chunks (see ``status_chunks``), then the answer as one chunk."""
        return self._stream_sync(self._request(messages, kwargs))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async ``stream_chat`` on the caller's event loop."""
        return self._stream_async(self._request(messages, kwargs))

    # -- completion (also the legacy multimodal `complete(prompt, image_documents)`) --------

    @llm_completion_callback()
    def complete(
        self,
        prompt: str,
        formatted: bool | ImageDocuments = False,
        image_documents: ImageDocuments | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Answer ``prompt`` as one user message; ``image_documents`` (nodes/blocks) add images."""
        request = self._completion_request(prompt, formatted, image_documents, kwargs)
        return self._completion(self._run_sync(request))

    @llm_completion_callback()
    async def acomplete(
        self,
        prompt: str,
        formatted: bool | ImageDocuments = False,
        image_documents: ImageDocuments | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """Async ``complete`` on the caller's event loop."""
        request = self._completion_request(prompt, formatted, image_documents, kwargs)
        return self._completion(await self._run_async(request))

    @llm_completion_callback()
    def stream_complete(
        self,
        prompt: str,
        formatted: bool | ImageDocuments = False,
        image_documents: ImageDocuments | None = None,
        **kwargs: Any,
    ) -> CompletionResponseGen:
        """Streaming ``complete``: status chunks, then the answer."""
        request = self._completion_request(prompt, formatted, image_documents, kwargs)
        return (self._completion(chunk) for chunk in self._stream_sync(request))

    @llm_completion_callback()
    async def astream_complete(
        self,
        prompt: str,
        formatted: bool | ImageDocuments = False,
        image_documents: ImageDocuments | None = None,
        **kwargs: Any,
    ) -> CompletionResponseAsyncGen:
        """Async ``stream_complete`` on the caller's event loop."""
        request = self._completion_request(prompt, formatted, image_documents, kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            async with aclosing(self._stream_async(request)) as stream:
                async for chunk in stream:
                    yield self._completion(chunk)

        return gen()

    # -- image generation -------------------------------------------------------------------

    async def _generate(
        self, prompt: str, seed: int | None, guidance: float | None, temperature: float | None
    ) -> AsyncGenerator[StatusEvent | GenerationResult, None]:
        client = self._rt().clients.get()
        stream = client.stream_generate(
            prompt,
            seed=self.image_seed if seed is None else seed,
            guidance=self.guidance if guidance is None else guidance,
            temperature=self.image_temperature if temperature is None else temperature,
        )
        async with aclosing(stream):
            async for item in stream:
                yield item

    async def agenerate_images(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        guidance: float | None = None,
        temperature: float | None = None,
    ) -> list[ImageBlock]:
        """Draw images for ``prompt`` (the Space makes five); unset options use the fields."""
        result = None
        async with aclosing(self._generate(prompt, seed, guidance, temperature)) as stream:
            async for item in stream:
                if isinstance(item, GenerationResult):
                    result = item
                else:
                    self._status(item, "generation")
        return _image_blocks(_final(result, GenerationResult))

    def generate_images(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        guidance: float | None = None,
        temperature: float | None = None,
    ) -> list[ImageBlock]:
        """Sync ``agenerate_images`` (works inside a running loop and from threads)."""
        result = None
        for item in (
            self._rt().thread().iterate(self._generate(prompt, seed, guidance, temperature))
        ):
            if isinstance(item, GenerationResult):
                result = item
            else:
                self._status(item, "generation")
        return _image_blocks(_final(result, GenerationResult))

    def image_generation_tool(
        self,
        *,
        name: str = "generate_image",
        description: str | None = None,
        return_direct: bool = False,
    ) -> FunctionTool:
        """An async-native ``FunctionTool`` drawing images (see ``make_image_generation_tool``)."""
        from ._tools import make_image_generation_tool

        return make_image_generation_tool(
            self, name=name, description=description, return_direct=return_direct
        )

    def image_question_tool(
        self,
        *,
        name: str = "ask_about_image",
        description: str | None = None,
        return_direct: bool = False,
        image_root: str | None = None,
    ) -> FunctionTool:
        """A ``FunctionTool`` asking Janus about a picture by id (e.g. one the generation tool
        drew: both share this LLM's image shelf) or URL (see ``make_image_question_tool``)."""
        from ._tools import make_image_question_tool

        return make_image_question_tool(
            self,
            name=name,
            description=description,
            return_direct=return_direct,
            image_root=image_root,
        )


def _final(result: R | None, kind: type[R]) -> R:
    if not isinstance(result, kind):
        raise ProtocolError("the call ended without a result")
    return result


def _image_blocks(result: GenerationResult) -> list[ImageBlock]:
    return [ImageBlock(image=image.data, image_mimetype=image.mime_type) for image in result.images]
