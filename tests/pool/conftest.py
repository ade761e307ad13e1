"""Fixtures of the pool tests: three replica processes at once, a paused Space, a closed port."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cassette_support import free_port
from pool_support import PAUSED_PAGE, FaultyHost, Replica, faulty_host, running_replicas


@pytest.fixture(scope="session")
def replicas() -> Iterator[dict[str, Replica]]:
    """Three replica processes: ``a`` and ``b`` healthy, ``quota`` refusing every call."""
    with tempfile.TemporaryDirectory(prefix="janus-pool-") as folder:
        specs = {"a": [], "b": [], "quota": ["--faults", "[quota]"]}
        with running_replicas(specs, Path(folder)) as started:
            yield started


@pytest.fixture
def tag() -> str:
    """A marker unique to this test, put in its questions to find its own calls in the logs."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def paused() -> AsyncIterator[FaultyHost]:
    """A paused Space's host: 503 with an HTML page for every request."""
    headers = {"Content-Type": "text/html; charset=utf-8"}
    async with faulty_host(503, PAUSED_PAGE, headers) as host:
        yield host


@pytest.fixture
async def rate_limited() -> AsyncIterator[FaultyHost]:
    """A host that answers every request 429 with ``Retry-After: 60``."""
    headers = {"Content-Type": "text/plain", "Retry-After": "60"}
    async with faulty_host(429, b"Too Many Requests", headers) as host:
        yield host


@pytest.fixture
def refused() -> str:
    """A base URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
