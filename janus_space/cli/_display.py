"""Progress of a Space call on stderr: one updating line on a terminal, plain lines otherwise.

A ZeroGPU call can wait in a queue for minutes, so the user sees where it stands (queue
position, ETA, the function's progress steps) and how long it has been going. On a terminal a
small thread redraws the line every quarter second so the clock keeps moving between events;
in a pipe or a log each new status is one plain line and nothing is redrawn.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from janus_space import Failover, Heartbeat, Log, Progress, Queued, Started, StatusEvent

__all__ = ["StatusDisplay", "describe_event", "route_logging"]

_SPINNER_UTF8 = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "|/-\\"
_TICK_SECONDS = 0.25


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def describe_event(event: StatusEvent) -> str | None:
    """A short status text for an event; None for events that change nothing (heartbeats)."""
    if isinstance(event, Queued):
        text = "waiting in the queue"
        if event.position is not None:  # 1 = next, the one convention shown to users
            text += f": position {event.position}"
            if event.queue_size is not None:
                text += f" of {event.queue_size}"
        if event.eta is not None:
            text += f", about {_seconds(event.eta)} to go"
        return text
    if isinstance(event, Started):
        return "running" + (f" (about {_seconds(event.eta)})" if event.eta is not None else "")
    if isinstance(event, Progress):
        text = event.desc or "working"
        if event.index is not None and event.length:
            text += f" {event.index}/{event.length}"
            if event.unit and event.unit != event.desc:
                text += f" {event.unit}"
        elif event.progress is not None:
            text += f" {event.progress * 100:.0f}%"
        return text
    if isinstance(event, Log):
        kind = "warns" if event.level == "warning" else "says"
        return f"janus-space: the Space {kind}: {event.message}"
    if isinstance(event, Failover):
        text = f"janus-space: {event.endpoint} skipped: {event.reason}"
        if event.retry_after is not None:
            text += f" (for {_seconds(event.retry_after)})"
        if event.next_endpoint:
            text += f"; trying {event.next_endpoint}"
        return text
    if isinstance(event, Heartbeat):
        return None
    return None


class StatusDisplay:
    """Shows the status of the current call on ``stream`` (stderr) and prints notes above it.

    ``live`` (default: whether ``stream`` is a terminal and ``TERM`` is not ``dumb``) chooses
    the updating line; ``quiet`` hides the status and the Space's info messages but still
    prints notes and the Space's warnings.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool | None = None,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if live is None:
            isatty = getattr(stream, "isatty", None)
            live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.stream = stream
        self.live = live
        self.quiet = quiet
        self._clock = clock
        encoding = (getattr(stream, "encoding", None) or "").lower()
        self._spinner = _SPINNER_UTF8 if "utf" in encoding else _SPINNER_ASCII
        self._lock = threading.RLock()
        self._status: str | None = None
        self._started = 0.0
        self._frame = 0
        self._drawn = False
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the status line -----------------------------------------------------------------

    def start(self, status: str) -> None:
        """Begin showing a call's status (and, on a terminal, its running clock)."""
        with self._lock:
            self._started = self._clock()
            self._status = None
        self.update(status)
        if self.live and not self.quiet and self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="janus-status", daemon=True)
            self._ticker.start()

    def event(self, event: StatusEvent) -> None:
        """Show one event of the call: logs as notes, everything else as the status."""
        text = describe_event(event)
        if text is None:
            return
        if isinstance(event, Log):
            if not (self.quiet and event.level != "warning"):
                self.note(text)
        elif isinstance(event, Failover):
            if not self.quiet:
                self.note(text)
        else:
            self.update(text)

    def update(self, status: str) -> None:
        """Replace the status; a plain stream gets a line only when the status changes."""
        with self._lock:
            if status == self._status:
                return
            self._status = status
            if self.quiet:
                return
            if self.live:
                self._draw()
            else:
                elapsed = self._clock() - self._started
                self._write(f"janus-space: [{_seconds(elapsed)}] {status}\n")

    def stop(self) -> None:
        """Stop the clock and erase the status line."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            self._stop.set()
            ticker.join(timeout=2)
        with self._lock:
            self._erase()
            self._status = None

    @contextmanager
    def showing(self, status: str) -> Iterator[StatusDisplay]:
        """``start(status)`` ... ``stop()`` as a context manager."""
        self.start(status)
        try:
            yield self
        finally:
            self.stop()

    # -- notes ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Print a lasting line (a warning, a Space log) above the status line."""
        with self._lock:
            self._erase()
            self._write(text.rstrip("\n") + "\n")
            if self._status is not None and self.live and not self.quiet:
                self._draw()

    # -- drawing -------------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_SECONDS):
            with self._lock:
                if self._status is not None:
                    self._frame += 1
                    self._draw()

    def _draw(self) -> None:
        elapsed = self._clock() - self._started
        spinner = self._spinner[self._frame % len(self._spinner)]
        line = f"{spinner} {self._status} · {_seconds(elapsed)}"
        width = shutil.get_terminal_size((80, 24)).columns - 1
        if len(line) > width:
            line = line[: max(0, width - 1)] + "…"
        self._write("\r\x1b[2K" + line)
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self._write("\r\x1b[2K")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed (e.g. a pipe reader left): progress is best-effort


class _NoteHandler(logging.Handler):
    """Sends the core's log records (token warnings, retries) through the display as notes."""

    def __init__(self, display: StatusDisplay) -> None:
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        level = "warning" if record.levelno >= logging.WARNING else "info"
        self.display.note(f"janus-space: {level}: {record.getMessage()}")


@contextmanager
def route_logging(display: StatusDisplay, *, verbose: bool = False) -> Iterator[None]:
    """While the CLI runs, show ``janus_space`` log records as notes (INFO too when verbose)."""
    logger = logging.getLogger("janus_space")
    handler = _NoteHandler(display)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
