"""Helpers shared by the LlamaIndex adapter's tests (a uniquely named module, importable)."""

from __future__ import annotations

import io
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from PIL import Image


def make_png(width: int, height: int, color: str = "red") -> bytes:
    """A deterministic PNG of the given size (the replica reports the size it received)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


class EventRecorder(BaseEventHandler):
    """Collects every instrumentation event dispatched while it is registered."""

    events: list[BaseEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]
