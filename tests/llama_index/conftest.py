"""Fixtures of the LlamaIndex adapter's tests: the LLM on the test tier's Space, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from li_support import EventRecorder
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]

from llama_index_janus import JanusPro


@pytest.fixture
def events() -> Iterator[EventRecorder]:
    """Record instrumentation events on the root dispatcher for the test's duration."""
    recorder = EventRecorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    try:
        yield recorder
    finally:
        root.event_handlers.remove(recorder)


@pytest.fixture
async def llm(space_url: str) -> AsyncIterator[JanusPro]:
    """JanusPro on the tier's Space; closes the test loop's client and the sync loop thread."""
    model = JanusPro(base_url=space_url, max_retries=0)
    try:
        yield model
    finally:
        await model.aclose()
        model.close()
