"""Queue and progress updates of a Space job as a LlamaIndex instrumentation event.

Register an event handler on the root dispatcher (or ``llama_index_janus``'s) to see them;
they carry the active span id, so tracing tools attach them to the LLM call that caused them.
"""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field

# Re-exported by llama_index.core.instrumentation without an explicit __all__ entry.
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events import BaseEvent

from janus_space import Failover, Heartbeat, Log, Progress, Queued, Started, StatusEvent

__all__ = ["JanusStatusEvent", "dispatcher", "status_event"]

dispatcher = get_dispatcher("llama_index_janus")

StatusKind = Literal["queued", "started", "progress", "log", "heartbeat", "failover"]


class JanusStatusEvent(BaseEvent):
    """Queue position, start, progress, a log line, a heartbeat, or a pool's failover."""

    kind: StatusKind = Field(description="Which kind of update the Space sent.")
    task: Literal["understanding", "generation"] = Field(
        description="The Space function the update belongs to."
    )
    message: str = Field(description="A one-line human-readable summary of the update.")
    status: Any = Field(
        description="The core's typed event: janus_space.Queued, Started, Progress, Log, "
        "Heartbeat, Failover."
    )

    @classmethod
    def class_name(cls) -> str:
        """Name used in serialized events."""
        return "JanusStatusEvent"


def _describe(status: StatusEvent) -> tuple[StatusKind, str]:
    if isinstance(status, Queued):
        where = "?" if status.position is None else str(status.position)
        size = "" if status.queue_size is None else f" of {status.queue_size}"
        eta = "" if status.eta is None else f", about {status.eta:.0f}s to wait"
        return "queued", f"queued: position {where}{size}{eta}"
    if isinstance(status, Started):
        eta = "" if status.eta is None else f" (about {status.eta:.0f}s)"
        return "started", f"running on the Space{eta}"
    if isinstance(status, Progress):
        step = (
            f" {status.index}/{status.length}"
            if status.index is not None and status.length is not None
            else ""
        )
        unit = f" {status.unit}" if status.unit and step else ""
        return "progress", f"progress: {status.desc or 'working'}{step}{unit}"
    if isinstance(status, Log):
        return "log", f"{status.level}: {status.message}"
    if isinstance(status, Heartbeat):
        return "heartbeat", "still working"
    if isinstance(status, Failover):
        until = "" if status.retry_after is None else f" for {status.retry_after:.0f}s"
        to = f"; trying {status.next_endpoint}" if status.next_endpoint else ""
        return "failover", f"left {status.endpoint}{until}: {status.reason}{to}"
    raise TypeError(f"not a janus_space status event: {status!r}")


def status_event(
    status: StatusEvent, task: Literal["understanding", "generation"]
) -> JanusStatusEvent:
    """The LlamaIndex event for one of the core's status events."""
    kind, message = _describe(status)
    return JanusStatusEvent(kind=kind, task=task, message=message, status=status)
