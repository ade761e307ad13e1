"""Prompted structured output, framework-neutral: schema → answer instructions → checked JSON.

Janus-Pro has no function calling and the Space no constrained decoding: a structured answer
is asked for in words and checked afterwards. This module holds the parts both adapters share:

* :func:`answer_format` renders a JSON schema as concise instructions (a one-line sketch of
  the object with types in place of values, then the field descriptions) — far fewer tokens
  than the schema itself, which matters inside Janus-Pro's 4096-token context;
* :func:`find_json_object` finds the JSON object in a free-text answer (code fences, prose
  before or after, Python-style single quotes) with the standard library's decoders, and says
  plainly when there is none or when it was cut off;
* :meth:`AnswerFormat.repair_request` is the follow-up question of the one repair round, and
  :meth:`AnswerFormat.check_fits` the check, before any request, that the prompt fits.

Validation against the schema is the adapters' job (pydantic, jsonschema);
:func:`describe_validation_error` turns pydantic's errors into the repair turn's text.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError, PromptTooLongError
from .prompt import DEFAULT_TOKEN_BUDGET, estimate_tokens

__all__ = [
    "MAX_PROBLEM_CHARS",
    "AnswerFormat",
    "AnswerProblem",
    "answer_format",
    "describe_validation_error",
    "find_json_object",
]

MAX_PROBLEM_CHARS = 600
"""The longest description of a bad answer the repair turn quotes (it must fit the budget)."""
_MAX_DEPTH = 6  # nesting shown in a sketch; deeper objects are written {...}
_MAX_STARTS = 32  # "{" positions tried as the start of the object ("}" as its end)
_LITERAL_STARTS = 4  # of those, how many are also tried as a Python literal
_MAX_ERRORS = 6  # validation errors quoted in a repair turn
_WHOLE = "the whole object"  # what a "$ref": "#" (the schema itself) is called in a sketch


class AnswerProblem(ValueError):
    """An answer holding no usable JSON object; the message says why (it is sent back)."""


# --- schema → instructions -------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerFormat:
    """What a structured call adds to the question, and the repair turn's wording."""

    instructions: str
    """The text appended to the last user message."""
    name: str = "the answer"
    """How errors name the schema (its title, if it has one)."""
    schema: Mapping[str, Any] | None = field(default=None, repr=False)

    def add_to(self, question: str) -> str:
        """``question`` followed by the instructions (a blank line between)."""
        question = question.rstrip()
        return f"{question}\n\n{self.instructions}" if question else self.instructions

    def repair_request(self, problem: str) -> str:
        """The follow-up user turn after a bad answer: what was wrong, then the instructions."""
        problem = _clip(problem.strip().rstrip("."), MAX_PROBLEM_CHARS)
        return (
            f"Your previous answer could not be used: {problem}. Answer the question above "
            f"again.\n{self.instructions}"
        )

    def check_fits(
        self,
        question: str,
        fixed: Sequence[str] = (),
        *,
        repair: bool = True,
        budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        """Raise ``InvalidInputError`` unless the prompts of this call fit ``budget`` tokens.

        ``fixed`` are the texts the Space's flattening never trims (the system messages);
        earlier turns may be trimmed, the last user message with the instructions may not, nor,
        in a repair round, the repair turn.
        """
        parts = [text.strip() for text in fixed if text.strip()]
        first = estimate_tokens("\n\n".join([*parts, self.add_to(question)]))
        need = first
        if repair:
            worst = self.repair_request("x" * MAX_PROBLEM_CHARS)
            need = max(need, estimate_tokens("\n\n".join([*parts, worst])))
        if need <= budget:
            return
        raise PromptTooLongError(
            f"the structured-output prompt for {self.name} needs about {need} tokens (the "
            f"schema's instructions alone about {estimate_tokens(self.instructions)}), more "
            f"than the {budget} Janus-Pro has room for beside the image and the answer: use a "
            "smaller schema (fewer fields, shorter descriptions) or a shorter question and "
            "system prompt"
        )


def answer_format(schema: Mapping[str, Any] | None, *, describe: bool = True) -> AnswerFormat:
    """Instructions asking for one JSON object; ``describe`` adds the schema's sketch and notes.

    ``schema`` is a JSON schema (``$ref``/``$defs`` resolved here) whose top level is an
    object, or None for any JSON object (LangChain's ``json_mode`` without a schema).
    """
    lines = ["Answer with only a JSON object and no other text."]
    name = "the answer"
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise InvalidInputError(f"the schema must be a JSON schema dict, not {schema!r}")
        top = _resolve(schema, schema)
        if top.get("type", "object") != "object" and "properties" not in top:
            raise InvalidInputError(
                f"structured output needs a schema for a JSON object, not type {top.get('type')!r}"
            )
        title = top.get("title")
        name = f"schema {title!r}" if isinstance(title, str) and title else "the schema"
        if describe:
            description = top.get("description")
            if isinstance(description, str) and description.strip():
                lines.append(f"The object: {' '.join(description.split())}")
            lines.append("Its form, with a type in place of each value:")
            lines.append(_sketch(schema, schema, 0, (_WHOLE,)))
            notes = list(_notes(schema, schema, "", (_WHOLE,)))
            if notes:
                lines.append("Fields:")
                lines.extend(f"- {path}: {text}" for path, text in notes)
    return AnswerFormat("\n".join(lines), name, schema)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) to its schema."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return node
    if ref == "#":
        return root
    target: Any = root
    for key in ref[2:].split("/"):
        target = target.get(key) if isinstance(target, Mapping) else None
    if not isinstance(target, Mapping):
        raise InvalidInputError(f"the schema's $ref {ref!r} points nowhere")
    return target


def _ref_name(node: Mapping[str, Any]) -> str | None:
    """The name a local ``$ref`` points to (``#`` is the whole schema), else None."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    return ref.rsplit("/", 1)[-1] if ref != "#" else _WHOLE


def _sketch(node: Any, root: Mapping[str, Any], depth: int, seen: tuple[str, ...]) -> str:
    """One schema node as a compact sketch, e.g. ``{"name": string, "tags": [string, ...]}``."""
    if not isinstance(node, Mapping):
        return "value"
    ref = _ref_name(node)
    if ref is not None:
        if ref in seen:
            return f"<same form as {ref}>"  # recursive: named instead of expanded forever
        return _sketch(_resolve(node, root), root, depth, (*seen, ref))
    if "const" in node:
        return json.dumps(node["const"], ensure_ascii=False)
    if isinstance(node.get("enum"), list):
        return " or ".join(json.dumps(value, ensure_ascii=False) for value in node["enum"])
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and options:
            sketches = [_sketch(option, root, depth, seen) for option in options]
            return " or ".join(dict.fromkeys(sketches))
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return _sketch(all_of[0], root, depth, seen)
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(_sketch({**node, "type": k}, root, depth, seen) for k in kind)
    if kind == "object" or "properties" in node:
        return _object_sketch(node, root, depth, seen)
    if kind == "array":
        items = node.get("items")
        inner = _sketch(items, root, depth + 1, seen) if isinstance(items, Mapping) else "value"
        return f"[{inner}, ...]"
    if kind in ("string", "number", "integer", "boolean", "null"):
        fmt = node.get("format")
        return f"{kind} ({fmt})" if isinstance(fmt, str) else str(kind)
    return "value"


def _object_sketch(
    node: Mapping[str, Any], root: Mapping[str, Any], depth: int, seen: tuple[str, ...]
) -> str:
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            return f"{{string: {_sketch(extra, root, depth + 1, seen)}, ...}}"
        return "{...}"
    if depth >= _MAX_DEPTH:
        return "{...}"
    required = set(node.get("required") or ())
    fields = []
    for key, sub in properties.items():
        optional = "" if key in required else " (optional)"
        fields.append(
            f"{json.dumps(key, ensure_ascii=False)}: "
            f"{_sketch(sub, root, depth + 1, seen)}{optional}"
        )
    return "{" + ", ".join(fields) + "}"


def _notes(
    node: Mapping[str, Any], root: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> Sequence[tuple[str, str]]:
    """``(path, description)`` for every described field, e.g. ``("items[].price", "in euros")``."""
    ref = _ref_name(node)
    if ref is not None:
        if ref in seen:
            return []
        node, seen = _resolve(node, root), (*seen, ref)
    found: list[tuple[str, str]] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key) or ():
            if isinstance(option, Mapping):
                found += _notes(option, root, path, seen)
    items = node.get("items")
    if isinstance(items, Mapping):
        found += _notes(items, root, f"{path}[]", seen)
    properties = node.get("properties")
    if isinstance(properties, Mapping) and len(path.split(".")) <= _MAX_DEPTH:
        for name, sub in properties.items():
            if not isinstance(sub, Mapping):
                continue
            here = f"{path}.{name}" if path else str(name)
            description = sub.get("description")
            if isinstance(description, str) and description.strip():
                found.append((here, " ".join(description.split())))
            found += _notes(sub, root, here, seen)
    return list(dict.fromkeys(found))


# --- free text → the JSON object ----------------------------------------------------------------


def find_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer; ``AnswerProblem`` says why when there is none.

    From each ``{`` in turn (the outermost first; those inside a broken object are skipped):
    JSON (``json.JSONDecoder.raw_decode``, so code fences, prose before it and text after it
    do not matter, and an echoed sketch that is not JSON is passed over), else a Python
    literal (``ast.literal_eval``: single-quoted keys and strings). An object cut off before
    its end is reported as such, never completed: closing it would silently drop whatever the
    model had not written yet.
    """
    if not isinstance(text, str):
        raise AnswerProblem(f"the answer is a {type(text).__name__}, not text")
    starts = [index for index, char in enumerate(text) if char == "{"][:_MAX_STARTS]
    if not starts:
        raise AnswerProblem("the answer holds no JSON object (it has no '{')")
    decoder = json.JSONDecoder(strict=False)  # raw newlines inside strings are common
    ends = [index for index, char in enumerate(text) if char == "}"][::-1][:_MAX_STARTS]
    first_error: json.JSONDecodeError | None = None
    reached = -1  # how far a failed attempt read: a "{" before that is nested inside it
    literal_tries = _LITERAL_STARTS
    for start in starts:
        if start < reached:
            continue  # part of a broken object: its inner objects are not the answer
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
            if _runs_to_the_end(exc, text):
                raise AnswerProblem(
                    "the JSON object is cut off before its end (the answer is limited in "
                    "length): give a shorter answer"
                ) from None  # every later "{" lies inside this unfinished object
            if literal_tries > 0:  # the outer object first, also when it is Python-style
                literal_tries -= 1
                literal = _python_literal(text, start, ends)
                if literal is not None:
                    return literal
            reached = max(reached, exc.pos)
            continue
        if isinstance(value, dict):
            return value
        reached = max(reached, end)
    if first_error is None:  # pragma: no cover - a "{" always decodes to a dict or fails
        raise AnswerProblem("the answer holds no JSON object")
    context = text[max(0, first_error.pos - 20) : first_error.pos + 20]
    raise AnswerProblem(
        f"the answer's JSON object is not valid JSON ({first_error.msg} near {context!r})"
    )


def _runs_to_the_end(error: json.JSONDecodeError, text: str) -> bool:
    """The decoder ran out of text (an unfinished object), rather than meeting a wrong char."""
    rest = text[error.pos :].strip().strip("`").strip()
    return not rest or error.msg.startswith("Unterminated string")


def _python_literal(text: str, start: int, ends: Sequence[int]) -> dict[str, Any] | None:
    """A dict written as a Python literal (``{'a': 'b'}``) from ``start`` to one of ``ends``."""
    for end in ends:  # the longest span first
        if end <= start:
            break
        try:
            value = ast.literal_eval(text[start : end + 1])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict) and all(isinstance(key, str) for key in value):
            return value
    return None


# --- validation errors → the repair turn's text ------------------------------------------------


def describe_validation_error(error: Exception) -> str:
    """A pydantic ``ValidationError`` (anything with ``errors()``) as one short line per field."""
    errors = getattr(error, "errors", None)
    try:
        items = list(errors()) if callable(errors) else []
    except Exception:  # any failure here falls back to the plain message
        items = []
    if not items:
        return _clip(" ".join(str(error).split()), MAX_PROBLEM_CHARS)
    parts = []
    for item in items[:_MAX_ERRORS]:
        where = ".".join(str(part) for part in item.get("loc", ())) or "the object"
        message = str(item.get("msg", "is not valid"))
        if "input" in item and item.get("type") != "missing":
            message += f" (got {_clip(json.dumps(item['input'], default=str), 60)})"
        parts.append(f"{where}: {message}")
    if len(items) > _MAX_ERRORS:
        parts.append(f"and {len(items) - _MAX_ERRORS} more")
    return _clip("; ".join(parts), MAX_PROBLEM_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
