"""Run the whole benchmark and print the table: ``python benchmarks/run.py [--quick]``.

1. Makes the test images (a ~1 MB 2000x1500 JPEG photo, a 384 px JPEG, a grey placeholder).
2. Starts the replica of the Space (``python -m janus_space.replica``: the real Gradio app with
   stand-in functions; a queue large enough for the parallel batch, 16 jobs at once so that
   batch measures the clients rather than Gradio's queue) on a free 127.0.0.1 port.
3. Starts the proxy process (``benchmarks.proxy``): for each client a counting port and a
   100 ms round-trip port in front of the replica.
4. Runs the workers (``benchmarks.worker``): one process measuring every client's calls
   interleaved (the floor, gradio_client, the core, then ChatJanus and the LlamaIndex LLM when
   their packages import), then one fresh process per client for its cold start, the parallel
   batch and its peak memory.
5. Times ``import`` of each package in fresh interpreters.
6. Prints the tables and the verdict on each target; ``--json PATH`` also saves the raw data.

Everything listens on and connects to 127.0.0.1 only; all processes are ended on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow `python benchmarks/run.py` as well as `-m benchmarks.run`
    sys.path.insert(0, str(ROOT))

from benchmarks.imports import measure_imports  # noqa: E402
from benchmarks.media import model_sized_image, noisy_photo, placeholder_png  # noqa: E402
from benchmarks.report import render  # noqa: E402

CONTENDER_ORDER = [
    "floor",
    "gradio_client",
    "gradio_client_pool",
    "core",
    "langchain",
    "llama_index",
]
PARALLEL_ONLY = {"gradio_client_pool"}  # same calls as gradio_client; only its parallel run
RTT = 0.1
PHOTO_SIZE = (2000, 1500)
MODEL_SIDE = 384  # Janus-Pro resizes the long side of its input to this


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    env["PYTHONUNBUFFERED"] = "1"
    # Workers run from ROOT, so they measure this checkout's packages (not an installed copy).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):  # never send a token to the replica
        env.pop(name, None)
    return env


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def replica(log: IO[bytes], max_queue_size: int, concurrency_limit: int) -> Iterator[str]:
    """Serve the replica on a free port; yield its URL once ``/config`` answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "janus_space.replica",
        "--port",
        str(port),
        "--max-queue-size",
        str(max_queue_size),
        "--concurrency-limit",
        str(concurrency_limit),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/config", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the replica did not start; see its log")
            time.sleep(0.2)
        yield url
    finally:
        _stop(process)


@contextmanager
def proxy(upstream: str, log: IO[bytes], pairs: int) -> Iterator[dict[str, int]]:
    """Start ``benchmarks.proxy`` (``pairs`` local/delayed port pairs); yield its ports."""
    port = upstream.rsplit(":", 1)[1]
    command = [
        sys.executable,
        "-m",
        "benchmarks.proxy",
        "--upstream-port",
        port,
        "--delay-ms",
        str(RTT * 1000 / 2),
        "--pairs",
        str(pairs),
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=_env(), cwd=ROOT
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the proxy did not start; see its log")
        yield json.loads(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        _stop(process)


def run_worker(mode: str, config: dict[str, Any], log: IO[bytes], timeout: float) -> dict[str, Any]:
    """One worker process (``calls`` or ``solo``); its JSON result, or a failure note."""
    command = [sys.executable, "-m", "benchmarks.worker", mode, json.dumps(config)]
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=log, env=_env(), cwd=ROOT, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"worker exceeded {timeout:.0f} s"}
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"failed": f"worker exited with {done.returncode} and no result"}
    return result


def merge(
    keys: list[str], calls: dict[str, Any], solos: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """One record per client: per-call figures by link, cold starts, parallel, memory."""
    merged: dict[str, dict[str, Any]] = {}
    for key in keys:
        solo = solos.get(key, {})
        record: dict[str, Any] = {**calls.get(key, {})}
        if "failed" in calls and key not in PARALLEL_ONLY:
            record["failed"] = calls["failed"]
        for field in ("name", "parallel", "rss_start_mb", "rss_peak_mb", "skipped", "failed"):
            if field in solo and field not in record:
                record[field] = solo[field]
        for link in ("local", "delayed"):
            if f"cold_{link}" in solo:
                record.setdefault(link, {})["cold"] = solo[f"cold_{link}"]
        merged[key] = record
    return merged


def main(argv: list[str] | None = None) -> int:
    """Parse options, run everything, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer calls (about 2.5 min instead of 4)"
    )
    parser.add_argument("--calls", type=int, help="timed calls per row on the local link")
    parser.add_argument(
        "--delayed-calls", type=int, help="timed calls per row over the 100 ms link"
    )
    parser.add_argument("--parallel", type=int, default=200, help="parallel calls (0: skip)")
    parser.add_argument("--parallel-timeout", type=float, help="give up on a parallel batch after")
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        default=16,
        help="jobs the replica runs at once (16: the parallel batch then measures the clients, "
        "not Gradio's one-job-per-50-ms queue; 1 is Gradio's default)",
    )
    parser.add_argument("--only", nargs="+", choices=CONTENDER_ORDER, help="clients to measure")
    parser.add_argument("--no-imports", action="store_true", help="skip the import timings")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--logs", type=Path, help="folder for the replica/proxy/worker logs")
    args = parser.parse_args(argv)
    calls = {
        "local": args.calls or (8 if args.quick else 30),
        "delayed": args.delayed_calls or (4 if args.quick else 8),
    }
    parallel_timeout = args.parallel_timeout or (20.0 if args.quick else 30.0)
    keys = args.only or CONTENDER_ORDER
    pairs = {key: index for index, key in enumerate(keys)}
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="janus-bench-"))
    logs = args.logs or work
    logs.mkdir(parents=True, exist_ok=True)
    print(
        f"making test images, starting the replica and the proxy (logs in {logs}) ...",
        file=sys.stderr,
    )
    photo = noisy_photo(*PHOTO_SIZE)
    images = {"placeholder": placeholder_png(), "image": model_sized_image(), "photo": photo}
    paths = {}
    for name, data in images.items():
        path = work / f"{name}.{'png' if name == 'placeholder' else 'jpg'}"
        path.write_bytes(data)
        paths[name] = str(path)
    scale = MODEL_SIDE / max(PHOTO_SIZE)
    model_sees = f"{round(PHOTO_SIZE[0] * scale)}x{round(PHOTO_SIZE[1] * scale)}"
    results: dict[str, Any] = {
        "photo_bytes": len(photo),
        "photo_size": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}",
        "model_sees": model_sees,
    }
    with (
        open(logs / "replica.log", "wb") as replica_log,
        open(logs / "proxy.log", "wb") as proxy_log,
        open(logs / "workers.log", "wb") as worker_log,
        replica(
            replica_log,
            max_queue_size=max(64, args.parallel + 16),
            concurrency_limit=args.concurrency_limit,
        ) as url,
        proxy(url, proxy_log, pairs=len(keys)) as ports,
    ):
        results["config"] = {
            "replica": f"Gradio {metadata.version('gradio')} on {url}, "
            f"concurrency limit {args.concurrency_limit}",
            "rtt": RTT,
            "calls": calls,
            "parallel": args.parallel,
            "parallel_timeout": parallel_timeout,
            "concurrency_limit": args.concurrency_limit,
            "quick": args.quick,
        }
        base = {
            "ports": {
                name: f"http://127.0.0.1:{port}"
                for name, port in ports.items()
                if name != "control"
            },
            "control_port": ports["control"],
            "pairs": pairs,
            "rtt": RTT,
            "images": paths,
        }
        per_call = [key for key in keys if key not in PARALLEL_ONLY]
        print(f"per-call phases, interleaved: {', '.join(per_call)}", file=sys.stderr)
        calls_result = run_worker(
            "calls", {**base, "contenders": per_call, "calls": calls}, worker_log, timeout=900
        )
        solos = {}
        for key in keys:
            print(f"cold start, {args.parallel} parallel calls, memory: {key}", file=sys.stderr)
            config = {
                **base,
                "contender": key,
                "cold_links": [] if key in PARALLEL_ONLY else ["local", "delayed"],
                "parallel": args.parallel,
                "parallel_timeout": parallel_timeout,
            }
            solos[key] = run_worker("solo", config, worker_log, timeout=300)
        results["workers"] = merge(keys, calls_result, solos)
    if not args.no_imports:
        print("timing imports ...", file=sys.stderr)
        results["imports"] = measure_imports(cwd=ROOT)
    results["config"]["seconds"] = time.monotonic() - started
    text = render(results)
    print(text)
    print(f"\n(total run time {results['config']['seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
