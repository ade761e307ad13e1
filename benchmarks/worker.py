"""One benchmark worker: measures one contender in a fresh process and prints JSON.

Running each client in its own process keeps the figures apart: its imports, its memory peak
(``ru_maxrss``), its threads. The worker reads the proxy's counters (over its control port)
before and after each phase, so HTTP exchanges and TCP connections are counted at the server
side of the link, not by the client about itself.

Phases, for each link (``local``, then ``delayed``): a cold first call (client creation plus
one text-only call), then ``text``, ``image`` (a 384 px JPEG), ``photo`` (a 2000x1500 JPEG) and
``generate``, each after one untimed warm-up call. Then, on the local link and with a fresh
client, ``parallel``: N text-only questions at once, each answer checked against its question.

Usage (run.py does this): ``python -m benchmarks.worker '<json config>'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import secrets
import statistics
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.contenders import Contender, NotAvailable, make_contender
from benchmarks.proxy import control_command

__all__ = ["main", "peak_rss_mb", "percentile", "reported_size", "round_trips"]

CALL_TIMEOUT = 60.0
_REPORT = re.compile(r"image=(\d+)x(\d+) question=")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``VmHWM``).

    Not ``ru_maxrss``: on Linux that survives ``exec`` and would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile with linear interpolation (p90 of 10 values is honest-ish)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def round_trips(
    trace: list[tuple[float, int, str, bool]], start: float, end: float, rtt: float
) -> int:
    """Round trips one call spent on the link, read off the requests it sent in [start, end].

    Requests sent within half a round trip of each other form one wave (sent together, e.g.
    the core's join and stream, or the five downloads); each wave after the first waited for
    an answer. A wave that opened a new TCP connection first also paid its handshake. So:
    waves + waves that needed a new connection.
    """
    events = sorted(entry for entry in trace if start <= entry[0] <= end)
    waves: list[list[tuple[float, int, str, bool]]] = []
    for entry in events:
        if not waves or entry[0] - waves[-1][-1][0] > rtt / 2:
            waves.append([])
        waves[-1].append(entry)
    return len(waves) + sum(any(first for *_, first in wave) for wave in waves)


def reported_size(answer: str) -> str | None:
    """The image size the replica's stand-in model reports having received (``"384x288"``)."""
    match = _REPORT.search(answer)
    return f"{match.group(1)}x{match.group(2)}" if match else None


class Counters:
    """Snapshots of the proxy's counters for one link, and differences between them."""

    def __init__(self, control_port: int, link: str) -> None:
        self.port = control_port
        self.link = link

    def snap(self, command: str = "stats") -> dict[str, Any]:
        """The link's cumulative counters now."""
        stats: dict[str, Any] = control_command(self.port, command)[self.link]
        return stats

    def trace_on(self) -> None:
        """Start recording this link's requests with their times."""
        control_command(self.port, f"trace_on {self.link}")

    def trace_off(self) -> list[tuple[float, int, str, bool]]:
        """Stop recording; the requests seen as (monotonic time, connection, kind, first)."""
        trace: list[Any] = control_command(self.port, f"trace_off {self.link}")["trace"]
        return [tuple(entry) for entry in trace]  # type: ignore[misc]

    @staticmethod
    def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """What happened between two snapshots."""
        requests = Counter(after["requests"])
        requests.subtract(before["requests"])
        return {
            "connections": after["connections"] - before["connections"],
            "bytes_up": after["bytes_up"] - before["bytes_up"],
            "bytes_down": after["bytes_down"] - before["bytes_down"],
            "requests": {k: v for k, v in requests.items() if v},
            "max_open": after["max_open"],
        }


def _per_call(delta: dict[str, Any], calls: int) -> dict[str, Any]:
    return {
        "exchanges": sum(delta["requests"].values()) / calls,
        "by_kind": {k: v / calls for k, v in sorted(delta["requests"].items())},
        "connections": delta["connections"] / calls,
        "bytes_up": delta["bytes_up"] / calls,
        "bytes_down": delta["bytes_down"] / calls,
    }


async def _settle() -> None:
    """Let a client's trailing requests (a stream closing, a cancel) reach the counters."""
    await asyncio.sleep(0.25)


async def _scenario(
    contender: Contender,
    counters: Counters,
    kind: str,
    calls: int,
    images: dict[str, tuple[bytes, str]],
    rtt: float | None,
) -> dict[str, Any]:
    """Time ``calls`` calls of one kind (after one warm-up) and count their traffic.

    With ``rtt`` (the delayed link) the link's requests are traced to count round trips.
    """
    tag = secrets.token_hex(3)

    async def one(index: int) -> tuple[float, str | None]:
        question = f"{kind} call {index:04d} tag {tag}"
        started = time.perf_counter()
        if kind == "generate":
            count = await asyncio.wait_for(contender.generate(question), CALL_TIMEOUT)
            elapsed = time.perf_counter() - started
            return elapsed, None if count == 5 else f"{count} images"
        image, mime = images[kind] if kind != "text" else (None, "")
        answer = await asyncio.wait_for(contender.understand(question, image, mime), CALL_TIMEOUT)
        elapsed = time.perf_counter() - started
        return elapsed, answer if question in answer else f"wrong answer: {answer[:120]}"

    await one(9999)  # warm-up: connections, caches, lazy imports
    await _settle()
    before = counters.snap()
    latencies, sizes, errors = [], Counter[str](), []
    windows = []
    if rtt:
        counters.trace_on()
    for index in range(calls):
        window_start = time.monotonic()
        elapsed, answer = await one(index)
        windows.append((window_start, time.monotonic()))
        latencies.append(elapsed)
        if answer is not None and answer.startswith(("wrong answer", "0 images")):
            errors.append(answer)
        elif answer is not None:
            sizes[reported_size(answer) or "?"] += 1
    await _settle()
    rounds = []
    if rtt:
        trace = counters.trace_off()
        rounds = [round_trips(trace, start, end, rtt) for start, end in windows]
    delta = Counters.diff(before, counters.snap())
    return {
        "calls": calls,
        "round_trips": statistics.median(rounds) if rounds else None,
        "median": statistics.median(latencies),
        "p90": percentile(latencies, 0.9),
        "min": min(latencies),
        "errors": errors[:3],
        "seen_sizes": dict(sizes),
        **_per_call(delta, calls),
    }


async def _link(
    key: str,
    placeholder: bytes,
    url: str,
    counters: Counters,
    calls: int,
    images: Any,
    rtt: float | None,
) -> dict[str, Any]:
    contender = make_contender(key, placeholder)
    result: dict[str, Any] = {"name": contender.name}
    before = counters.snap()
    if rtt:
        counters.trace_on()
    window_start = time.monotonic()
    started = time.perf_counter()
    await contender.open(url)
    answer = await asyncio.wait_for(contender.understand("cold call", None, ""), CALL_TIMEOUT)
    cold = time.perf_counter() - started
    window = (window_start, time.monotonic())
    await _settle()
    rounds = round_trips(counters.trace_off(), *window, rtt) if rtt else None
    delta = Counters.diff(before, counters.snap())
    result["cold"] = {
        "latency": cold,
        "ok": "cold call" in answer,
        "round_trips": rounds,
        **_per_call(delta, 1),
    }
    kinds = ["text", "image", "photo"] + (["generate"] if contender.generates else [])
    for kind in kinds:
        try:
            result[kind] = await _scenario(contender, counters, kind, calls, images, rtt)
        except Exception as exc:
            result[kind] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    await contender.close()
    return result


async def _parallel(
    key: str,
    placeholder: bytes,
    url: str,
    counters: Counters,
    count: int,
    timeout: float,
) -> dict[str, Any]:
    """``count`` text-only questions at once through one fresh client; check every answer."""
    contender = make_contender(key, placeholder)
    before = counters.snap("reset_peak")
    await contender.open(url)
    await asyncio.wait_for(contender.understand("parallel warm-up", None, ""), CALL_TIMEOUT)
    tag = secrets.token_hex(3)
    questions = [f"parallel #{i:04d}# tag {tag}" for i in range(count)]
    started = time.perf_counter()
    answers = await contender.parallel(questions, None, "", timeout)
    wall = time.perf_counter() - started
    lost = sum(a is None for a in answers)
    correct = sum(1 for q, a in zip(questions, answers, strict=True) if a is not None and q in a)
    swapped = count - lost - correct
    await contender.close()
    await _settle()
    delta = Counters.diff(before, counters.snap())
    return {
        "calls": count,
        "wall": wall,
        "timed_out": lost > 0 and wall >= timeout * 0.95,
        "correct": correct,
        "lost": lost,
        "swapped": swapped,
        "connections": delta["connections"],
        "peak_open": delta["max_open"],
        "exchanges": sum(delta["requests"].values()),
        "by_kind": delta["requests"],
    }


async def run(config: dict[str, Any]) -> dict[str, Any]:
    """All phases for ``config["contender"]``; see the module docstring."""
    key = config["contender"]
    paths = config["images"]
    placeholder = Path(paths["placeholder"]).read_bytes()
    images = {
        "image": (Path(paths["image"]).read_bytes(), "image/jpeg"),
        "photo": (Path(paths["photo"]).read_bytes(), "image/jpeg"),
    }
    rss_start = peak_rss_mb()
    out: dict[str, Any] = {"contender": key, "name": make_contender(key, placeholder).name}
    try:
        for link in config["links"]:
            counters = Counters(config["control_port"], link)
            rtt = config["rtt"] if link == "delayed" else None
            out[link] = await _link(
                key,
                placeholder,
                config["urls"][link],
                counters,
                config["calls"][link],
                images,
                rtt,
            )
        if config["parallel"]:
            counters = Counters(config["control_port"], "local")
            out["parallel"] = await _parallel(
                key,
                placeholder,
                config["urls"]["local"],
                counters,
                config["parallel"],
                config["parallel_timeout"],
            )
    except NotAvailable as exc:
        out["skipped"] = str(exc)
    except Exception as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc()
    out["rss_start_mb"] = rss_start
    out["rss_peak_mb"] = peak_rss_mb()
    return out


def main() -> None:
    """Run the phases; print the JSON result as the last stdout line; exit hard.

    The hard exit matters for gradio_client: a job whose answer it lost keeps a non-daemon
    thread polling forever, which would keep the interpreter from exiting.
    """
    config = json.loads(sys.argv[1])
    result = asyncio.run(run(config))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
