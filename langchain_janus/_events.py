"""Queue position, progress and logs of a Space job → LangChain custom events.

Each ``janus_space`` status event becomes one custom event named ``janus_status`` whose data
is a plain dict (``{"status": "queued", "position": 1, "rank": 0, "queue_size": 3, ...}``;
``position`` counts from 1, ``rank`` is Gradio's 0-based value), so it
shows up in ``astream_events(version="v2")`` and reaches ``on_custom_event`` handlers.

Where the event is attached, and why (checked on langchain-core 1.8.3):

1. A ``run_manager`` is passed (``invoke``/``ainvoke`` without streaming, ``stream_events``
   v3): the event belongs to the chat-model run.
2. ``stream``/``astream`` call ``_stream``/``_astream`` *without* a run manager, and so does
   ``invoke``/``ainvoke`` when it streams because a streaming handler is attached (as in
   ``astream_events`` of a chain or a LangGraph graph). ChatJanus's own four entry points pin
   the run id in the config and publish the run here through a context variable, set only
   around the call (around each step, for streams), so the event still belongs to the
   chat-model run, also for a bare model with no parent run.
3. Otherwise (``generate``/``agenerate`` called directly while streaming) the event goes to
   the enclosing run, as ``dispatch_custom_event`` does; with no enclosing run there is no one
   to tell and the event is skipped.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.callbacks.manager import AsyncRunManager, RunManager
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import (
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
)

from janus_space import Failover, Heartbeat, Log, Progress, Queued, Started, StatusEvent

__all__ = [
    "STATUS_EVENT",
    "PinnedRun",
    "adispatch_status",
    "current_run",
    "dispatch_status",
    "status_payload",
]

logger = logging.getLogger("langchain_janus")

STATUS_EVENT = "janus_status"
"""Name of the custom event that carries a job's queue position, progress and logs."""

_KINDS: dict[type, str] = {
    Queued: "queued",
    Started: "started",
    Progress: "progress",
    Log: "log",
    Heartbeat: "heartbeat",
    Failover: "failover",
}


def status_payload(event: StatusEvent, model: str) -> dict[str, Any]:
    """A status event as the JSON-ready dict users receive as custom-event data."""
    payload = {"status": _KINDS[type(event)], "model": model, **asdict(event)}
    if isinstance(event, Queued):
        payload["position"] = event.position  # 1 = next: the convention shown to users
    return payload


@dataclass(frozen=True)
class PinnedRun:
    """The chat-model run a call belongs to (its id pinned in the config), and its handlers."""

    run_id: UUID
    config: RunnableConfig
    callbacks: Any
    verbose: bool
    tags: list[str] | None
    metadata: dict[str, Any] | None


_CURRENT_RUN: ContextVar[PinnedRun | None] = ContextVar("langchain_janus_run", default=None)


def current_run() -> ContextVar[PinnedRun | None]:
    """The context variable ChatJanus's entry points set around a call (or each stream step)."""
    return _CURRENT_RUN


def _pinned_manager_args(run: PinnedRun) -> dict[str, Any]:
    """Handlers, tags and metadata of a pinned run, as a child manager of that run needs them."""
    base = CallbackManager.configure(
        run.config.get("callbacks"),
        run.callbacks,
        run.verbose,
        run.config.get("tags"),
        run.tags,
        run.config.get("metadata"),
        run.metadata,
    )
    return {
        "handlers": base.handlers,
        "parent_run_id": run.run_id,
        "tags": base.tags,
        "metadata": base.metadata,
    }


async def adispatch_status(payload: dict[str, Any], run_manager: AsyncRunManager | None) -> None:
    """Send one status payload to the handlers of the run it belongs to (see module docstring).

    ``run_manager`` is the model's (or the tool's) run; the event is attributed to that run.
    """
    if run_manager is not None:
        manager = AsyncCallbackManager(
            handlers=run_manager.handlers,
            parent_run_id=run_manager.run_id,
            tags=run_manager.tags,
            metadata=run_manager.metadata,
        )
        await manager.on_custom_event(STATUS_EVENT, payload, run_id=run_manager.run_id)
        return
    run = _CURRENT_RUN.get()
    if run is not None:
        await AsyncCallbackManager(**_pinned_manager_args(run)).on_custom_event(
            STATUS_EVENT, payload, run_id=run.run_id
        )
        return
    parent = get_async_callback_manager_for_config(ensure_config())
    if parent.parent_run_id is None:
        logger.debug("no run to attach a %s event to: skipped", STATUS_EVENT)
        return
    await parent.on_custom_event(STATUS_EVENT, payload, run_id=parent.parent_run_id)


def dispatch_status(payload: dict[str, Any], run_manager: RunManager | None) -> None:
    """Sync twin of ``adispatch_status`` for ``_generate``/``_stream``."""
    if run_manager is not None:
        manager = CallbackManager(
            handlers=run_manager.handlers,
            parent_run_id=run_manager.run_id,
            tags=run_manager.tags,
            metadata=run_manager.metadata,
        )
        manager.on_custom_event(STATUS_EVENT, payload, run_id=run_manager.run_id)
        return
    run = _CURRENT_RUN.get()
    if run is not None:
        CallbackManager(**_pinned_manager_args(run)).on_custom_event(
            STATUS_EVENT, payload, run_id=run.run_id
        )
        return
    parent = get_callback_manager_for_config(ensure_config())
    if parent.parent_run_id is None:
        logger.debug("no run to attach a %s event to: skipped", STATUS_EVENT)
        return
    parent.on_custom_event(STATUS_EVENT, payload, run_id=parent.parent_run_id)
