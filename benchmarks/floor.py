"""The floor: the minimal hand-written aiohttp sequence a call needs, with nothing else.

Per understanding call: upload the image, join the queue with a fresh session, read that
session's event stream to ``process_completed``. Per generation: join, read the stream, then
download the five images concurrently. One ``aiohttp.ClientSession`` (default connector) is
kept across calls, as any sensible script would. No validation, no retries, no resizing,
fn_index hard-coded: it is the lower bound the real client is measured against.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiohttp

__all__ = ["FloorClient"]

UNDERSTAND_FN = 2
GENERATE_FN = 3


class FloorClient:
    """upload → join → stream, hand-written with aiohttp."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.api = self.base + "/gradio_api"
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FloorClient:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared session (the client must be entered first)."""
        assert self._http is not None, "use FloorClient as `async with`"
        return self._http

    async def _upload(self, image: bytes, name: str, mime: str) -> str:
        form = aiohttp.FormData()
        form.add_field("files", image, filename=name, content_type=mime)
        async with self.http.post(f"{self.api}/upload", data=form) as resp:
            resp.raise_for_status()
            paths: list[str] = await resp.json()
        return paths[0]

    async def _join_and_wait(self, fn_index: int, data: list[Any]) -> dict[str, Any]:
        session_hash = secrets.token_hex(6)
        payload = {
            "data": data,
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": None,
            "session_hash": session_hash,
        }
        async with self.http.post(f"{self.api}/queue/join", json=payload) as resp:
            resp.raise_for_status()
            event_id = (await resp.json())["event_id"]
        async with self.http.get(
            f"{self.api}/queue/data", params={"session_hash": session_hash}
        ) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed" and message["event_id"] == event_id:
                    if not message.get("success"):
                        raise RuntimeError(f"job failed: {message.get('output')}")
                    output: dict[str, Any] = message["output"]
                    return output
        raise RuntimeError("stream ended without process_completed")

    async def understand(
        self, question: str, image: bytes, *, name: str = "image.png", mime: str = "image/png"
    ) -> str:
        """Upload ``image``, ask ``question``; return the answer text."""
        path = await self._upload(image, name, mime)
        file_data = {"path": path, "meta": {"_type": "gradio.FileData"}}
        output = await self._join_and_wait(UNDERSTAND_FN, [file_data, question, 42, 0.95, 0.1])
        answer: str = output["data"][0]
        return answer

    async def generate(self, prompt: str) -> list[bytes]:
        """Generate; return the bytes of the five images, downloaded concurrently."""
        output = await self._join_and_wait(GENERATE_FN, [prompt, 12345, 5.0, 1.0])
        paths = [item["image"]["path"] for item in output["data"][0]]

        async def download(path: str) -> bytes:
            async with self.http.get(f"{self.api}/file={path}") as resp:
                resp.raise_for_status()
                return await resp.read()

        return list(await asyncio.gather(*(download(p) for p in paths)))
