"""A smaller soak in the suite: 300 calls through one client, faults at random; correctness only.

Every call must end with its own answer or a typed error (see ``soak.py`` for what each
scenario must end with), none may hang, and the client must keep nothing: no pending job, no
``Job`` object alive after the run, no asyncio task left over, open file descriptors flat.
Timing is not asserted here; ``benchmarks/soak.py`` prints the figures for 1,000 calls.
"""

from __future__ import annotations

from typing import Any

from janus_space import JanusClient

from .fault_server import running_fault_server
from .soak import SCENARIOS, run_soak


async def test_soak_every_call_ends_with_its_own_answer_or_a_typed_error() -> None:
    server_settings: dict[str, Any] = {
        "heartbeat": 0.3,
        "step_delay": 0.005,
        "stream_fault_rate": 0.05,
        "stream_fault_kinds": ("http_502", "reset", "end_early", "malformed"),
        "message_fault_rate": 0.004,
        "seed": 7,
        "keep_history": False,
    }
    async with running_fault_server(**server_settings) as server:
        client = JanusClient(
            base_url=server.url,
            timeout=2.0,
            idle_timeout=2.0,
            connect_timeout=1.0,
            max_retries=2,
            max_connections=8,
        )
        async with client:
            report = await run_soak(client, calls=300, concurrency=16, seed=7, checkpoint_every=50)
        print("\n".join(report.lines()))
        faults = sum(server.stream_faults_applied.values())
    assert report.wrong == [] and report.untyped == [] and report.hung == 0
    assert report.own_answers + report.expected_errors + report.stream_errors == 300
    assert report.own_answers >= 150
    assert set(report.by_scenario) == {s.name for s in SCENARIOS}
    assert faults >= 3  # the random stream faults did happen
    assert report.client_pending == 0 and report.live_jobs == 0
    assert report.tasks_after <= report.tasks_before + 1  # at most the stream reader
    fds = [fd for _, fd, _ in report.checkpoints]
    # Flat: the client pools at most max_connections=8 sockets, and the in-process server
    # holds the other ends; a leak would grow with the number of calls.
    assert max(fds) - min(fds) <= 16, fds
