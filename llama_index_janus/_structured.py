"""``JanusPro.structured_predict`` and friends: prompted structured output with one repair round.

LlamaIndex answers ``structured_predict`` on an LLM without function calling with
``LLMTextCompletionProgram`` + ``PydanticOutputParser``: the whole JSON schema is pasted into
the prompt (in 0.14 its braces even arrive doubled) and the answer is cut out with a greedy
``\\{.*\\}`` regex, so prose with braces after the object, single quotes or a cut-off answer
fail, and a validation error ends the call. For Janus this module replaces both parts:

* ``JanusOutputParser`` (a ``PydanticOutputParser``): concise instructions made from the
  schema (``janus_space.structured``), appended to the last user message — whose
  ``ImageBlock``s stay where they are — and tolerant parsing, then pydantic validation;
* ``JanusStructuredProgram``: the call, a budget check before any request, and on a bad
  answer one repair round that re-sends the original messages (so the same image), the bad
  answer and what was wrong. Two failures raise ``OutputParserException``.

A call makes one request when the first answer is valid, two when it is not, never more.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any, Generic, cast

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.output_parsers.base import OutputParserException
from llama_index.core.output_parsers.pydantic import PydanticOutputParser
from llama_index.core.prompts.base import BasePromptTemplate
from llama_index.core.types import BasePydanticProgram, Model
from pydantic import ValidationError

from janus_space import DEFAULT_TOKEN_BUDGET, InvalidInputError
from janus_space.structured import (
    AnswerProblem,
    answer_format,
    describe_validation_error,
    find_json_object,
)

from ._events import dispatcher

if TYPE_CHECKING:
    from llama_index.core.llms.llm import LLM

__all__ = ["JanusOutputParser", "JanusStructuredProgram", "StructuredPredictMixin"]

_SYSTEM_ROLES = (MessageRole.SYSTEM, MessageRole.DEVELOPER)


def _text(message: ChatMessage) -> str:
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock))


class JanusOutputParser(PydanticOutputParser[Model], Generic[Model]):
    """Concise schema instructions in, a validated ``output_cls`` out (see the module doc)."""

    def __init__(self, output_cls: type[Model]) -> None:
        super().__init__(output_cls=output_cls)
        self.answer_format = answer_format(output_cls.model_json_schema())

    def get_format_string(self, escape_json: bool = True) -> str:
        """The instructions; ``escape_json`` doubles braces for use inside a template."""
        text = self.answer_format.instructions
        return text.replace("{", "{{").replace("}", "}}") if escape_json else text

    def format(self, query: str) -> str:
        """``query`` with the instructions after it (applied after templating: no escaping)."""
        return self.answer_format.add_to(query)

    def format_messages(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """The instructions after the last user message's text (never in a system message).

        New message objects: the caller's messages and blocks are not modified.
        """
        if not messages:
            return messages
        *earlier, last = messages
        extra = TextBlock(text="\n" + self.answer_format.instructions)
        asked = ChatMessage(
            role=last.role,
            blocks=[*last.blocks, extra],
            additional_kwargs=dict(last.additional_kwargs),
        )
        return [*earlier, asked]

    def check(self, text: str) -> Model:
        """The validated object in ``text``; ``AnswerProblem`` says what is wrong."""
        value = find_json_object(text)
        try:
            return self.output_cls.model_validate(value)
        except ValidationError as exc:
            raise AnswerProblem(describe_validation_error(exc)) from exc

    def parse(self, text: str) -> Any:
        """``check``, raising LlamaIndex's ``OutputParserException`` (no repair round here)."""
        try:
            return self.check(text)
        except AnswerProblem as exc:
            raise OutputParserException(
                f"the answer does not match {self.answer_format.name}: {exc}"
            ) from exc


class JanusStructuredProgram(BasePydanticProgram[Model]):
    """A prompt → Janus → ``output_cls``, with the budget check and one repair round."""

    def __init__(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm: LLM,
        *,
        repair: bool = True,
    ) -> None:
        self._output_cls = output_cls
        self._prompt = prompt
        self._llm = llm
        self._repair = repair
        self._parser = JanusOutputParser(output_cls)

    @property
    def output_cls(self) -> type[Model]:
        return self._output_cls

    def _messages(self, prompt_args: dict[str, Any]) -> list[ChatMessage]:
        """The prompt's messages (system prompt added), checked against the budget."""
        messages = list(self._prompt.format_messages(llm=self._llm, **prompt_args))
        messages = self._llm._extend_messages(messages)
        if not messages or messages[-1].role != MessageRole.USER:
            raise InvalidInputError(
                "the prompt's last message must come from the user: the answer instructions "
                "are added to it"
            )
        fixed = [_text(m) for m in messages[:-1] if m.role in _SYSTEM_ROLES]
        self._parser.answer_format.check_fits(
            _text(messages[-1]), fixed, repair=self._repair, budget=DEFAULT_TOKEN_BUDGET
        )
        return messages

    def _repair_messages(
        self, messages: Sequence[ChatMessage], answer: str, problem: str
    ) -> list[ChatMessage]:
        """The original conversation (its image included), the bad answer, what was wrong."""
        return [
            *messages,
            ChatMessage(role=MessageRole.ASSISTANT, content=answer),
            ChatMessage(
                role=MessageRole.USER,
                content=self._parser.answer_format.repair_request(problem),
            ),
        ]

    def _failure(self, answer: str, problem: str, requests: int) -> OutputParserException:
        rounds = "after one repair round" if requests > 1 else "(no repair round)"
        name = self._parser.answer_format.name
        return OutputParserException(
            f"Janus's answer does not match {name} {rounds}: {problem}\nLast answer: {answer!r}"
        )

    def __call__(
        self, llm_kwargs: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Model:
        messages = self._messages(kwargs)
        options = llm_kwargs or {}
        answer = self._llm.chat(self._parser.format_messages(messages), **options)
        text = answer.message.content or ""
        try:
            return self._parser.check(text)
        except AnswerProblem as exc:
            problem = str(exc)
        if not self._repair:
            raise self._failure(text, problem, 1)
        again = self._llm.chat(self._repair_messages(messages, text, problem), **options)
        text = again.message.content or ""
        try:
            return self._parser.check(text)
        except AnswerProblem as exc:
            raise self._failure(text, str(exc), 2) from exc

    async def acall(
        self, llm_kwargs: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Model:
        messages = self._messages(kwargs)
        options = llm_kwargs or {}
        answer = await self._llm.achat(self._parser.format_messages(messages), **options)
        text = answer.message.content or ""
        try:
            return self._parser.check(text)
        except AnswerProblem as exc:
            problem = str(exc)
        if not self._repair:
            raise self._failure(text, problem, 1)
        again = await self._llm.achat(self._repair_messages(messages, text, problem), **options)
        text = again.message.content or ""
        try:
            return self._parser.check(text)
        except AnswerProblem as exc:
            raise self._failure(text, str(exc), 2) from exc

    def stream_call(self, *args: Any, **kwargs: Any) -> Generator[Model, None, None]:
        """The whole object once: Janus answers in one piece, so there are no partial objects."""
        yield self(*args, **kwargs)

    async def astream_call(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Model, None]:
        """Async ``stream_call`` (a coroutine returning the generator, as LlamaIndex's)."""

        async def gen() -> AsyncGenerator[Model, None]:
            yield await self.acall(*args, **kwargs)

        return gen()


def _llm(owner: object) -> LLM:
    return cast("LLM", owner)


class StructuredPredictMixin:
    """``structured_predict`` and its async/streaming forms through ``JanusStructuredProgram``.

    Mixed into ``JanusPro`` ahead of ``CustomLLM``, so ``as_structured_llm`` (whose chat calls
    ``structured_predict``) and LlamaIndex's engines that ask for structured output get the
    Janus program too. LlamaIndex's start/end instrumentation events are kept.
    """

    @dispatcher.span
    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Prompted structured output: the schema asked for in words, the answer validated.

        ``prompt`` may be a ``ChatPromptTemplate`` whose messages hold ``ImageBlock``s; a bad
        answer gets one repair round with the same messages, then ``OutputParserException``.
        """
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
        program = JanusStructuredProgram(output_cls, prompt, _llm(self))
        result = program(llm_kwargs=llm_kwargs, **prompt_args)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    @dispatcher.span
    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict`` on the caller's event loop."""
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )
        program = JanusStructuredProgram(output_cls, prompt, _llm(self))
        result = await program.acall(llm_kwargs=llm_kwargs, **prompt_args)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    def stream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Model, None, None]:
        """The validated object, once: Janus answers in one piece (no partial objects)."""
        yield self.structured_predict(output_cls, prompt, llm_kwargs, **prompt_args)

    async def astream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: BasePromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Model, None]:
        """Async ``stream_structured_predict``."""

        async def gen() -> AsyncGenerator[Model, None]:
            yield await self.astructured_predict(output_cls, prompt, llm_kwargs, **prompt_args)

        return gen()
