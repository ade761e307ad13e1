"""The soak: many calls through one client against a fault server that fails at random.

Each call draws a scenario (a plain question, a generation, a fault marker, a cancellation,
bad input) and knows what it must end with: its own answer, or a typed error. On top, the
server breaks a share of event streams at random (502, reset, early end, malformed line), which
may fail whichever calls share that stream: those may end with a stream error instead, but
still typed. Used by ``benchmarks/soak.py`` (figures) and ``test_soak.py`` (correctness).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import janus_space
from janus_space import (
    AppError,
    GenerationResult,
    InvalidInputError,
    JanusClient,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    ProtocolError,
    QuotaExceededError,
    ResultUnavailableError,
    SpaceUnavailableError,
    UnderstandingResult,
)
from janus_space.queue import Job

__all__ = ["SCENARIOS", "Scenario", "SoakReport", "open_fds", "rss_bytes", "run_soak"]

STREAM_ERRORS: tuple[type[JanusError], ...] = (
    ProtocolError,
    JanusTimeoutError,
    SpaceUnavailableError,
    JanusConnectionError,
)
"""What a call may end with when a random stream fault hits the stream it shares."""


@dataclass(frozen=True)
class Scenario:
    """One kind of call and the outcome it must have (None: its own answer)."""

    name: str
    weight: float
    kind: str  # "understand", "generate", "cancel", "bad"
    marker: str = ""
    expect: type[BaseException] | None = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("answer", 40, "understand"),
    Scenario("generate", 8, "generate"),
    Scenario("slow", 5, "understand", "[slow:3]"),
    Scenario("nogpu-once", 5, "understand", "[nogpu:1]"),
    Scenario("queue-full-once", 5, "understand", "[full:1]"),
    Scenario("502-on-join-once", 4, "understand", "[join:502:1]"),
    Scenario("429-on-join-once", 3, "understand", "[join:429:1]"),
    Scenario("app-error", 5, "understand", "[apperror]", AppError),
    Scenario("error-null", 4, "understand", "[errnull]", AppError),
    Scenario("quota", 3, "understand", "[quota0]", QuotaExceededError),
    Scenario("500-on-join", 3, "understand", "[join:500]", SpaceUnavailableError),
    Scenario("files-vanish", 3, "generate", "[vanish]", ResultUnavailableError),
    Scenario("hang", 2, "understand", "[hang]", JanusTimeoutError),
    Scenario("cancelled", 3, "cancel", "[hang]", asyncio.CancelledError),
    Scenario("bad-input", 3, "bad", "", InvalidInputError),
)


def open_fds() -> int:
    """Open file descriptors of this process (-1 where /proc is missing)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def rss_bytes() -> int:
    """Resident memory of this process now (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class SoakReport:
    """What happened to every call, and the process's resources along the way."""

    calls: int = 0
    seconds: float = 0.0
    by_scenario: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # "answer", error class names
    own_answers: int = 0
    expected_errors: int = 0
    stream_errors: int = 0  # typed errors caused by a random stream fault
    wrong: list[str] = field(default_factory=list)  # someone else's answer, a wrong error...
    untyped: list[str] = field(default_factory=list)
    hung: int = 0
    checkpoints: list[tuple[int, int, int]] = field(default_factory=list)  # calls, fds, rss
    tasks_before: int = 0  # asyncio tasks running janus_space code (the stream reader...)
    tasks_after: int = 0
    live_jobs: int = 0  # client-side Job objects still alive after the run (gc'd: 0)
    client_pending: int = 0
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every call ended with its own answer or a typed error, none hung, nothing left."""
        return (
            not self.wrong
            and not self.untyped
            and not self.hung
            and self.live_jobs == 0
            and self.client_pending == 0
        )

    def lines(self) -> list[str]:
        """The figures, one per line."""
        fds = [c[1] for c in self.checkpoints]
        rss = [c[2] for c in self.checkpoints]
        out = [
            f"calls: {self.calls} in {self.seconds:.1f} s "
            f"({self.calls / max(self.seconds, 1e-9):.0f}/s)",
            f"own answers: {self.own_answers}; expected typed errors: {self.expected_errors}; "
            f"typed errors from random stream faults: {self.stream_errors}",
            f"wrong results: {len(self.wrong)}; untyped errors: {len(self.untyped)}; "
            f"hung calls: {self.hung}",
            "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())),
            "scenarios: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_scenario.items())),
        ]
        if fds:
            out.append(f"open fds at checkpoints: {fds} (min {min(fds)}, max {max(fds)})")
            mib = [round(r / 2**20, 1) for r in rss]
            out.append(
                f"RSS MiB at checkpoints: {mib} (growth after the first: "
                f"{(rss[-1] - rss[0]) / 2**20:+.1f} MiB)"
            )
        out.append(
            f"client tasks before/after: {self.tasks_before}/{self.tasks_after}; "
            f"client jobs alive after gc: {self.live_jobs}; "
            f"client jobs pending: {self.client_pending}"
        )
        if self.server:
            out.append(f"server: {self.server}")
        for problem in (self.wrong + self.untyped)[:10]:
            out.append(f"PROBLEM: {problem}")
        return out


_PACKAGE_DIR = os.path.dirname(os.path.abspath(janus_space.__file__))


def client_tasks() -> int:
    """asyncio tasks running janus_space code (not the test's, not an in-process server's)."""
    count = 0
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and os.path.abspath(code.co_filename).startswith(_PACKAGE_DIR):
            count += 1
    return count


def _live_jobs() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Job))


async def run_soak(
    client: JanusClient,
    *,
    calls: int = 1000,
    concurrency: int = 16,
    seed: int = 0,
    checkpoint_every: int = 100,
    bound: float = 15.0,
    server_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> SoakReport:
    """Run ``calls`` calls through ``client`` (already pointed at a fault server)."""
    rng = random.Random(seed)
    report = SoakReport()
    weights = [s.weight for s in SCENARIOS]
    slots = asyncio.Semaphore(concurrency)
    done = 0

    async def one(index: int, scenario: Scenario) -> None:
        nonlocal done
        text = f"call {index} {scenario.marker} {rng.random():.6f}".replace("  ", " ")
        async with slots:
            outcome = await _outcome(client, scenario, text, rng.uniform(0.02, 0.2), bound)
        _judge(report, scenario, text, outcome)
        done += 1
        if checkpoint_every and done % checkpoint_every == 0:
            gc.collect()
            report.checkpoints.append((done, open_fds(), rss_bytes()))

    await client.understand("warm up")  # connect: config read, connection pool started
    report.tasks_before = client_tasks()
    started = time.perf_counter()
    plan = rng.choices(SCENARIOS, weights, k=calls)
    await asyncio.gather(*(one(i, s) for i, s in enumerate(plan)))
    report.seconds = time.perf_counter() - started
    report.calls = calls
    await asyncio.sleep(0.2)  # let finished calls' cancels and streams settle
    report.tasks_after = client_tasks()
    queue = client._connection.queue
    report.client_pending = queue.pending if queue is not None else 0
    report.live_jobs = _live_jobs()
    if server_stats is not None:
        report.server = await server_stats()
    return report


async def _outcome(
    client: JanusClient, scenario: Scenario, text: str, cancel_after: float, bound: float
) -> Any:
    """Run one call; returns its result or the exception it ended with ("HUNG" if it hung)."""
    if scenario.kind == "bad":
        call: Awaitable[Any] = client.understand(text, b"not an image")
    elif scenario.kind == "generate":
        call = client.generate(text)
    else:
        call = client.understand(text)
    task = asyncio.ensure_future(call)
    if scenario.kind == "cancel":
        await asyncio.sleep(cancel_after)
        task.cancel()
    done, _ = await asyncio.wait({task}, timeout=bound)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return "HUNG"
    if task.cancelled():
        return asyncio.CancelledError()
    error = task.exception()
    return error if error is not None else task.result()


def _judge(report: SoakReport, scenario: Scenario, text: str, outcome: Any) -> None:
    report.by_scenario[scenario.name] += 1
    if isinstance(outcome, str) and outcome == "HUNG":
        report.hung += 1
        report.outcomes["HUNG"] += 1
        return
    if isinstance(outcome, BaseException):
        report.outcomes[type(outcome).__name__] += 1
        if scenario.expect is not None and isinstance(outcome, scenario.expect):
            report.expected_errors += 1
        elif isinstance(outcome, STREAM_ERRORS) and scenario.kind != "bad":
            report.stream_errors += 1
        elif isinstance(outcome, (JanusError, asyncio.CancelledError)):
            report.wrong.append(f"{scenario.name}: {text!r} ended with {outcome!r}")
        else:
            report.untyped.append(f"{scenario.name}: {text!r} raised {outcome!r}")
        return
    report.outcomes["answer"] += 1
    if (
        isinstance(outcome, UnderstandingResult)
        and scenario.kind == "understand"
        and scenario.expect is None
        and outcome.text == f"answer: {text}"
    ):
        report.own_answers += 1
        return
    if isinstance(outcome, GenerationResult) and scenario.kind == "generate":
        own = all(f"{text}#{i}".encode() in image.data for i, image in enumerate(outcome.images))
        if scenario.expect is None and len(outcome.images) == 5 and own:
            report.own_answers += 1
            return
    report.wrong.append(f"{scenario.name}: {text!r} got {outcome!r}")
