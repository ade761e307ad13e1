"""Fixtures of the reliability tests: fault servers, clients with small timeouts, bounds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from janus_space import JanusClient

from .fault_server import FaultServer, running_fault_server

T = TypeVar("T")

FAST: dict[str, Any] = {
    "timeout": 3.0,
    "connect_timeout": 1.0,
    "idle_timeout": 1.0,
    "max_retries": 1,
}
"""Client settings that keep every test short: small timeouts, one retry."""


@pytest.fixture
async def fault_server() -> AsyncIterator[FaultServer]:
    """A healthy fault server; switch faults on with ``fail`` / ``fail_stream`` / markers."""
    async with running_fault_server() as server:
        yield server


@pytest.fixture
async def other_server() -> AsyncIterator[FaultServer]:
    """A second server: another host for redirects, image URLs or a fake Hub."""
    async with running_fault_server() as server:
        yield server


@pytest.fixture
def make_client() -> Callable[..., JanusClient]:
    """``make_client(url, **overrides)``: a client with the FAST settings, closed by the test."""

    def make(url: str, **overrides: Any) -> JanusClient:
        settings: dict[str, Any] = {**FAST, **overrides}
        return JanusClient(base_url=url, **settings)

    return make


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable``; fail the test (not hang) when it takes more than ``seconds``."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 5)
        pytest.fail(f"the call did not finish within {seconds} s (it hangs)")
    return task.result()


async def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    """Poll ``condition`` until it holds; fail the test when it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds} s")
        await asyncio.sleep(0.01)
