"""Pool benchmark: calls served per second by a JanusPool of three replicas against one.

Starts four replicas of the Space (``python -m janus_space.replica``, one job at a time each,
as Gradio runs by default and the Space runs its GPU function): three healthy, and one that
answers every call with the ZeroGPU quota error, as the public Space does once the caller's
quota is spent. Then fires the same batch of slow jobs (``[slow:N]``: N progress steps of
0.2 s on the replica) all at once through:

* one endpoint (a pool of one healthy replica; a plain ``JanusClient`` for reference),
* a pool of the three healthy replicas,
* a pool with the quota'd replica listed first, then the three healthy ones,

and prints the calls served per second, the speed-up over one endpoint, which endpoint served
how many calls, and how many calls reached each replica's function (from its call log).

    python benchmarks/pool.py [--calls 12] [--steps 5] [--rounds 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow `python benchmarks/pool.py` as well as `-m benchmarks.pool`
    sys.path.insert(0, str(ROOT))

from benchmarks.run import replica  # noqa: E402
from janus_space import Failover, JanusClient, UnderstandingResult  # noqa: E402
from janus_space.pool import JanusPool  # noqa: E402
from janus_space.replica import CALL_LOG_ENV, FAULTS_ENV, read_call_log  # noqa: E402

SETTINGS: dict[str, Any] = {"timeout": 600.0, "max_retries": 0}


async def batch(
    call: Callable[[str], Awaitable[tuple[UnderstandingResult, int]]], questions: list[str]
) -> tuple[float, Counter[str], int]:
    """Run every question at once; (seconds, calls per serving endpoint, failover events)."""
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(call(q) for q in questions))
    seconds = time.perf_counter() - started
    served = Counter(result.endpoint or "?" for result, _ in outcomes)
    return seconds, served, sum(moves for _, moves in outcomes)


def through(backend: JanusClient | JanusPool) -> Callable[[str], Awaitable[Any]]:
    """One call on ``backend``: its result and the number of ``Failover`` events it yielded."""

    async def call(question: str) -> tuple[UnderstandingResult, int]:
        moves = 0
        result: Any = None
        async for event in backend.stream_understand(question):
            moves += isinstance(event, Failover)
            result = event
        assert isinstance(result, UnderstandingResult)
        return result, moves

    return call


async def measure(args: argparse.Namespace, urls: dict[str, str]) -> list[dict[str, Any]]:
    healthy = [urls["h1"], urls["h2"], urls["h3"]]
    setups: list[tuple[str, Callable[[], JanusClient | JanusPool]]] = [
        ("one replica (JanusClient)", lambda: JanusClient(base_url=healthy[0], **SETTINGS)),
        ("one replica (JanusPool of 1)", lambda: JanusPool(healthy[:1], **SETTINGS)),
        ("JanusPool of 3 replicas", lambda: JanusPool(healthy, **SETTINGS)),
        (
            "JanusPool: quota'd first, then 3",
            lambda: JanusPool([urls["quota"], *healthy], **SETTINGS),
        ),
    ]
    rows: list[dict[str, Any]] = []
    for round_index in range(args.rounds):
        for name, make in setups:
            tag = f"r{round_index}-{len(rows)}"
            questions = [f"{tag} job{i} [slow:{args.steps}]" for i in range(args.calls)]
            async with make() as backend:
                await through(backend)(f"{tag} warm-up")  # sessions and config, not timed
                seconds, served, moves = await batch(through(backend), questions)
            rows.append(
                {
                    "setup": name,
                    "round": round_index,
                    "calls": args.calls,
                    "seconds": seconds,
                    "calls_per_second": args.calls / seconds,
                    "served": dict(sorted((label(urls, k), v) for k, v in served.items())),
                    "failovers": moves,
                    "tag": tag,
                }
            )
    return rows


def label(urls: dict[str, str], endpoint: str) -> str:
    return next((name for name, url in urls.items() if url == endpoint), endpoint)


def ran(logs: dict[str, Path], tag: str) -> dict[str, int]:
    """Calls with ``tag`` that reached each replica's function (warm-up included)."""
    counts: dict[str, int] = {}
    for name, path in logs.items():
        count = sum(1 for entry in read_call_log(path) if entry["text"].startswith(tag + " "))
        if count:
            counts[name] = count
    return counts


def render(rows: list[dict[str, Any]], logs: dict[str, Path], args: argparse.Namespace) -> str:
    job = args.steps * 0.2
    lines = [
        f"janus-space pool benchmark: {args.calls} slow jobs at once (~{job:.1f}s each on a "
        "replica running one job at a time), best of "
        f"{args.rounds} round(s)",
        "",
        f"{'setup':36} {'calls/s':>8} {'seconds':>8} {'speed-up':>9}  served by (ran on)",
    ]
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["setup"] not in best or row["seconds"] < best[row["setup"]]["seconds"]:
            best[row["setup"]] = row
    base = best["one replica (JanusPool of 1)"]["calls_per_second"]
    for name, row in best.items():
        served = ", ".join(f"{k}: {v}" for k, v in row["served"].items())
        runs = ", ".join(f"{k}: {v}" for k, v in ran(logs, row["tag"]).items())
        extra = f"; {row['failovers']} failover(s)" if row["failovers"] else ""
        lines.append(
            f"{name:36} {row['calls_per_second']:8.2f} {row['seconds']:8.2f} "
            f"{row['calls_per_second'] / base:8.2f}x  {served} ({runs}){extra}"
        )
    lines.append("")
    lines.append(
        "h1-h3: healthy replicas; quota: answers every call with the ZeroGPU quota error "
        "(retry in 7 s), so the pool calls it about once per 7 s and skips it in between. "
        "'ran on' counts calls that reached each replica's function, the untimed warm-up call "
        "included."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12, help="jobs per batch (default 12)")
    parser.add_argument("--steps", type=int, default=5, help="0.2 s steps per job (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="batches per setup (default 2)")
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="janus-pool-bench-") as folder,
        contextlib.ExitStack() as stack,
    ):
        urls: dict[str, str] = {}
        logs: dict[str, Path] = {}
        print("starting four replicas ...", file=sys.stderr, flush=True)
        for name in ("h1", "h2", "h3", "quota"):
            logs[name] = Path(folder) / f"{name}.calls.jsonl"
            os.environ[CALL_LOG_ENV] = str(logs[name])  # read by the replica process it starts
            if name == "quota":
                os.environ[FAULTS_ENV] = "[quota]"
            output = stack.enter_context(open(Path(folder) / f"{name}.out", "wb"))
            urls[name] = stack.enter_context(
                replica(output, max_queue_size=100, concurrency_limit=1)
            )
        os.environ.pop(CALL_LOG_ENV, None)
        os.environ.pop(FAULTS_ENV, None)
        rows = asyncio.run(measure(args, urls))
        print(render(rows, logs, args))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
