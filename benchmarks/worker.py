"""Benchmark workers: the processes that drive the clients and print JSON results.

Every client talks through its own pair of proxy ports (``local<i>`` and ``delayed<i>``), so
the proxy's counters for that pair are that client's traffic alone: HTTP exchanges, TCP
connections and bytes are counted at the server side of the link, not by the client about
itself. The worker reads them over the proxy's control port before and after each phase.

Two modes (``run.py`` starts both):

* ``calls``: one process runs every client's per-call phases **interleaved**: for each link
  and each kind of call (``text``, ``image`` 384 px JPEG, ``photo`` 2000x1500 JPEG,
  ``generate``) every client makes one warm-up call, then the timed calls go round-robin
  (rotating who goes first), so a drift of the server (its 50 ms polling loops, CPU
  contention, caches) hits every client alike.
* ``solo``: one fresh process per client for what must not be shared: the cold start
  (import + create + first call) on each link, then ``parallel``: N text-only questions at once
  through one new client, each answer checked against its own question; then the process's
  peak memory.

Usage: ``python -m benchmarks.worker calls|solo '<json config>'``.
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

__all__ = [
    "KINDS",
    "main",
    "peak_rss_mb",
    "percentile",
    "reported_size",
    "round_trips",
]

CALL_TIMEOUT = 60.0
KINDS = ("text", "image", "photo", "generate")
_REPORT = re.compile(r"image=(\d+)x(\d+) question=")
Trace = list[tuple[float, int, str, bool]]


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
    """The ``fraction`` quantile with linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def round_trips(trace: Trace, start: float, end: float, rtt: float) -> int:
    """Round trips one call spent on the link, read off the requests it sent in [start, end].

    Requests sent within half a round trip of each other form one wave (sent together, e.g.
    the core's join and stream, or the five downloads); each wave after the first waited for
    an answer. A wave that opened a new TCP connection first also paid its handshake. So:
    waves + waves that needed a new connection.
    """
    events = sorted(entry for entry in trace if start <= entry[0] <= end)
    waves: list[Trace] = []
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
    """The proxy's counters and request trace for one port (one client on one link)."""

    def __init__(self, control_port: int, link: str) -> None:
        self.port = control_port
        self.link = link

    def snap(self, command: str = "stats") -> dict[str, Any]:
        """The port's cumulative counters now."""
        stats: dict[str, Any] = control_command(self.port, command)[self.link]
        return stats

    def trace_on(self) -> None:
        """Start recording the port's requests with their times."""
        control_command(self.port, f"trace_on {self.link}")

    def trace_off(self) -> Trace:
        """Stop recording; the requests seen as (monotonic time, connection, kind, first)."""
        trace: list[Any] = control_command(self.port, f"trace_off {self.link}")["trace"]
        return [(float(t), int(c), str(k), bool(f)) for t, c, k, f in trace]

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


class Images:
    """The test images, read once from the files run.py wrote."""

    def __init__(self, paths: dict[str, str]) -> None:
        self.placeholder = Path(paths["placeholder"]).read_bytes()
        self.by_kind: dict[str, tuple[bytes | None, str]] = {
            "text": (None, ""),
            "image": (Path(paths["image"]).read_bytes(), "image/jpeg"),
            "photo": (Path(paths["photo"]).read_bytes(), "image/jpeg"),
        }


async def _one_call(
    contender: Contender, kind: str, question: str, images: Images
) -> tuple[float, str | None]:
    """Time one call; returns (seconds, the answer text or None for a generation).

    Raises ``ValueError`` when the answer is not the one asked for.
    """
    started = time.perf_counter()
    if kind == "generate":
        count = await asyncio.wait_for(contender.generate(question), CALL_TIMEOUT)
        elapsed = time.perf_counter() - started
        if count != 5:
            raise ValueError(f"{count} images instead of 5")
        return elapsed, None
    image, mime = images.by_kind[kind]
    answer = await asyncio.wait_for(contender.understand(question, image, mime), CALL_TIMEOUT)
    elapsed = time.perf_counter() - started
    if question not in answer:
        raise ValueError(f"wrong answer: {answer[:120]}")
    return elapsed, answer


# --- mode "calls": every client's per-call phases, interleaved --------------------------------


async def _interleaved_kind(
    clients: dict[str, Contender],
    counters: dict[str, Counters],
    kind: str,
    calls: int,
    images: Images,
    rtt: float | None,
) -> dict[str, dict[str, Any]]:
    """One kind of call for every client: warm-up, then ``calls`` rounds, round-robin."""
    tag = secrets.token_hex(3)
    errors: dict[str, str] = {}
    for key, client in clients.items():
        try:
            await _one_call(client, kind, f"{kind} warm-up {key} {tag}", images)
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"[:300]
    active = [key for key in clients if key not in errors]
    await _settle()
    before = {key: counters[key].snap() for key in active}
    if rtt:
        for key in active:
            counters[key].trace_on()
    latencies: dict[str, list[float]] = {key: [] for key in active}
    windows: dict[str, list[tuple[float, float]]] = {key: [] for key in active}
    sizes: dict[str, Counter[str]] = {key: Counter() for key in active}
    for index in range(calls):
        shift = index % len(active) if active else 0
        for key in active[shift:] + active[:shift]:
            if key in errors:
                continue
            window_start = time.monotonic()
            try:
                elapsed, answer = await _one_call(
                    clients[key], kind, f"{kind} call {index:04d} {key} {tag}", images
                )
            except Exception as exc:
                errors[key] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            windows[key].append((window_start, time.monotonic()))
            latencies[key].append(elapsed)
            if answer is not None:
                sizes[key][reported_size(answer) or "?"] += 1
    await _settle()
    results: dict[str, dict[str, Any]] = {}
    for key in clients:
        if key in errors:
            if rtt and key in active:
                counters[key].trace_off()
            results[key] = {"error": errors[key]}
            continue
        rounds = []
        if rtt:
            trace = counters[key].trace_off()
            rounds = [round_trips(trace, start, end, rtt) for start, end in windows[key]]
        delta = Counters.diff(before[key], counters[key].snap())
        results[key] = {
            "calls": calls,
            "median": statistics.median(latencies[key]),
            "p90": percentile(latencies[key], 0.9),
            "min": min(latencies[key]),
            "mean": statistics.fmean(latencies[key]),
            "round_trips": statistics.median(rounds) if rounds else None,
            "round_trips_min": min(rounds) if rounds else None,
            "samples": [round(x, 5) for x in latencies[key]],  # in round order (pairable)
            "seen_sizes": dict(sizes[key]),
            **_per_call(delta, calls),
        }
    return results


async def run_calls(config: dict[str, Any]) -> dict[str, Any]:
    """Mode ``calls``: per-call figures of every client on both links."""
    images = Images(config["images"])
    out: dict[str, Any] = {key: {} for key in config["contenders"]}
    for link in ("local", "delayed"):
        rtt = config["rtt"] if link == "delayed" else None
        clients: dict[str, Contender] = {}
        counters: dict[str, Counters] = {}
        for key in config["contenders"]:
            client = make_contender(key, images.placeholder)
            port_name = f"{link}{config['pairs'][key]}"
            try:
                await client.open(config["ports"][port_name])
            except NotAvailable as exc:
                out[key]["skipped"] = str(exc)
                continue
            clients[key] = client
            counters[key] = Counters(config["control_port"], port_name)
            out[key]["name"] = client.name
            out[key][link] = {}
        for kind in KINDS:
            takers = {
                key: client
                for key, client in clients.items()
                if kind != "generate" or client.generates
            }
            print(f"  {link}: {kind} ...", file=sys.stderr, flush=True)
            for key, figures in (
                await _interleaved_kind(takers, counters, kind, config["calls"][link], images, rtt)
            ).items():
                out[key][link][kind] = figures
        for client in clients.values():
            await client.close()
    return out


# --- mode "solo": cold start, parallel calls and memory of one client ------------------------


async def _cold(
    key: str, images: Images, url: str, counters: Counters, rtt: float | None
) -> dict[str, Any]:
    """Import (first time only), create the client and make its first text-only call."""
    client = make_contender(key, images.placeholder)
    before = counters.snap()
    if rtt:
        counters.trace_on()
    window_start = time.monotonic()
    started = time.perf_counter()
    await client.open(url)
    await _one_call(client, "text", f"cold call {key}", images)
    latency = time.perf_counter() - started
    window = (window_start, time.monotonic())
    await client.close()
    await _settle()
    rounds = round_trips(counters.trace_off(), *window, rtt) if rtt else None
    delta = Counters.diff(before, counters.snap())
    return {"latency": latency, "round_trips": rounds, **_per_call(delta, 1)}


async def _parallel(
    key: str, images: Images, url: str, counters: Counters, count: int, timeout: float
) -> dict[str, Any]:
    """``count`` text-only questions at once through one fresh client; check every answer."""
    client = make_contender(key, images.placeholder)
    before = counters.snap("reset_peak")
    await client.open(url)
    await asyncio.wait_for(client.understand("parallel warm-up", None, ""), CALL_TIMEOUT)
    tag = secrets.token_hex(3)
    questions = [f"parallel #{i:04d}# {tag}" for i in range(count)]
    started = time.perf_counter()
    answers = await client.parallel(questions, None, "", timeout)
    wall = time.perf_counter() - started
    lost = sum(a is None for a in answers)
    correct = sum(1 for q, a in zip(questions, answers, strict=True) if a is not None and q in a)
    await client.close()
    await _settle()
    delta = Counters.diff(before, counters.snap())
    return {
        "calls": count,
        "wall": wall,
        "timed_out": lost > 0 and wall >= timeout * 0.95,
        "correct": correct,
        "lost": lost,
        "swapped": count - lost - correct,
        "connections": delta["connections"],
        "peak_open": delta["max_open"],
        "exchanges": sum(delta["requests"].values()),
        "by_kind": delta["requests"],
    }


async def run_solo(config: dict[str, Any]) -> dict[str, Any]:
    """Mode ``solo``: cold starts, the parallel batch and peak memory of one client."""
    key = config["contender"]
    images = Images(config["images"])
    out: dict[str, Any] = {"name": make_contender(key, images.placeholder).name}
    out["rss_start_mb"] = peak_rss_mb()
    pair = config["pairs"][key]
    try:
        for link in config["cold_links"]:
            rtt = config["rtt"] if link == "delayed" else None
            counters = Counters(config["control_port"], f"{link}{pair}")
            url = config["ports"][f"{link}{pair}"]
            out[f"cold_{link}"] = await _cold(key, images, url, counters, rtt)
        if config["parallel"]:
            counters = Counters(config["control_port"], f"local{pair}")
            out["parallel"] = await _parallel(
                key,
                images,
                config["ports"][f"local{pair}"],
                counters,
                config["parallel"],
                config["parallel_timeout"],
            )
    except NotAvailable as exc:
        out["skipped"] = str(exc)
    except Exception as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"[:500]
        traceback.print_exc()
    out["rss_peak_mb"] = peak_rss_mb()
    return out


def main() -> None:
    """Run one mode; print its JSON result as the last stdout line; exit hard.

    The hard exit matters for gradio_client: a job whose answer it lost keeps a non-daemon
    thread polling forever, which would keep the interpreter from exiting.
    """
    mode, config = sys.argv[1], json.loads(sys.argv[2])
    runner = run_calls if mode == "calls" else run_solo
    try:
        result = asyncio.run(runner(config))
    except Exception as exc:
        traceback.print_exc()
        result = {"failed": f"{type(exc).__name__}: {exc}"[:500]}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
