"""Soak benchmark: ~1,000 calls through one JanusClient against a fault server failing at random.

Runs the fault server (``tests/reliability/fault_server.py``) in a subprocess so the figures
are the client's alone, drives the calls with ``tests/reliability/soak.py``, and prints: calls
per second, how every call ended (its own answer, an expected typed error, a typed error from
a random stream fault, or a problem), open file descriptors and resident memory at
checkpoints, and what the server saw. Exits 1 when any call got a wrong or untyped result,
hung, or left something behind.

    python benchmarks/soak.py [--calls 1000] [--concurrency 16] [--stream-fault-rate 0.03]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from janus_space import JanusClient  # noqa: E402
from tests.reliability.soak import SoakReport, run_soak  # noqa: E402


async def soak(args: argparse.Namespace, url: str) -> SoakReport:
    async def server_stats() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/__stats") as resp:
            stats: dict[str, Any] = json.loads(await resp.read())
            return stats

    client = JanusClient(
        base_url=url,
        timeout=args.timeout,
        idle_timeout=args.timeout,
        connect_timeout=2.0,
        max_retries=2,
        max_connections=8,
    )
    async with client:
        return await run_soak(
            client,
            calls=args.calls,
            concurrency=args.concurrency,
            seed=args.seed,
            checkpoint_every=max(1, args.calls // 10),
            server_stats=server_stats,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stream-fault-rate",
        type=float,
        default=0.05,
        help="share of event streams that break as they open",
    )
    parser.add_argument(
        "--message-fault-rate",
        type=float,
        default=0.003,
        help="chance that a stream breaks before any one message",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="the client's call timeout")
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "reliability" / "fault_server.py"),
            "--heartbeat",
            "0.3",
            "--step-delay",
            "0.005",
            "--stream-fault-rate",
            str(args.stream_fault_rate),
            "--message-fault-rate",
            str(args.message_fault_rate),
            "--seed",
            str(args.seed),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            print("the fault server did not start", file=sys.stderr)
            return 2
        report = asyncio.run(soak(args, url))
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(
        f"soak: {args.calls} calls, concurrency {args.concurrency}, "
        f"stream faults {args.stream_fault_rate} per stream + {args.message_fault_rate} per "
        f"message, seed {args.seed}"
    )
    for line in report.lines():
        print("  " + line)
    print("  result:", "OK" if report.ok else "PROBLEMS")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
