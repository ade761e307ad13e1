"""Every error the client can raise has one documented exit code and a one-line message, and
the README's table of errors names every error class."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import janus_space.errors as errors_module
from janus_space import (
    AccessDeniedError,
    AppError,
    GPUUnavailableError,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    MissingImageError,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    SpaceUnavailableError,
)
from janus_space.cli import EXIT_CODES, exit_code_for
from janus_space.cli._errors import describe_error, error_record, format_wait
from janus_space.errors import PromptTooLongError

ERROR_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, JanusError)
    ),
    key=lambda cls: cls.__name__,
)

EXPECTED = {
    InvalidInputError: 2,
    PromptTooLongError: 2,
    QuotaExceededError: 3,
    RateLimitedError: 3,
    SpaceUnavailableError: 4,
    QueueFullError: 4,
    GPUUnavailableError: 4,
    JanusConnectionError: 5,
    JanusTimeoutError: 5,
    ProtocolError: 5,
    AppError: 6,
    MissingImageError: 6,
    ResultUnavailableError: 6,
    AccessDeniedError: 7,
    JanusError: 1,
}


def test_the_expected_table_covers_every_error_class() -> None:
    assert set(ERROR_CLASSES) == set(EXPECTED), "a new error class needs an exit code"


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_error_class_has_its_exit_code(cls: type[JanusError]) -> None:
    error = cls.__new__(cls)
    Exception.__init__(error, "boom")
    assert exit_code_for(error) == EXPECTED[cls]
    assert exit_code_for(error) in EXIT_CODES


def test_help_text_of_each_code_names_its_classes() -> None:
    for cls, code in EXPECTED.items():
        if cls is not JanusError:
            assert cls.__name__ in EXIT_CODES[code]


def test_unexpected_exceptions_exit_1() -> None:
    assert exit_code_for(RuntimeError("x")) == 1


def test_quota_message_is_one_line_with_the_time_to_retry() -> None:
    error = QuotaExceededError(
        "You have exceeded your GPU quota (60s requested vs. 42s left). Try again in 0:02:05.",
        retry_after=125,
    )
    line = describe_error(error, token_set=False, base_url=None)
    assert "\n" not in line
    assert line.startswith("janus-space: quota exceeded: You have exceeded your GPU quota")
    assert "retry in 0:02:05 (at " in line
    assert "Try again in" not in line  # said once, by us
    assert "set HF_TOKEN" in line
    assert "HF_TOKEN" not in describe_error(error, token_set=True, base_url=None)


def test_connection_hint_points_local_users_at_the_replica() -> None:
    error = JanusConnectionError("config: cannot connect to 127.0.0.1:7860")
    assert "janus-space replica" in describe_error(error, base_url="http://127.0.0.1:7860")
    assert "replica" not in describe_error(error, base_url="https://x-y.hf.space")


def test_server_text_with_newlines_stays_on_one_line() -> None:
    line = describe_error(AppError("line one\nline two\n\n  three"))
    assert line == "janus-space: Space error: line one line two three"


def test_json_record() -> None:
    record = error_record(RateLimitedError("slow down", retry_after=30))
    assert record == {
        "error": {
            "type": "RateLimitedError",
            "message": "slow down",
            "exit_code": 3,
            "retry_after": 30.0,
        }
    }


def test_format_wait() -> None:
    assert format_wait(3725.4, now=0).startswith("1:02:05 (at ")
    assert format_wait(-5, now=0).startswith("0:00:00")


def test_readme_table_names_every_error_class() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Errors", 1)[1].split("\n## ", 1)[0]
    for cls in ERROR_CLASSES:
        assert f"`{cls.__name__}`" in section, f"README's error table lacks {cls.__name__}"
    for code in EXIT_CODES:
        assert f"| {code} " in section or f"| {code}|" in section
