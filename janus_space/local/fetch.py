"""Image URLs in a local conversation: downloaded once per call, as the Space client does.

The core's ``transfer.fetch_image_url`` does the download (size limit, redirects, no
credentials sent); here it gets a short-lived session of its own for the call, so nothing
outlives the call or belongs to an event loop afterwards.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import aiohttp

from ..media import ImageData
from ..transfer import fetch_image_url
from .chat import ChatPrompt

__all__ = ["MAX_DOWNLOAD_BYTES", "fetch_urls"]

MAX_DOWNLOAD_BYTES = 20_000_000
_TIMEOUT = aiohttp.ClientTimeout(total=60)


class _CallSession:
    """The two things ``fetch_image_url`` asks of a connection: a session and a timeout."""

    request_timeout = _TIMEOUT

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def session(self) -> aiohttp.ClientSession:
        return self._session


async def fetch_urls(prompt: ChatPrompt, max_bytes: int = MAX_DOWNLOAD_BYTES) -> ChatPrompt:
    """The prompt with every image URL replaced by the checked bytes it serves."""
    if not any(isinstance(image, str) for image in prompt.images):
        return prompt
    images: list[ImageData | str] = []
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        connection = cast(Any, _CallSession(session))
        for image in prompt.images:
            if isinstance(image, str):
                image = await fetch_image_url(connection, image, max_bytes)
            images.append(image)
    return dataclasses.replace(prompt, images=tuple(images))
