"""Validation of the Space's generation parameters against the ranges its sliders allow."""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidInputError

__all__ = ["check_range", "check_seed", "check_text", "check_unit"]

MAX_SEED = 2**32 - 1  # the demo seeds numpy, which takes 0 .. 2**32 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """An integer seed in 0 .. 2**32-1 (the Space's ``gr.Number(precision=0)``)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInputError(f"{name} must be an integer, not {type(seed).__name__} {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"{name} must be between 0 and {MAX_SEED}, not {seed}")
    return seed


def check_range(value: Any, name: str, low: float, high: float) -> float:
    """A finite number in ``[low, high]``; bools and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be a number, not {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return number


def check_unit(value: Any, name: str) -> float:
    """A number in [0, 1] (``top_p`` and the temperatures)."""
    return check_range(value, name, 0.0, 1.0)


def check_text(value: Any, name: str) -> str:
    """A non-blank string (the question or the prompt)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{name} is empty")
    return value


def check_stop(stop: Any) -> tuple[str, ...]:
    """Stop sequences: a sequence of non-empty strings (a single string is refused)."""
    if isinstance(stop, str) or not isinstance(stop, (list, tuple)):
        raise InvalidInputError(f"stop must be a list of strings, not {type(stop).__name__}")
    for item in stop:
        if not isinstance(item, str) or not item:
            raise InvalidInputError(f"every stop sequence must be a non-empty string, not {item!r}")
    return tuple(stop)


def check_max_new_tokens(value: Any, limit: int) -> int | None:
    """None, or a whole number of new tokens from 1 to ``limit``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidInputError(
            f"max_new_tokens must be an integer from 1 to {limit}, not {value!r}"
        )
    return value
