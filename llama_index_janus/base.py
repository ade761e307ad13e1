"""JanusPro: DeepSeek's Janus-Pro-7B Space as a LlamaIndex chat LLM that reads images.

A thin mapping onto ``janus_space``: messages and blocks are converted in ``_convert``, the
core's client does every request, and its status events become ``JanusStatusEvent``s on
LlamaIndex's instrumentation (and, when streaming, empty-delta chunks). Async methods run on
the caller's loop; sync ones run the same coroutines on a private loop thread, so they work
from scripts, from inside a running loop (Jupyter) and from worker threads.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import AsyncGenerator, Sequence
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
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, field_validator
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.tools import FunctionTool

from janus_space import (
    DEFAULT_SPACE,
    BackendHandle,
    GenerationResult,
    JanusBackend,
    JanusClient,
    Message,
    ProtocolError,
    StatusEvent,
    TextDelta,
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
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()


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

    backend: Any = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Any janus_space backend (JanusClient, JanusPool, LocalJanus); when set, the "
        "connection settings are not used, and close() leaves it open.",
    )
    endpoints: list[str] | None = Field(
        default=None,
        description="Several Space ids or base URLs served as one pool (janus_space.JanusPool).",
    )
    space: str = Field(
        default=DEFAULT_SPACE, description="Hugging Face Space id ('owner/name') serving Janus-Pro."
    )
    base_url: str | None = Field(
        default=None,
        description="URL of a self-hosted copy of the Space (overrides `space` for requests); "
        "default: the JANUS_BASE_URL environment variable.",
    )
    proxy: str | None = Field(
        default=None,
        description="HTTP(S) proxy URL; HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured anyway.",
    )
    hf_token: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="HF token (else HF_TOKEN or the `hf auth login` token); sent to HF hosts only.",
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
    context_window: int = Field(
        default=CONTEXT_WINDOW,
        ge=NUM_OUTPUT + 1,
        description="Tokens LlamaIndex may pack, by its own counter, answer included. The "
        "default fits any text the core accepts; multimodal RAG counts 2125 tokens per image, "
        "so an image and its text share a call only with about 3300 or more (text prompts of "
        "dense code may then exceed the Space's budget and be refused before sending).",
    )
    status_chunks: bool = Field(
        default=True,
        description=(
            "When streaming, yield an empty-delta chunk for each queue/progress update, with the "
            "JanusStatusEvent in additional_kwargs['janus_status']."
        ),
    )

    _handle: BackendHandle = PrivateAttr(default_factory=BackendHandle)

    def __init__(self, space: str | None = None, /, **settings: Any) -> None:
        """Settings are the fields above (and LlamaIndex's own, e.g. ``callback_manager``).

        Nothing here touches the network.
        """
        if space is not None:
            if "space" in settings:
                raise TypeError("JanusPro got the Space id twice (positional and space=)")
            settings["space"] = space
        super().__init__(**settings)
        self._handle.bind(self)

    @field_validator("extra_headers", mode="before")
    @classmethod
    def _no_headers(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("backend")
    @classmethod
    def _a_backend(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, JanusBackend):
            raise ValueError(f"backend must be a janus_space backend, not {type(value).__name__}")
        return value

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
        if self.backend is not None and self.backend.capabilities.kind == "local":
            caps = self.backend.capabilities
            return LLMMetadata(
                context_window=caps.context_tokens,
                num_output=caps.max_new_tokens,
                is_chat_model=True,
                is_function_calling_model=False,
                model_name=f"local:{getattr(self.backend, 'model', 'janus')}",
            )
        return LLMMetadata(
            context_window=self.context_window,
            num_output=NUM_OUTPUT,
            is_chat_model=True,
            is_function_calling_model=False,
            model_name=self.space,
        )

    # -- clients and lifetime ---------------------------------------------------------------

    def _space_settings(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "hf_token": self.hf_token.get_secret_value() if self.hf_token is not None else None,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
            "text_only": self.text_only,
            "extra_images": self.extra_images,
            "extra_headers": self.extra_headers,
            "max_image_side": self.max_image_side,
            "proxy": self.proxy,
        }

    def _backend_key(self) -> tuple[Any, ...]:
        """What the built backend depends on: a copy or an edit that changes it rebuilds it."""
        settings = sorted(self._space_settings().items(), key=str)
        digest = hashlib.sha256(repr(settings).encode()).hexdigest()  # no second copy of a token
        return (tuple(self.endpoints or ()), self.space, digest)

    def _build_backend(self) -> JanusBackend:
        settings = self._space_settings()
        if self.endpoints:
            from janus_space.pool import JanusPool

            settings.pop("base_url", None)
            return JanusPool(self.endpoints, **settings)
        return JanusClient(self.space, **settings)

    @property
    def janus_backend(self) -> JanusBackend:
        """The backend calls go to: ``backend`` if given, else one built from the settings."""
        if self.backend is not None:
            backend: JanusBackend = self.backend
            return backend
        built: JanusBackend = self._handle.get(self._backend_key(), self._build_backend)
        return built

    def __copy__(self) -> JanusPro:
        """A copy with its own connections (a given ``backend`` is shared, never copied)."""
        return self.__deepcopy__({})

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> JanusPro:
        """A deep copy with its own connections (a given ``backend`` is shared, never copied)."""
        fields = {
            name: getattr(self, name)
            if name == "backend"
            else copy.deepcopy(getattr(self, name), memo)
            for name in type(self).model_fields
        }
        return type(self)(**fields)

    def __getstate__(self) -> dict[Any, Any]:
        if self.backend is not None:
            raise TypeError("a JanusPro with backend= cannot be pickled; pass settings instead")
        state = super().__getstate__()
        state["__pydantic_private__"] = None
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "__pydantic_private__": {"_handle": BackendHandle()}})
        self._handle.bind(self)

    async def aclose(self) -> None:
        """Close the backend this object built (a ``backend`` you passed stays open)."""
        await self._handle.aclose()

    def close(self) -> None:
        """Sync ``aclose`` (the sync methods' sessions included); later calls reconnect."""
        self._handle.close()

    def __enter__(self) -> JanusPro:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> JanusPro:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the shared paths -------------------------------------------------------------------

    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> _Request:
        converted = to_janus_messages(messages)
        dropped = 0
        if self.janus_backend.capabilities.images_per_call == 1:
            converted, dropped = choose_image(converted, self.extra_images)
        return _Request(
            messages=converted,
            dropped_images=dropped,
            seed=kwargs.get("seed", self.seed),
            top_p=kwargs.get("top_p", self.top_p),
            temperature=kwargs.get("temperature", self.temperature),
            # passed on: the backend honours them, or says it cannot (the Space: a warning)
            max_new_tokens=kwargs.get("max_new_tokens", kwargs.get("max_tokens")),
            stop=tuple(kwargs.get("stop") or ()),
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
    ) -> AsyncGenerator[StatusEvent | TextDelta | UnderstandingResult, None]:
        stream = self.janus_backend.stream_chat(
            request.messages,
            seed=request.seed,
            top_p=request.top_p,
            temperature=request.temperature,
            max_new_tokens=request.max_new_tokens,
            stop=request.stop,
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

    def _response(
        self,
        item: StatusEvent | TextDelta | UnderstandingResult,
        request: _Request,
        text: list[str],
    ) -> ChatResponse | None:
        """One backend item → the chunk a stream yields (None: nothing to show for it).

        ``text`` collects the deltas of token-streaming backends; the final response then has
        an empty delta, since its text was already streamed.
        """
        if isinstance(item, TextDelta):
            text.append(item.text)
            message = ChatMessage(role=MessageRole.ASSISTANT, content="".join(text))
            return ChatResponse(message=message, delta=item.text)
        if isinstance(item, UnderstandingResult):
            response = self._chat_response(item, request)
            if text:
                response.delta = ""
            return response
        event = self._status(item, "understanding")
        return self._status_chunk(event) if self.status_chunks else None

    def _run_sync(self, request: _Request) -> ChatResponse:
        final = None
        for final in self._stream_sync(request):  # noqa: B007 - the last one is the answer
            pass
        return _answer_of(final)

    async def _run_async(self, request: _Request) -> ChatResponse:
        final = None
        async with aclosing(self._stream_async(request)) as stream:
            async for final in stream:  # noqa: B007 - the last one is the answer
                pass
        return _answer_of(final)

    def _stream_sync(self, request: _Request) -> ChatResponseGen:
        text: list[str] = []
        for item in self._handle.iterate(self._understand(request)):
            response = self._response(item, request, text)
            if response is not None:
                yield response
            if isinstance(item, UnderstandingResult):
                return
        raise ProtocolError("the call ended without a result")

    async def _stream_async(self, request: _Request) -> ChatResponseAsyncGen:
        text: list[str] = []
        async with aclosing(self._understand(request)) as stream:
            async for item in stream:
                response = self._response(item, request, text)
                if response is not None:
                    yield response
                if isinstance(item, UnderstandingResult):
                    return
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
        stream = self.janus_backend.stream_generate(
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
        for item in self._handle.iterate(self._generate(prompt, seed, guidance, temperature)):
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


def _answer_of(final: ChatResponse | None) -> ChatResponse:
    """The last response of a call, which must carry its result."""
    if final is None or not isinstance(final.raw, UnderstandingResult):
        raise ProtocolError("the call ended without a result")
    return final


def _final(result: R | None, kind: type[R]) -> R:
    if not isinstance(result, kind):
        raise ProtocolError("the call ended without a result")
    return result


def _image_blocks(result: GenerationResult) -> list[ImageBlock]:
    return [ImageBlock(image=image.data, image_mimetype=image.mime_type) for image in result.images]
