"""Quota benchmark: GPU-seconds a multimodal-RAG-like workload reserves, with and without savings.

The workload is one user's session with a RAG app over five images: 20 questions in three
steps — a batch of 8 (5 distinct, 3 asked twice at once), a later batch of 8 (4 repeats of
earlier questions, 4 new), then 4 questions of which the user gives up on 3 while they wait in
the queue. Every question is seeded (the Space's default seed), so a repeat has the same answer.

It runs on real replica processes (``python -m janus_space.replica``, one job at a time like the
Space) whose call logs record every call that reached the function: each such job reserves
120 s of ZeroGPU quota on the Space (``@spaces.GPU(duration=120)``, billed on the reservation
even when the result is thrown away), so GPU-seconds = 120 x jobs run, counted at the replica.
Each job takes ``--slow-steps`` x 0.2 s here (``[slow:N]``), standing in for the model's time.

Rows, each adding one saving:

* none — every call is its own job; a give-up runs anyway. That is the client before these
  changes on Gradio 5: its cancel (``POST /cancel``) stops running jobs only, and a queued job
  stays queued and runs in full (see the design notes) — here the given-up call is left to run
  and its answer dropped, which costs the Space the same;
* + identical calls in flight share one job (``janus_space.reuse``);
* + the result cache (``cache="memory"``);
* + abandoned queued jobs dropped — the client's abandonment as it is now (``queue.py`` cuts
  the abandoned job's own session stream, so Gradio drops it from the queue).

Then the same workload on a ``JanusPool`` of three replicas against one replica: wall time,
answers per minute and where the jobs ran.

    python benchmarks/quota.py [--slow-steps 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow `python benchmarks/quota.py` as well as `-m benchmarks.quota`
    sys.path.insert(0, str(ROOT))

from janus_space import JanusClient, Queued, Started, UnderstandingResult  # noqa: E402
from janus_space.replica import read_call_log  # noqa: E402
from janus_space.reuse import CallReuse  # noqa: E402

GPU_SECONDS_PER_JOB = 120  # the Space's @spaces.GPU(duration=120): reserved per job that runs
IMAGES = 5


@dataclass(frozen=True)
class Ask:
    """One question of the workload: which question about which image, and whether the user
    gives up on it while it waits."""

    question: str
    image: int
    give_up: bool = False


DESCRIBE = "Describe this picture for the index."
COUNT = "How many people are in this picture?"
TEXT = "Transcribe any text in this picture."
COLOUR = "What is the main colour of this picture?"

STEPS: tuple[tuple[Ask, ...], ...] = (
    # 1. The indexer describes every image; three pipelines ask at once for the same ones.
    (
        *(Ask(DESCRIBE, i) for i in range(IMAGES)),
        Ask(DESCRIBE, 0),
        Ask(DESCRIBE, 2),
        Ask(DESCRIBE, 4),
    ),
    # 2. Later, answering a user: four retrieved images are described again, four new questions.
    (
        Ask(DESCRIBE, 1),
        Ask(DESCRIBE, 3),
        Ask(DESCRIBE, 0),
        Ask(DESCRIBE, 2),
        *(Ask(COUNT, i) for i in range(4)),
    ),
    # 3. The user asks four more and gives up on three while they wait in the queue.
    (
        Ask(TEXT, 4),
        Ask(COLOUR, 0, give_up=True),
        Ask(COLOUR, 1, give_up=True),
        Ask(COLOUR, 2, give_up=True),
    ),
)
CALLS = sum(len(step) for step in STEPS)
DISTINCT = len({(a.question, a.image) for step in STEPS for a in step})
GIVE_UPS = sum(a.give_up for step in STEPS for a in step)


@dataclass(frozen=True)
class Savings:
    """Which savings a run has switched on."""

    name: str
    share: bool
    cache: bool
    drop_abandoned: bool


ROWS = (
    Savings("none", share=False, cache=False, drop_abandoned=False),
    Savings(
        "+ identical calls in flight share a job", share=True, cache=False, drop_abandoned=False
    ),
    Savings("+ result cache (memory)", share=True, cache=True, drop_abandoned=False),
    Savings("+ abandoned queued jobs dropped (all)", share=True, cache=True, drop_abandoned=True),
)


@dataclass
class GiveUps:
    """What became of the questions the user gave up on."""

    asked: int = 0
    reported_queued: int = 0  # had reported a queue place (their stream was open) when dropped


@dataclass
class Outcome:
    """What one run of the workload did."""

    savings: Savings
    endpoints: int
    answers: int = 0
    seconds: float = 0.0
    jobs: dict[str, int] = field(default_factory=dict)  # replica name -> jobs that ran
    give_ups: GiveUps = field(default_factory=GiveUps)

    @property
    def jobs_run(self) -> int:
        return sum(self.jobs.values())

    @property
    def gpu_seconds(self) -> int:
        return self.jobs_run * GPU_SECONDS_PER_JOB


class _EveryCallItsOwnJob(CallReuse):
    """The 'without sharing' switch of the benchmark: each call gets a key of its own."""

    def __init__(self) -> None:
        super().__init__(None)
        self._numbers = itertools.count()

    def stream(
        self, key: str, start: Callable[[], AsyncGenerator[Any, None]], result_type: type[Any]
    ) -> AsyncGenerator[Any, None]:
        return super().stream(f"{key}#{next(self._numbers)}", start, result_type)


# --- the replicas --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replica:
    """One replica process: its URL and its call log."""

    name: str
    url: str
    log: Path

    def jobs(self, tag: str) -> int:
        """Calls of this run (``tag``) that reached the replica's function."""
        return sum(1 for entry in read_call_log(self.log) if tag in entry["text"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/config", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def replicas(names: list[str], folder: Path) -> Iterator[list[Replica]]:
    """Start one single-worker replica per name, all at once; yield them when all answer."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "JANUS_REPLICA_FAULTS"):
        env.pop(name, None)
    started: list[tuple[subprocess.Popen[bytes], Any]] = []
    found: list[Replica] = []
    try:
        for name in names:
            port = _free_port()
            log = folder / f"{name}.calls.jsonl"
            output = open(folder / f"{name}.out", "wb")  # noqa: SIM115 - closed in finally
            command = [sys.executable, "-m", "janus_space.replica", "--port", str(port)]
            command += ["--call-log", str(log), "--max-queue-size", "100"]
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=ROOT
            )
            started.append((process, output))
            found.append(Replica(name, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 240
        while not all(_answers(r.url) for r in found):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in started):
                raise RuntimeError(f"a replica did not start; see the logs in {folder}")
            time.sleep(0.3)
        yield found
    finally:
        for process, _ in started:
            process.terminate()
        for process, output in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output.close()


# --- the workload --------------------------------------------------------------------------------


def pictures() -> list[bytes]:
    """Five distinct photo-like JPEGs (the client downscales them to the model's 384 px)."""
    from benchmarks.media import noisy_photo

    return [noisy_photo(800, 600, seed=seed, quality=85) for seed in range(IMAGES)]


async def _drain(stream: AsyncGenerator[Any, None], seen: set[type]) -> Any:
    """Drain a call, noting the kinds of status it reported; returns its last item."""
    result = None
    async for item in stream:
        seen.add(type(item))
        result = item
    return result


async def _started(stream: AsyncGenerator[Any, None], running: asyncio.Event) -> Any:
    """Drain a call, setting ``running`` once the Space runs it; returns its last item."""
    result = None
    async for item in stream:
        if isinstance(item, Started):
            running.set()
        result = item
    return result


async def run_workload(
    backend: Any,
    images: list[bytes],
    tag: str,
    slow: int,
    drop_abandoned: bool,
    give_ups: GiveUps,
) -> int:
    """Play the three steps on ``backend``; returns how many answers the user got."""

    def text(ask: Ask) -> str:
        return f"[slow:{slow}] {ask.question} ({tag})"

    answers = 0
    ignored: list[asyncio.Task[Any]] = []
    for step in STEPS:
        kept = [a for a in step if not a.give_up]
        dropped = [a for a in step if a.give_up]
        if not dropped:
            results = await asyncio.gather(
                *(backend.understand(text(a), images[a.image]) for a in kept)
            )
            answers += sum(isinstance(r, UnderstandingResult) for r in results)
            continue
        # The kept question runs; the user asks the rest, which wait behind it, and gives up
        # on them a third of a job's time later (on one replica they are still queued then).
        running = asyncio.Event()
        first = asyncio.create_task(
            _started(backend.stream_understand(text(kept[0]), images[kept[0].image]), running)
        )
        await asyncio.wait_for(running.wait(), 120)
        waiting = []
        for ask in dropped:
            seen: set[type] = set()
            task = asyncio.create_task(
                _drain(backend.stream_understand(text(ask), images[ask.image]), seen)
            )
            waiting.append((task, seen))
        await asyncio.sleep(slow * 0.2 / 3)
        give_ups.asked += len(waiting)
        give_ups.reported_queued += sum(Queued in seen for _, seen in waiting)
        for task, _ in waiting:
            if drop_abandoned:
                task.cancel()  # the user closes the tab: the client abandons the call
            else:
                ignored.append(task)  # the old client: the job ran anyway; nobody reads it
        if drop_abandoned:
            await asyncio.gather(*(t for t, _ in waiting), return_exceptions=True)
        answers += isinstance(await first, UnderstandingResult)
    await asyncio.gather(*ignored, return_exceptions=True)
    return answers


async def measure(
    savings: Savings,
    targets: list[Replica],
    images: list[bytes],
    slow: int,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """One run of the workload with ``savings`` on one replica or a pool of them."""
    tag = f"run-{uuid.uuid4().hex[:8]}"
    cache = "memory" if savings.cache else None
    settings: dict[str, Any] = {"timeout": 600.0, "max_retries": 0, "cache": cache, **(extra or {})}
    if len(targets) == 1:
        backend: Any = JanusClient(base_url=targets[0].url, **settings)
        clients = [backend]
    else:
        from janus_space.pool import JanusPool

        backend = JanusPool([t.url for t in targets], **settings)
        clients = list(backend.clients)
    if not savings.share:
        for client in clients:
            client._reuse = _EveryCallItsOwnJob()
    started = time.perf_counter()
    async with backend:
        give_ups = GiveUps()
        answers = await run_workload(backend, images, tag, slow, savings.drop_abandoned, give_ups)
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.5)  # let the replicas write their last log lines
    jobs = {t.name: t.jobs(tag) for t in targets}
    return Outcome(savings, len(targets), answers, seconds, jobs, give_ups)


async def measure_pool(
    targets: list[Replica], images: list[bytes], slow: int, extra: dict[str, Any] | None = None
) -> list[Outcome]:
    """POOL ROWS: the workload (no savings, then all) on a ``JanusPool`` of three replicas."""
    try:
        import janus_space.pool  # noqa: F401
    except ImportError as exc:  # the pool is another change; say so rather than guess
        print(f"pool rows skipped: janus_space.pool does not import ({exc})", file=sys.stderr)
        return []
    return [
        await measure(ROWS[0], targets, images, slow, extra),
        await measure(ROWS[-1], targets, images, slow, extra),
    ]


# --- the report ----------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])


def report(single: list[Outcome], pool: list[Outcome], slow: int) -> str:
    base = single[0].gpu_seconds or 1
    lines = [
        f"Quota: {CALLS} questions over {IMAGES} images ({DISTINCT} distinct; "
        f"{GIVE_UPS} given up while queued), one single-worker replica; "
        f"each job that reached the function reserves {GPU_SECONDS_PER_JOB} s "
        f"(jobs here take {slow * 0.2:.1f} s). give-ups: how many had reported their queue "
        "place when the user left (the others had no event stream open yet).",
        "",
        table(
            ["savings", "jobs run", "GPU-s reserved", "saved", "answers", "wall s", "give-ups"],
            [
                [
                    o.savings.name,
                    str(o.jobs_run),
                    str(o.gpu_seconds),
                    f"{100 * (1 - o.gpu_seconds / base):.0f} %",
                    str(o.answers),
                    f"{o.seconds:.1f}",
                    f"{o.give_ups.reported_queued}/{o.give_ups.asked} queued",
                ]
                for o in single
            ],
        ),
    ]
    if pool:
        one = {o.savings.name: o for o in (single[0], single[-1])}
        rows = []
        for outcome in [single[0], pool[0], single[-1], pool[-1]]:
            rows.append(
                [
                    "none" if outcome.savings is ROWS[0] else "all",
                    f"{outcome.endpoints} replica{'s' if outcome.endpoints > 1 else ''}",
                    str(outcome.answers),
                    f"{outcome.seconds:.1f}",
                    f"{60 * outcome.answers / outcome.seconds:.1f}",
                    f"{one[outcome.savings.name].seconds / outcome.seconds:.2f}x",
                    str(outcome.jobs_run),
                    " / ".join(str(n) for n in outcome.jobs.values()),
                ]
            )
        lines += [
            "",
            "Pool: the same workload on a JanusPool of three single-worker replicas vs one.",
            "",
            table(
                [
                    "savings",
                    "endpoints",
                    "answers",
                    "wall s",
                    "answers/min",
                    "speed-up",
                    "jobs run",
                    "jobs per replica",
                ],
                rows,
            ),
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    images = pictures()
    names = ["r1", "r2", "r3"] if not args.no_pool else ["r1"]
    with (
        tempfile.TemporaryDirectory(prefix="janus-quota-") as folder,
        replicas(names, Path(folder)) as started,
    ):
        extra = {"max_connections": args.max_connections} if args.max_connections else {}
        single = [await measure(row, started[:1], images, args.slow_steps, extra) for row in ROWS]
        pool = [] if args.no_pool else await measure_pool(started, images, args.slow_steps, extra)
    print(report(single, pool, args.slow_steps))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "savings": o.savings.name,
                        "endpoints": o.endpoints,
                        "jobs": o.jobs,
                        "gpu_seconds": o.gpu_seconds,
                        "answers": o.answers,
                        "seconds": o.seconds,
                    }
                    for o in single + pool
                ],
                indent=2,
            )
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--slow-steps", type=int, default=10, help="0.2 s steps per job (default 10: 2 s)"
    )
    parser.add_argument("--quick", action="store_true", help="1 s jobs instead of 2 s")
    parser.add_argument("--no-pool", action="store_true", help="skip the pool rows")
    parser.add_argument(
        "--max-connections", type=int, help="the clients' max_connections (default: theirs)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.slow_steps = 5
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
