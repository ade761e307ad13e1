"""The progress display: plain lines in a pipe, one redrawn line on a terminal, notes above it,
and the core's log records routed through it."""

from __future__ import annotations

import io
import logging
import time

from janus_space import Failover, Heartbeat, Log, Progress, Queued, Started
from janus_space.cli import StatusDisplay
from janus_space.cli._display import describe_event, route_logging


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_event_texts() -> None:
    assert describe_event(Queued(rank=2, queue_size=5, eta=31.4)) == (
        "waiting in the queue: position 3 of 5, about 31s to go"
    )
    assert describe_event(Queued()) == "waiting in the queue"
    assert describe_event(Started(eta=2.5)) == "running (about 2.5s)"
    assert describe_event(Started()) == "running"
    assert describe_event(Progress("drawing", 3, 10, "steps")) == "drawing 3/10 steps"
    assert describe_event(Progress(progress=0.25)) == "working 25%"
    assert describe_event(Log("hello", "warning")) == "janus-space: the Space warns: hello"
    assert describe_event(Log("hi")) == "janus-space: the Space says: hi"
    assert describe_event(Heartbeat()) is None
    assert describe_event(Failover("a/b", "quota used up", 90.0, "http://copy:1")) == (
        "janus-space: a/b skipped: quota used up (for 90s); trying http://copy:1"
    )


def test_queue_positions_follow_the_cores_one_convention() -> None:
    """Every position shown is ``Queued.position`` (1 = next), whatever the rank and size."""
    for rank in range(0, 40, 3):
        for size in (None, rank + 1, rank + 7):
            event = Queued(rank=rank, queue_size=size)
            text = describe_event(event)
            assert text is not None and event.position == rank + 1
            assert f"position {event.position}" in text
            assert f"position {rank}" not in text.replace(f"position {rank + 1}", "")
            if size is not None:
                assert text.endswith(f"position {rank + 1} of {size}")


def test_plain_stream_gets_one_line_per_change_and_no_control_codes() -> None:
    stream, clock = io.StringIO(), FakeClock()
    display = StatusDisplay(stream, clock=clock)
    assert display.live is False
    display.start("asking the Space")
    clock.now += 1.5
    display.event(Queued(rank=0, queue_size=1))
    display.event(Queued(rank=0, queue_size=1))  # unchanged: no new line
    display.event(Heartbeat())
    display.event(Log("note from the app"))
    clock.now += 12
    display.event(Started())
    display.stop()
    assert stream.getvalue().splitlines() == [
        "janus-space: [0.0s] asking the Space",
        "janus-space: [1.5s] waiting in the queue: position 1 of 1",
        "janus-space: the Space says: note from the app",
        "janus-space: [14s] running",
    ]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_quiet_hides_status_and_info_but_keeps_warnings_and_notes() -> None:
    stream = io.StringIO()
    display = StatusDisplay(stream, quiet=True)
    display.start("asking the Space")
    display.event(Started())
    display.event(Log("chatty"))
    display.event(Log("careful", "warning"))
    display.note("janus-space: warning: something")
    display.stop()
    assert stream.getvalue().splitlines() == [
        "janus-space: the Space warns: careful",
        "janus-space: warning: something",
    ]


def test_terminal_gets_one_redrawn_line_that_is_erased_at_the_end() -> None:
    stream, clock = Terminal(), FakeClock()
    display = StatusDisplay(stream, clock=clock)
    assert display.live is True
    display.start("asking the Space")
    clock.now += 3
    display.event(Progress("drawing", 1, 4, "steps"))
    display.note("janus-space: the Space says: hi")
    display.stop()
    text = stream.getvalue()
    assert "\n" not in text.replace("janus-space: the Space says: hi\n", "")
    assert "⠋ drawing 1/4 steps · 3.0s" in text
    assert text.endswith("\r\x1b[2K")  # the status line is gone, the note stays
    assert "\r\x1b[2Kjanus-space: the Space says: hi\n\r\x1b[2K⠋ drawing 1/4 steps" in text


def test_terminal_clock_keeps_moving_between_events() -> None:
    stream = Terminal()
    display = StatusDisplay(stream)
    display.start("waiting")
    time.sleep(0.8)
    display.stop()
    frames = [part for part in stream.getvalue().split("\r\x1b[2K") if part]
    assert len(frames) >= 3, frames  # redrawn by the ticker, not only on events


def test_ascii_spinner_when_the_terminal_is_not_utf8() -> None:
    stream = Terminal()
    stream.encoding = "ascii"
    display = StatusDisplay(stream)
    display.start("x")
    display.stop()
    assert stream.getvalue().startswith("\r\x1b[2K| x")


def test_core_log_records_become_notes_and_the_logger_is_restored() -> None:
    stream = io.StringIO()
    display = StatusDisplay(stream)
    logger = logging.getLogger("janus_space")
    before = (list(logger.handlers), logger.level, logger.propagate)
    with route_logging(display):
        logger.warning("no HF token (HF_TOKEN) set")
        logger.info("retrying")  # not shown unless verbose
    with route_logging(display, verbose=True):
        logger.info("retry 1/2")
    assert stream.getvalue().splitlines() == [
        "janus-space: warning: no HF token (HF_TOKEN) set",
        "janus-space: info: retry 1/2",
    ]
    assert (list(logger.handlers), logger.level, logger.propagate) == before
