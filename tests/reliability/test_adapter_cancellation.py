"""Leaving a call early through LangChain or LlamaIndex cancels the job on the Space too.

The fault server records every ``/cancel`` it receives; ``[hang]`` makes it accept a job,
report it queued, and then never finish it, as a long GPU job would.
"""

from __future__ import annotations

import asyncio
import threading

from langchain_core.messages import HumanMessage
from llama_index.core.llms import ChatMessage

from langchain_janus import ChatJanus
from llama_index_janus import JanusPro

from .conftest import bounded, wait_until
from .fault_server import FaultServer

UNDERSTAND_FN = 2


def assert_one_cancel(server: FaultServer) -> None:
    assert len(server.cancels) == 1, server.cancels
    assert server.cancels[0]["fn_index"] == UNDERSTAND_FN


async def test_langchain_ainvoke_cancelled_cancels_the_job(fault_server: FaultServer) -> None:
    async with ChatJanus(base_url=fault_server.url, timeout=30, max_retries=0) as llm:
        task = asyncio.ensure_future(llm.ainvoke([HumanMessage("[hang] what is this?")]))
        await wait_until(lambda: fault_server.counts["join"] == 1, 3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await wait_until(lambda: bool(fault_server.cancels), 3)
    assert_one_cancel(fault_server)


async def test_langchain_event_stream_left_early_cancels_the_job(
    fault_server: FaultServer,
) -> None:
    async with ChatJanus(base_url=fault_server.url, timeout=30, max_retries=0) as llm:
        events = llm.astream_events([HumanMessage("[hang] q")], version="v2")
        async for event in events:
            if event["event"] == "on_custom_event":  # the first janus_status: queued
                break
        await bounded(events.aclose(), 5)  # type: ignore[attr-defined]
        await wait_until(lambda: bool(fault_server.cancels), 3)
    assert_one_cancel(fault_server)


async def test_llama_index_stream_left_early_cancels_the_job(fault_server: FaultServer) -> None:
    async with JanusPro(base_url=fault_server.url, timeout=30, max_retries=0) as llm:
        stream = await llm.astream_chat([ChatMessage(role="user", content="[hang] q")])
        async for chunk in stream:
            assert chunk.delta == ""  # a status chunk (queued), not an answer
            break
        await bounded(stream.aclose(), 5)  # type: ignore[attr-defined]
        await wait_until(lambda: bool(fault_server.cancels), 3)
    assert_one_cancel(fault_server)


async def test_llama_index_sync_stream_left_early_cancels_the_job(
    fault_server: FaultServer,
) -> None:
    done = threading.Event()

    def sync_caller() -> None:  # a plain script's thread: the sync API on the loop thread
        with JanusPro(base_url=fault_server.url, timeout=30, max_retries=0) as llm:
            stream = llm.stream_chat([ChatMessage(role="user", content="[hang] q")])
            next(stream)
            stream.close()
        done.set()

    await asyncio.to_thread(sync_caller)
    assert done.is_set()
    await wait_until(lambda: bool(fault_server.cancels), 3)
    assert_one_cancel(fault_server)
