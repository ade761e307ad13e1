"""Wire messages → typed events, and failed-job texts → typed errors."""

from __future__ import annotations

import pytest

from janus_space import (
    AppError,
    GPUUnavailableError,
    Heartbeat,
    Log,
    MissingImageError,
    Progress,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    SpaceUnavailableError,
    Started,
)
from janus_space.errors import clean_server_text, error_from_app_message, parse_retry_after
from janus_space.events import JobCompleted, Queued, StreamError, parse_message
from janus_space.http import error_for_status
from janus_space.retry import Backoff


def test_estimation_becomes_queued() -> None:
    event = parse_message(
        {"msg": "estimation", "event_id": "e", "rank": 2, "queue_size": 5, "rank_eta": 3.5}
    )
    assert event == Queued(rank=2, queue_size=5, eta=3.5)


def test_process_starts_progress_log_heartbeat() -> None:
    assert parse_message({"msg": "process_starts", "eta": None}) == Started(eta=None)
    progress = parse_message(
        {
            "msg": "progress",
            "progress_data": [
                {"index": 1, "length": 4, "unit": "steps", "progress": None, "desc": "drawing"}
            ],
        }
    )
    assert progress == Progress(desc="drawing", index=1, length=4, unit="steps", progress=None)
    assert parse_message({"msg": "log", "log": "hi", "level": "warning"}) == Log("hi", "warning")
    assert parse_message({"msg": "heartbeat"}) == Heartbeat()


def test_completed_and_stream_error_and_unknown() -> None:
    done = parse_message({"msg": "process_completed", "success": False, "output": {"error": None}})
    assert done == JobCompleted(success=False, output={"error": None})
    assert parse_message(
        {"msg": "unexpected_error", "message": "404: Session not found."}
    ) == StreamError("404: Session not found.")
    assert parse_message({"msg": "send_hash"}) is None


def test_progress_with_garbage_fields_does_not_crash() -> None:
    assert parse_message({"msg": "progress", "progress_data": "nonsense"}) == Progress()
    assert parse_message({"msg": "progress", "progress_data": [42]}) == Progress()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Try again in 23:51:22.", 85882.0),
        ("try again in 0:00:07", 7.0),
        ("Try again in 05:00", 300.0),
        ("soon", None),
    ],
)
def test_retry_after_parsing(text: str, seconds: float | None) -> None:
    assert parse_retry_after(text) == seconds


def test_quota_text_is_parsed_and_html_cut() -> None:
    raw = (
        "'You have exceeded your GPU quota (60s requested vs. 42s left). Try again in 0:01:05. "
        '<a href="https://huggingface.co/settings/billing">Subscribe to PRO</a>\''
    )
    error = error_from_app_message(raw, fn="multimodal_understanding")
    assert isinstance(error, QuotaExceededError)
    assert (error.requested, error.left, error.retry_after) == (60.0, 42.0, 65.0)
    assert "<a" not in str(error) and "href" not in str(error)


def test_zerogpu_transient_failures_are_gpu_unavailable() -> None:
    assert isinstance(error_from_app_message("No GPU was available"), GPUUnavailableError)
    assert isinstance(error_from_app_message("GPU task aborted"), GPUUnavailableError)


def test_null_error_of_understanding_means_missing_image() -> None:
    assert isinstance(
        error_from_app_message(None, fn="multimodal_understanding"), MissingImageError
    )
    assert isinstance(
        error_from_app_message("AttributeError", fn="multimodal_understanding"), MissingImageError
    )
    generic = error_from_app_message(None, fn="generate_image")
    assert type(generic) is AppError


def test_app_error_keeps_title_and_strips_tags() -> None:
    error = error_from_app_message("Something <b>bad</b> happened", title="Model failure")
    assert type(error) is AppError
    assert str(error) == "Model failure: Something bad happened"
    assert clean_server_text('"quoted"') == "quoted"


def test_http_statuses_map_to_typed_errors() -> None:
    limited = error_for_status(429, {"Retry-After": "12"}, b"", "join")
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 12.0
    full = error_for_status(
        503, {}, b'{"detail": "Queue is full. Max size is 1 and size is 1."}', "join"
    )
    assert isinstance(full, QueueFullError)
    asleep = error_for_status(
        503, {"Content-Type": "text/html"}, b"<html>sleeping</html>", "config"
    )
    assert isinstance(asleep, SpaceUnavailableError) and asleep.status == 503
    html_page = error_for_status(200 + 2, {"Content-Type": "text/html"}, b"<html/>", "config")
    assert isinstance(html_page, SpaceUnavailableError)


def test_backoff_grows_and_honours_retry_after() -> None:
    backoff = Backoff(base=1.0, cap=8.0, max_wait=30.0)
    assert 0.5 <= (backoff.delay(0) or 0) <= 1.0
    assert 4.0 <= (backoff.delay(3) or 0) <= 8.0
    assert backoff.delay(0, retry_after=20.0) == 20.0
    assert backoff.delay(0, retry_after=31.0) is None
