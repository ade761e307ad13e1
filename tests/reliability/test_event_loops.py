"""An event loop per request, as web views, Celery tasks and scripts run async code.

Each ``asyncio.run(...)`` makes a loop, and the backend makes a session in it; the session
must be closed while that loop shuts down, and nothing may keep the finished loop alive.
Counted over 200 loops against the live replica: open file descriptors, sessions held by
the backend, and event-loop objects still alive. A plain script that never closes anything
must also exit with a clean stderr, under ``python -X dev`` (ResourceWarnings shown).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from janus_space import JanusClient
from langchain_janus import ChatJanus
from llama_index_janus import JanusPro

LOOPS = 200
WARM_UP = 5  # the first loops open what is kept for the process (e.g. the sync loop thread)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_loops() -> int:
    gc.collect()
    return sum(isinstance(o, asyncio.AbstractEventLoop) for o in gc.get_objects())


def run_many(call: Callable[[int], Coroutine[Any, Any, Any]], sessions: Callable[[], int]) -> None:
    """``asyncio.run`` ``LOOPS`` times; fds, sessions and loops must stay flat after warm-up."""
    for n in range(WARM_UP):
        asyncio.run(call(n))
    fds, loops = open_fds(), live_loops()
    for n in range(WARM_UP, LOOPS):
        asyncio.run(call(n))
        assert sessions() == 0, f"loop {n}: its session outlived asyncio.run"
    assert open_fds() <= fds + 2, f"{open_fds() - fds} file descriptors leaked over {LOOPS} loops"
    assert live_loops() <= loops, "finished event loops are still alive"


def test_core_client_over_200_event_loops(replica_url: str) -> None:
    client = JanusClient(base_url=replica_url)
    answers: list[str] = []

    async def call(n: int) -> None:
        answers.append((await client.understand(f"loop {n}")).text)

    run_many(call, lambda: client._connection.open_loops)
    assert len(answers) == LOOPS and f"'loop {LOOPS - 1}'" in answers[-1]
    assert not client.closed  # usable on the next loop, without ever being closed


def test_chat_janus_over_200_event_loops(replica_url: str) -> None:
    llm = ChatJanus(base_url=replica_url)

    async def call(n: int) -> None:
        assert f"loop {n}" in (await llm.ainvoke(f"loop {n}")).text

    run_many(call, lambda: llm.janus_backend._connection.open_loops)  # type: ignore[attr-defined]
    llm.close()


def test_janus_pro_over_200_event_loops(replica_url: str) -> None:
    llm = JanusPro(base_url=replica_url)

    async def call(n: int) -> None:
        assert f"loop {n}" in (await llm.acomplete(f"loop {n}")).text

    run_many(call, lambda: llm.janus_backend._connection.open_loops)  # type: ignore[attr-defined]
    llm.close()


def test_close_releases_sessions_of_loops_still_running(replica_url: str) -> None:
    llm = ChatJanus(base_url=replica_url)
    llm.invoke("on the sync loop")  # a session on the core's loop thread
    backend = llm.janus_backend
    assert backend._connection.open_loops == 1  # type: ignore[attr-defined]
    llm.close()
    assert backend.closed and backend._connection.open_loops == 0  # type: ignore[attr-defined]


PLAIN_SCRIPT = """
import asyncio
from langchain_janus import ChatJanus
from llama_index_janus import JanusPro
from janus_space import JanusClient

url = {url!r}
lc, li, core = ChatJanus(base_url=url), JanusPro(base_url=url), JanusClient(base_url=url)
lc.invoke("plain")
asyncio.run(lc.ainvoke("loop one"))
asyncio.run(lc.ainvoke("loop two"))
li.complete("plain")
asyncio.run(li.acomplete("loop one"))
asyncio.run(core.understand("core loop"))
for chunk in lc.stream("streamed"):
    pass
print("done")
"""


@pytest.mark.parametrize("dev_mode", [True, False], ids=["python -X dev", "python"])
def test_a_plain_script_that_closes_nothing_exits_with_a_clean_stderr(
    replica_url: str, tmp_path: Path, dev_mode: bool
) -> None:
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(PLAIN_SCRIPT.format(url=replica_url)))
    command = [sys.executable, *(["-X", "dev"] if dev_mode else []), str(script)]
    env = {**os.environ, "PYTHONWARNINGS": "default", "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == "", done.stderr
