"""Core errors that are also LangChain's provider-neutral ones, so generic handlers catch them.

``with_retry``, fallbacks and trimming middleware written for any provider catch
``langchain_core.exceptions.ModelRateLimitError``, ``ModelTimeoutError``, ``ContextOverflowError``
and friends (langchain-core ≥ 1.8). ChatJanus re-raises each ``janus_space`` error as a class
that is both: ``except janus_space.QuotaExceededError`` and ``except ModelRateLimitError`` both
work. On an older langchain-core without those classes, errors pass through unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any

import janus_space
from janus_space import JanusError

__all__ = ["as_langchain_error"]

# Core error → the name of the langchain-core error it also is (most specific core class first).
_NEUTRAL = (
    (janus_space.PromptTooLongError, "ContextOverflowError"),
    (janus_space.InvalidInputError, "ModelInvalidRequestError"),
    (janus_space.QuotaExceededError, "ModelRateLimitError"),
    (janus_space.RateLimitedError, "ModelRateLimitError"),
    (janus_space.QueueFullError, "ModelRateLimitError"),
    (janus_space.JanusTimeoutError, "ModelTimeoutError"),
    (janus_space.JanusConnectionError, "ModelConnectionError"),
    (janus_space.AccessDeniedError, "ModelAuthenticationError"),
    (janus_space.SpaceUnavailableError, "ModelAPIError"),
    (janus_space.GPUUnavailableError, "ModelAPIError"),
    (janus_space.ProtocolError, "ModelAPIError"),
    (janus_space.ResultUnavailableError, "ModelAPIError"),
    (janus_space.AppError, "ModelAPIError"),
)
_DUAL: dict[type[JanusError], type[JanusError] | None] = {}


def _dual_class(kind: type[JanusError]) -> type[JanusError] | None:
    """``kind`` combined with its langchain-core counterpart (made once), or None."""
    if kind in _DUAL:
        return _DUAL[kind]
    dual: type[JanusError] | None = None
    with contextlib.suppress(ImportError):
        from langchain_core import exceptions

        for core, name in _NEUTRAL:
            neutral = getattr(exceptions, name, None)
            if issubclass(kind, core) and isinstance(neutral, type):
                namespace: dict[str, Any] = {
                    "__module__": __name__,
                    "__doc__": f"{kind.__doc__ or kind.__name__} (also LangChain's {name})",
                }
                dual = type(kind.__name__, (kind, neutral), namespace)
                break
    _DUAL[kind] = dual
    return dual


def as_langchain_error(error: JanusError) -> JanusError:
    """The same error (message, attributes, traceback) as a class LangChain users also catch."""
    dual = _dual_class(type(error))
    if dual is None or isinstance(error, dual):
        return error
    converted = dual.__new__(dual)
    converted.args = error.args
    converted.__dict__.update(error.__dict__)
    return converted.with_traceback(error.__traceback__)
