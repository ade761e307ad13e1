"""ChatJanus: DeepSeek Janus-Pro-7B, through its Hugging Face Space, as a LangChain chat model.

A thin adapter over ``janus_space``: messages are converted (``_messages``), the core client
does every request, and this module turns the core's results into ``AIMessage``s and its
status events into LangChain custom events (``_events``).
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.content import create_image_block, create_text_block
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.utils.uuid import uuid7
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self, override

from janus_space import (
    GenerationResult,
    InvalidInputError,
    JanusError,
    JanusWarning,
    Message,
    ProtocolError,
    StatusEvent,
    TextDelta,
    UnderstandingResult,
    estimate_conversation_tokens,
    estimate_tokens,
)
from janus_space.client import SPACE_CAPABILITIES
from janus_space.tokens import ANSWER_TOKENS, DEFAULT_TOKEN_BUDGET

from ._errors import as_langchain_error
from ._events import (
    PinnedRun,
    adispatch_status,
    current_run,
    dispatch_status,
    status_payload,
)
from ._messages import generation_prompt, to_janus_messages
from ._runtime import SpaceSettings, on_loop_thread

__all__ = ["GENERATION_MODEL", "UNDERSTANDING_MODEL", "ChatJanus"]

UNDERSTANDING_MODEL = "janus-pro-7b"
"""Answers questions about an image (or about text alone)."""
GENERATION_MODEL = "janus-pro-7b-image"
"""Draws images from a text prompt (the Space draws five per call)."""
_MODELS = (UNDERSTANDING_MODEL, GENERATION_MODEL)
_SHARED_PARAMS = ("temperature", "seed")
_ONLY_FOR = {"top_p": UNDERSTANDING_MODEL, "guidance": GENERATION_MODEL}
_PROVIDER = "janus"


@dataclass(frozen=True)
class _Call:
    """One validated request: which function, its input and the parameters to send."""

    model: str
    messages: list[Message] = field(default_factory=list)
    prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    stop: tuple[str, ...] = ()

    @property
    def generates(self) -> bool:
        return self.model == GENERATION_MODEL


def _answer(
    result: UnderstandingResult | GenerationResult, call: _Call, *, indexed: bool
) -> tuple[str | list[str | dict[str, Any]], dict[str, Any]]:
    """A core result → message content and ``response_metadata``.

    Generation gives a short text block and one standard image block per image; ``indexed``
    adds the ``index`` keys streamed chunks merge by (text at 0, images after).
    """
    metadata: dict[str, Any] = {
        "model_name": call.model,
        "model_provider": _PROVIDER,
        "finish_reason": "stop",
        "seed": result.seed,
        "temperature": result.temperature,
        "duration": result.duration,
    }
    if isinstance(result, UnderstandingResult):
        metadata["top_p"] = result.top_p
        if result.prompt is not None:
            metadata["trimmed_messages"] = result.prompt.trimmed_messages
            metadata["dropped_images"] = result.prompt.dropped_images
        metadata["endpoint"] = result.endpoint
        return result.text, metadata
    count = len(result.images)
    metadata["endpoint"] = result.endpoint
    metadata["guidance"] = result.guidance
    metadata["image_count"] = count
    text = f"Generated {count} image{'s' if count != 1 else ''} for the prompt: {call.prompt}"
    blocks: list[dict[str, Any]] = [dict(create_text_block(text))]
    blocks += [
        dict(create_image_block(base64=image.to_base64(), mime_type=image.mime_type))
        for image in result.images
    ]
    if indexed:
        for position, block in enumerate(blocks):
            block["index"] = position
    content: list[str | dict[str, Any]] = list(blocks)
    return content, metadata


class ChatJanus(SpaceSettings, BaseChatModel):
    """DeepSeek Janus-Pro-7B on its Hugging Face Space (or a copy of it) as a chat model.

    ``model="janus-pro-7b"`` answers about images (history and system messages are flattened
    into the Space's single question; one image per call). ``model="janus-pro-7b-image"``
    draws five images from the last user message and returns them as image content blocks.

    Example:
        ```python
        from langchain_janus import ChatJanus

        llm = ChatJanus()  # HF_TOKEN from the environment
        llm.invoke([("human", [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "url": "https://example.com/cat.png"},
        ])])
        ```

    Queue position, progress and logs arrive as custom events named ``janus_status``.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    model: str = Field(
        default=UNDERSTANDING_MODEL,
        description="'janus-pro-7b' (image understanding) or 'janus-pro-7b-image' "
        "(image generation).",
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Sampling temperature, 0..1 (defaults: 0.1 understanding, 1.0 generation).",
    )
    top_p: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Nucleus sampling for understanding (default 0.95).",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description="Random seed (Space defaults: 42 understanding, 12345 generation).",
    )
    guidance: float | None = Field(
        default=None, ge=1.0, le=10.0, description="CFG weight for generation, 1..10 (default 5)."
    )
    stop: list[str] | None = Field(
        default=None,
        description="Stop sequences, applied to the answer after it arrives (the Space has none).",
    )
    max_tokens: int | None = Field(
        default=None,
        description="Accepted for LangChain compatibility only: the Space always allows up to "
        "512 new tokens. Setting it warns.",
    )
    streaming: bool = Field(
        default=False, description="Make invoke() go through the streaming path."
    )
    text_only: Literal["placeholder", "error"] = Field(
        default="placeholder",
        description="Questions without an image: send a neutral placeholder image, or raise.",
    )
    extra_images: Literal["latest", "error"] = Field(
        default="latest",
        description="More than one image in a conversation: send the latest, or raise.",
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in _MODELS:
            raise ValueError(f"model must be one of {_MODELS}, not {value!r}")
        return value

    @model_validator(mode="after")
    def _warn_max_tokens(self) -> Self:
        if self.max_tokens is not None and self.backend is None:
            caps = SPACE_CAPABILITIES  # a built backend is a Space client or a pool of them
            warnings.warn(
                f"ChatJanus ignores max_tokens on the Space: it always allows up to "
                f"{caps.max_new_tokens} new tokens (a local backend honours it)",
                JanusWarning,
                stacklevel=2,
            )
        return self

    # -- LangChain metadata --------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "janus-chat"

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "HF_TOKEN"}

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "space": self.space,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "guidance": self.guidance,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=_PROVIDER,
            ls_model_name=str(kwargs.get("model") or self.model),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = float(temperature)
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = list(stop or self.stop or [])
        return params

    # -- token counting: the core's estimate, the unit of its budget -------------------------

    def _resolve_model_profile(self) -> ModelProfile | None:
        """The token limits, in ``get_num_tokens`` units (images are reserved apart)."""
        return ModelProfile(max_input_tokens=DEFAULT_TOKEN_BUDGET, max_output_tokens=ANSWER_TOKENS)

    @override
    def get_token_ids(self, text: str) -> list[int]:
        """Token ids need DeepSeek's tokenizer, which is not bundled: only counts are estimated.

        Set ``custom_get_token_ids`` (e.g. a locally loaded DeepSeek-LLM tokenizer) to have
        ids, and exact counts from ``get_num_tokens`` and ``get_num_tokens_from_messages``.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            "ChatJanus has no tokenizer to list token ids with (Janus-Pro uses DeepSeek-LLM's, "
            "which is not bundled); get_num_tokens estimates counts, or set "
            "custom_get_token_ids to a tokenizer's encode function"
        )

    @override
    def get_num_tokens(self, text: str) -> int:
        """Tokens ``text`` takes, by the core's estimate (``custom_get_token_ids`` if set)."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return estimate_tokens(text)

    @override
    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Tokens of the question these messages flatten into (what the Space receives).

        The same unit as the Space's budget (``profile["max_input_tokens"]``, 2944), so
        ``trim_messages(messages, max_tokens=2944, token_counter=llm)`` keeps exactly what can
        be sent. Images count nothing: the budget reserves the one image every call carries.
        """
        if tools is not None:
            warnings.warn(
                "ChatJanus cannot call tools, so tool schemas are not counted",
                JanusWarning,
                stacklevel=2,
            )
        if not messages:
            return 0
        return estimate_conversation_tokens(to_janus_messages(messages), self.get_num_tokens)

    def _space_settings(self) -> dict[str, Any]:
        return {
            **super()._space_settings(),
            "text_only": self.text_only,
            "extra_images": self.extra_images,
        }

    # -- preparing a call (pure: every input error is raised here or by the core's checks,
    #    before any request) ---------------------------------------------------------------

    def _prepare(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> _Call:
        unknown = set(kwargs) - {"model", "stream", "max_tokens", *_SHARED_PARAMS, *_ONLY_FOR}
        if unknown:
            raise InvalidInputError(
                f"ChatJanus does not support {sorted(unknown)} (Janus has no tool calling; for "
                "typed answers use with_structured_output); call arguments: model, "
                "temperature, top_p, seed, guidance, max_tokens"
            )
        model = kwargs.get("model") or self.model
        if model not in _MODELS:
            raise InvalidInputError(f"model must be one of {_MODELS}, not {model!r}")
        # A call argument for the other model is an error; a model setting for the other model
        # is simply not used (one ChatJanus may serve both models through per-call overrides).
        params: dict[str, Any] = {}
        for name in (*_SHARED_PARAMS, *_ONLY_FOR):
            value = kwargs.get(name)
            if value is not None and _ONLY_FOR.get(name, model) != model:
                raise InvalidInputError(f"{name} applies only to model={_ONLY_FOR[name]!r}")
            if value is None and _ONLY_FOR.get(name, model) == model:
                value = getattr(self, name)
            if value is not None:
                params[name] = value
        stops = tuple(stop if stop is not None else (self.stop or ()))
        if model == GENERATION_MODEL:
            return _Call(model, prompt=generation_prompt(messages), params=params)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["max_new_tokens"] = max_tokens  # the backend says if it cannot honour it
        params["stop"] = stops
        return _Call(model, messages=to_janus_messages(messages), params=params, stop=stops)

    async def _aevents(self, call: _Call) -> AsyncIterator[StatusEvent | ChatGenerationChunk]:
        """Run one call on the backend: status events, answer chunks, then the last chunk.

        Backends that stream tokens give one chunk per ``TextDelta``; the last chunk carries
        the metadata (and, for the Space, the whole answer). Core errors are re-raised as
        errors that are also LangChain's provider-neutral ones.
        """
        backend = self.janus_backend
        if call.generates:
            stream: Any = backend.stream_generate(call.prompt, **call.params)
        else:
            stream = backend.stream_chat(call.messages, **call.params)
        streamed = False
        try:
            async for item in stream:
                if isinstance(item, TextDelta):
                    streamed = True
                    yield ChatGenerationChunk(message=AIMessageChunk(content=item.text))
                elif isinstance(item, (UnderstandingResult, GenerationResult)):
                    content, metadata = _answer(item, call, indexed=True)
                    last = AIMessageChunk(
                        content="" if streamed else content,
                        response_metadata=metadata,
                        chunk_position="last",
                    )
                    yield ChatGenerationChunk(message=last)
                else:
                    yield item
        except JanusError as exc:
            raise as_langchain_error(exc) from exc
        finally:
            await stream.aclose()

    async def _agather(self, call: _Call, run_manager: Any) -> ChatResult:
        answer: ChatGenerationChunk | None = None
        async for item in self._aevents(call):
            if isinstance(item, ChatGenerationChunk):
                answer = item if answer is None else answer + item
            else:
                await adispatch_status(status_payload(item, call.model), run_manager)
        return self._result(answer)

    @staticmethod
    def _result(chunk: ChatGenerationChunk | None) -> ChatResult:
        if chunk is None:
            raise ProtocolError("the Space call ended without an answer")
        message = chunk.message
        content = message.content
        if isinstance(content, list):
            content = [
                {k: v for k, v in block.items() if k != "index"}
                if isinstance(block, dict)
                else block
                for block in content
            ]
        ai = AIMessage(content=content, response_metadata=dict(message.response_metadata))
        return ChatResult(generations=[ChatGeneration(message=ai)])

    # -- the four LangChain entry points --------------------------------------------------

    @override
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._agather(self._prepare(messages, stop, kwargs), run_manager)

    @override
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        async for item in self._aevents(call):
            if isinstance(item, ChatGenerationChunk):
                if run_manager is not None:
                    await run_manager.on_llm_new_token(item.message.text, chunk=item)
                yield item
            else:
                await adispatch_status(status_payload(item, call.model), run_manager)

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        answer: ChatGenerationChunk | None = None
        for item in self._handle.iterate(self._aevents(call)):
            if isinstance(item, ChatGenerationChunk):
                answer = item if answer is None else answer + item
            else:
                dispatch_status(status_payload(item, call.model), run_manager)
        return self._result(answer)

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        for item in self._handle.iterate(self._aevents(call)):
            if isinstance(item, ChatGenerationChunk):
                if run_manager is not None:
                    run_manager.on_llm_new_token(item.message.text, chunk=item)
                yield item
            else:
                dispatch_status(status_payload(item, call.model), run_manager)

    # -- batch: native async concurrency on the loop thread ------------------------------------

    @override
    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """``abatch`` on the loop thread: one client, ``max_concurrency`` honoured, no threads.

        The caller's context variables (tracing, parent runs) are carried over to the loop.
        """
        if not inputs:
            return []
        if on_loop_thread():  # a sync batch from a callback on the loop thread itself
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        context = contextvars.copy_context()

        async def run() -> list[AIMessage]:
            for variable, value in context.items():
                variable.set(value)
            return await self.abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)

        answers: list[AIMessage] = self._handle.run(run())
        return answers

    # -- the public entry points pin the run so status events belong to it (see _events) ----

    def _pin_run(self, config: RunnableConfig | None) -> tuple[PinnedRun, RunnableConfig]:
        ensured = ensure_config(config)
        run_id = ensured.get("run_id") or uuid7()
        ensured["run_id"] = run_id
        run = PinnedRun(
            run_id=run_id,
            config=ensured,
            callbacks=self.callbacks,
            verbose=self.verbose,
            tags=self.tags,
            metadata=self.metadata,
        )
        return run, ensured

    @override
    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        run, config = self._pin_run(config)
        token = current_run().set(run)
        try:
            return super().invoke(input, config, stop=stop, **kwargs)
        finally:
            current_run().reset(token)

    @override
    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        run, config = self._pin_run(config)
        token = current_run().set(run)
        try:
            return await super().ainvoke(input, config, stop=stop, **kwargs)
        finally:
            current_run().reset(token)

    @override
    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        run, config = self._pin_run(config)
        variable = current_run()
        chunks = cast(
            "Generator[AIMessageChunk, None, None]",
            super().stream(input, config, stop=stop, **kwargs),
        )
        try:
            while True:  # set around each step only: a generator must not leak its context
                token = variable.set(run)
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                finally:
                    variable.reset(token)
                yield chunk
        finally:
            chunks.close()

    @override
    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        run, config = self._pin_run(config)
        variable = current_run()
        chunks = cast(
            "AsyncGenerator[AIMessageChunk, None]",
            super().astream(input, config, stop=stop, **kwargs),
        )
        try:
            while True:
                token = variable.set(run)
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    variable.reset(token)
                yield chunk
        finally:
            await chunks.aclose()

    # -- tool calling: declined with what to do instead --------------------------------------

    @override
    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Refused: Janus-Pro has no tool calling (so no agent can use it as its planner)."""
        raise NotImplementedError(
            "Janus-Pro has no tool calling, so ChatJanus cannot plan for an agent (bind_tools, "
            "create_agent, create_react_agent). Use a tool-calling chat model as the planner and "
            "give it Janus as tools: langchain_janus.JanusImageQuestion (to look at images) and "
            "JanusImageGenerator (to draw them); for typed answers use with_structured_output."
        )

    # -- structured output: prompted and validated (Janus-Pro has no function calling) --------

    @override
    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        repair: bool = True,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A chain answering with ``schema`` (pydantic model, TypedDict or JSON-schema dict).

        Prompted and validated: the schema is described in the question, the answer parsed and
        checked; a bad answer gets one repair round (the same messages and image, the answer
        and what was wrong), then ``OutputParserException``. ``include_raw=True`` returns
        ``{"raw", "parsed", "parsing_error"}`` instead of raising. ``method="json_mode"``
        asks for a JSON object without describing the schema; ``"function_calling"`` raises.
        See ``langchain_janus._structured``.
        """
        from ._structured import structured_output

        return structured_output(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            repair=repair,
            **kwargs,
        )
