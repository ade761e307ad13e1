"""``ChatJanus.with_structured_output``: the schema asked for in words, the answer checked.

Janus-Pro has no function calling and the Space no JSON mode, so structured output is
*prompted and validated*: concise instructions made from the schema are appended to the last
user message (``janus_space.structured``), the free-text answer is parsed tolerantly
(langchain-core's ``parse_json_markdown`` first, then the JSON object wherever it sits in the
text, then a Python-style literal), and checked against the schema (pydantic, or jsonschema
for a JSON-schema dict). When that fails, one repair round re-sends the original messages
(so the same image), the bad answer and what was wrong as a follow-up user turn; if the second
answer fails too, ``OutputParserException``. A call therefore makes one request when the first
answer is valid and two when it is not, never more.

The chain is built from public Runnable pieces around the chat model itself, so it relies on
no ChatJanus internals::

    prepare (input → messages, budget check)
    | RunnablePassthrough.assign(raw=add instructions | llm)
    | check (parse, validate, repair round)   → {"raw", "parsed", "parsing_error"}
    | parsed-or-raise                          (unless include_raw=True)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.json import parse_json_markdown
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from janus_space import DEFAULT_TOKEN_BUDGET, InvalidInputError
from janus_space.structured import (
    AnswerFormat,
    AnswerProblem,
    answer_format,
    describe_validation_error,
    find_json_object,
)

__all__ = ["Method", "structured_output"]

Method = Literal["json_schema", "json_mode", "function_calling"]
_GENERATION_MODEL = "janus-pro-7b-image"
_REPAIR_TAG = "janus:structured-output-repair"
Validator = Callable[[dict[str, Any]], Any]


def structured_output(
    llm: BaseChatModel,
    schema: Mapping[str, Any] | type | None = None,
    *,
    method: Method = "json_schema",
    include_raw: bool = False,
    strict: bool | None = None,
    repair: bool = True,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, Any]:
    """The structured-output chain around ``llm`` (see the module docstring).

    ``strict`` is accepted for LangChain compatibility; every answer is validated against the
    schema whatever its value (there is no constrained decoding to switch on).
    """
    if kwargs:
        raise InvalidInputError(
            f"with_structured_output() got unsupported arguments {sorted(kwargs)}; ChatJanus "
            "takes schema, method, include_raw, strict and repair"
        )
    if method == "function_calling":
        raise InvalidInputError(
            "ChatJanus has no function calling (Janus-Pro answers in free text): use "
            "method='json_schema' (the default), which asks for the schema in the prompt and "
            "validates the answer"
        )
    if method not in ("json_schema", "json_mode"):
        raise InvalidInputError(f"method must be 'json_schema' or 'json_mode', not {method!r}")
    if strict not in (None, True, False):
        raise InvalidInputError(f"strict must be True, False or None, not {strict!r}")
    if getattr(llm, "model", None) == _GENERATION_MODEL:
        raise InvalidInputError(
            f"structured output needs an answering model, not {_GENERATION_MODEL!r} (which "
            "draws images)"
        )
    if schema is None and method == "json_schema":
        raise InvalidInputError(
            "method='json_schema' needs a schema (a pydantic model, a TypedDict or a JSON-schema "
            "dict); use method='json_mode' for any JSON object"
        )
    json_schema, validate = _schema_and_validator(schema)
    fmt = answer_format(json_schema, describe=method == "json_schema")
    chain = _StructuredChain(llm, fmt, validate, repair=bool(repair)).build()
    if include_raw:
        return chain
    return chain | RunnableLambda(_parsed_or_raise, afunc=_aparsed_or_raise, name="parsed")


# --- schemas ---------------------------------------------------------------------------------


def _schema_and_validator(schema: Mapping[str, Any] | type | None) -> tuple[Any, Validator]:
    """The JSON schema to describe, and the function that validates (and builds) the result."""
    if schema is None:
        return None, lambda value: value
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        model = schema
        return _json_schema(model), model.model_validate
    if isinstance(schema, type) and _is_pydantic_v1(schema):
        return _json_schema(schema), schema.parse_obj  # type: ignore[attr-defined]
    if isinstance(schema, type) and is_typeddict(schema):
        json_schema = _json_schema(schema)
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(schema)
        except Exception:  # typing.TypedDict on Python < 3.12: pydantic refuses it
            return json_schema, _jsonschema_validator(json_schema)
        return json_schema, adapter.validate_python
    if isinstance(schema, Mapping):
        if "parameters" in schema and "name" in schema:  # an OpenAI function definition
            json_schema = _json_schema(schema)
        else:
            json_schema = dict(schema)
        return json_schema, _jsonschema_validator(json_schema)
    raise InvalidInputError(
        f"schema must be a pydantic model, a TypedDict or a JSON-schema dict, not {schema!r}"
    )


def _is_pydantic_v1(schema: type) -> bool:
    try:
        from pydantic import v1
    except ImportError:  # pragma: no cover - pydantic 2 always ships it
        return False
    return issubclass(schema, v1.BaseModel)


def _json_schema(schema: Any) -> dict[str, Any]:
    try:
        return dict(convert_to_json_schema(schema))
    except (ValueError, TypeError, RecursionError) as exc:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_json_schema()  # e.g. recursive models: $refs kept
        raise InvalidInputError(f"the schema cannot be converted to a JSON schema: {exc}") from exc


def _jsonschema_validator(json_schema: dict[str, Any]) -> Validator:
    """Validation of a JSON-schema dict with the ``jsonschema`` package (a langchain extra)."""
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        raise InvalidInputError(
            "checking answers against a JSON-schema dict needs the jsonschema package (pip "
            "install 'janus-space[langchain]'), or pass a pydantic model instead"
        ) from None
    cls = jsonschema.validators.validator_for(json_schema)
    try:
        cls.check_schema(json_schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInputError(f"the JSON schema is not valid: {exc.message}") from None
    checker = cls(json_schema)

    def validate(value: dict[str, Any]) -> dict[str, Any]:
        errors = sorted(checker.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            lines = [
                f"{'.'.join(str(p) for p in error.absolute_path) or 'the object'}: {error.message}"
                for error in errors[:6]
            ]
            raise AnswerProblem("; ".join(lines))
        return value

    return validate


# --- the chain -------------------------------------------------------------------------------


def _to_messages(value: LanguageModelInput) -> list[BaseMessage]:
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(value)]
    if isinstance(value, Sequence):
        return convert_to_messages(value)
    raise InvalidInputError(
        f"a structured call takes a string, a prompt value or messages, not {type(value).__name__}"
    )


def _is_user(message: BaseMessage) -> bool:
    if isinstance(message, HumanMessage):
        return True
    return isinstance(message, ChatMessage) and message.role.lower() in ("user", "human")


def _is_system(message: BaseMessage) -> bool:
    if isinstance(message, SystemMessage):
        return True
    return isinstance(message, ChatMessage) and message.role.lower() in ("system", "developer")


def _append_text(message: BaseMessage, text: str) -> BaseMessage:
    """A copy of ``message`` with ``text`` after its content (a blank line between)."""
    content = message.content
    if isinstance(content, str):
        joined = f"{content.rstrip()}\n\n{text}" if content.strip() else text
        return message.model_copy(update={"content": joined})
    return message.model_copy(update={"content": [*content, {"type": "text", "text": f"\n{text}"}]})


def _strict_json(text: str) -> Any:
    return json.loads(text, strict=False)


class _StructuredChain:
    """The pieces of one structured-output chain: prepare, ask, check (with the repair round)."""

    def __init__(
        self, llm: BaseChatModel, fmt: AnswerFormat, validate: Validator, *, repair: bool
    ) -> None:
        self.llm = llm
        self.format = fmt
        self.validate = validate
        self.repair = repair

    def build(self) -> Runnable[LanguageModelInput, dict[str, Any]]:
        ask = RunnableLambda(self._ask, afunc=self._aask, name="add_answer_instructions")
        return (
            RunnableLambda(self._prepare, afunc=self._aprepare, name="prepare_structured_call")
            | RunnablePassthrough.assign(raw=ask | self.llm)
            | RunnableLambda(self._check, afunc=self._acheck, name="check_structured_answer")
        )

    # prepare: every input error is raised here, before any request

    def _prepare(self, value: LanguageModelInput) -> dict[str, Any]:
        messages = _to_messages(value)
        if not messages or not _is_user(messages[-1]):
            raise InvalidInputError(
                "the last message must come from the user: the answer instructions are added to it"
            )
        fixed = [m.text for m in messages[:-1] if _is_system(m)]
        self.format.check_fits(
            messages[-1].text, fixed, repair=self.repair, budget=DEFAULT_TOKEN_BUDGET
        )
        return {"messages": messages}

    async def _aprepare(self, value: LanguageModelInput) -> dict[str, Any]:
        return self._prepare(value)

    def _ask(self, state: dict[str, Any]) -> list[BaseMessage]:
        *earlier, last = state["messages"]
        return [*earlier, _append_text(last, self.format.instructions)]

    async def _aask(self, state: dict[str, Any]) -> list[BaseMessage]:
        return self._ask(state)

    # check: parse and validate, one repair round

    def _parse(self, message: BaseMessage) -> Any:
        """The validated result of one answer; ``AnswerProblem`` says what is wrong with it."""
        text = message.text
        try:
            value = parse_json_markdown(text, parser=_strict_json)
        except (ValueError, OutputParserException):  # json.JSONDecodeError is a ValueError
            value = None
        if not isinstance(value, dict):
            value = find_json_object(text)
        try:
            return self.validate(value)
        except ValidationError as exc:
            raise AnswerProblem(describe_validation_error(exc)) from exc
        except (TypeError, ValueError) as exc:  # pydantic v1 and custom validators
            if isinstance(exc, AnswerProblem):
                raise
            raise AnswerProblem(describe_validation_error(exc)) from exc

    def _outcome(self, raw: BaseMessage) -> tuple[dict[str, Any] | None, str]:
        try:
            return {"raw": raw, "parsed": self._parse(raw), "parsing_error": None}, ""
        except AnswerProblem as problem:
            return None, str(problem)

    def _repair_messages(
        self, messages: list[BaseMessage], raw: BaseMessage, problem: str
    ) -> list[BaseMessage]:
        """The original conversation (its image included), the bad answer, what was wrong."""
        return [
            *messages,
            AIMessage(raw.text),
            HumanMessage(self.format.repair_request(problem)),
        ]

    def _failure(self, raw: BaseMessage, problem: str, requests: int) -> dict[str, Any]:
        rounds = "after one repair round" if requests > 1 else "(no repair round)"
        error = OutputParserException(
            f"Janus's answer does not match {self.format.name} {rounds}: {problem}",
            llm_output=raw.text,
        )
        return {"raw": raw, "parsed": None, "parsing_error": error}

    @staticmethod
    def _repair_config(config: RunnableConfig) -> RunnableConfig:
        return {**config, "tags": [*(config.get("tags") or []), _REPAIR_TAG]}

    def _check(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        raw: BaseMessage = state["raw"]
        done, problem = self._outcome(raw)
        if done is not None:
            return done
        if not self.repair:
            return self._failure(raw, problem, 1)
        messages = self._repair_messages(state["messages"], raw, problem)
        raw = self.llm.invoke(messages, self._repair_config(config))
        done, problem = self._outcome(raw)
        return done if done is not None else self._failure(raw, problem, 2)

    async def _acheck(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        raw: BaseMessage = state["raw"]
        done, problem = self._outcome(raw)
        if done is not None:
            return done
        if not self.repair:
            return self._failure(raw, problem, 1)
        messages = self._repair_messages(state["messages"], raw, problem)
        raw = await self.llm.ainvoke(messages, self._repair_config(config))
        done, problem = self._outcome(raw)
        return done if done is not None else self._failure(raw, problem, 2)


def _parsed_or_raise(result: dict[str, Any]) -> Any:
    error = result["parsing_error"]
    if error is not None:
        raise error
    return result["parsed"]


async def _aparsed_or_raise(result: dict[str, Any]) -> Any:
    return _parsed_or_raise(result)
