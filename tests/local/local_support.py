"""Helpers of the local backend's tests: images to send, and streams collected into lists."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from janus_space import TextDelta, UnderstandingResult


def png(width: int = 30, height: int = 20, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small solid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    """Every item of a stream, in order."""
    return [item async for item in stream]


def deltas(items: list[Any]) -> list[str]:
    """The texts of the ``TextDelta`` events among ``items``."""
    return [item.text for item in items if isinstance(item, TextDelta)]


def result(items: list[Any]) -> UnderstandingResult:
    """The final result of an understanding stream (it must be the last item)."""
    last = items[-1]
    assert isinstance(last, UnderstandingResult), items[-3:]
    return last
