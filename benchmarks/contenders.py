"""The clients under test, behind one small async interface.

Each contender imports its library only when opened, so a worker process measuring one of
them loads nothing of the others (that keeps the memory figures honest). ``gradio_client`` is
synchronous: its calls run in a thread here, and its parallel calls use ``Client.submit``
jobs, the way its documentation suggests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["CONTENDERS", "Contender", "NotAvailable", "make_contender"]


class NotAvailable(Exception):
    """The contender's package does not import (yet): the benchmark skips it with a note."""


class Contender(ABC):
    """One client library, opened against one base URL."""

    name = ""
    generates = True  # whether it has an image-generation call to measure

    def __init__(self, placeholder: bytes) -> None:
        self._placeholder = placeholder  # what a text-only call sends where an image is needed

    @abstractmethod
    async def open(self, url: str) -> None:
        """Import the library and create the client (some clients touch the network here)."""

    @abstractmethod
    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        """Ask ``question`` about ``image`` (None: text only); return the answer text."""

    async def generate(self, prompt: str) -> int:
        """Generate images from ``prompt``; return how many were received."""
        raise NotImplementedError

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release the client."""

    async def parallel(
        self, questions: list[str], image: bytes | None, mime: str, timeout: float
    ) -> list[str | None]:
        """Ask every question at once through this one client; None for a lost answer."""
        tasks = [asyncio.ensure_future(self.understand(q, image, mime)) for q in questions]
        await asyncio.wait(tasks, timeout=timeout)
        answers: list[str | None] = []
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                answers.append(task.result())
            else:
                if not task.done():
                    task.cancel()
                answers.append(None)
        return answers


class FloorContender(Contender):
    """The hand-written aiohttp sequence (``benchmarks.floor``)."""

    name = "floor (aiohttp by hand)"

    def __init__(self, placeholder: bytes) -> None:
        super().__init__(placeholder)
        self._client: Any = None

    async def open(self, url: str) -> None:
        from benchmarks.floor import FloorClient

        self._client = await FloorClient(url).__aenter__()

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        if image is None:  # the Space needs an image: send a neutral placeholder
            image, mime = self._placeholder, "image/png"
        name = "image.png" if mime == "image/png" else "image.jpg"
        answer: str = await self._client.understand(question, image, name=name, mime=mime)
        return answer

    async def generate(self, prompt: str) -> int:
        return len(await self._client.generate(prompt))

    async def close(self) -> None:
        await self._client.__aexit__(None, None, None)


class GradioClientContender(Contender):
    """The official ``gradio_client.Client`` (sync; run in threads)."""

    name = "gradio_client"

    def __init__(self, placeholder: bytes) -> None:
        super().__init__(placeholder)
        self._client: Any = None
        self._dir = Path(tempfile.mkdtemp(prefix="janus-bench-gc-"))
        self._files: dict[str, str] = {}

    def _file(self, image: bytes, mime: str) -> Any:
        """A file on disk for ``image`` (a user passes paths); written once, outside timing."""
        from gradio_client import handle_file  # type: ignore[import-untyped]

        digest = hashlib.sha1(image).hexdigest()[:16]
        if digest not in self._files:
            path = self._dir / f"{digest}.{'png' if mime == 'image/png' else 'jpg'}"
            path.write_bytes(image)
            self._files[digest] = str(path)
        return handle_file(self._files[digest])

    def prepare(self, image: bytes, mime: str) -> None:
        """Write an image file ahead of the timed calls."""
        self._file(image, mime)

    async def open(self, url: str) -> None:
        try:
            from gradio_client import Client
        except ImportError as exc:
            raise NotAvailable(f"gradio_client does not import: {exc}") from None
        self._client = await asyncio.to_thread(Client, url, verbose=False)
        self.prepare(self._placeholder, "image/png")

    def _args(self, question: str, image: bytes | None, mime: str) -> tuple[Any, ...]:
        if image is None:
            image, mime = self._placeholder, "image/png"
        return (self._file(image, mime), question, 42, 0.95, 0.1)

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        args = self._args(question, image, mime)
        answer: str = await asyncio.to_thread(
            self._client.predict, *args, api_name="/multimodal_understanding"
        )
        return answer

    async def generate(self, prompt: str) -> int:
        gallery = await asyncio.to_thread(
            self._client.predict, prompt, 12345, 5.0, 1.0, api_name="/generate_image"
        )
        return len(gallery)

    async def parallel(
        self, questions: list[str], image: bytes | None, mime: str, timeout: float
    ) -> list[str | None]:
        def run() -> list[str | None]:
            jobs = [
                self._client.submit(
                    *self._args(q, image, mime), api_name="/multimodal_understanding"
                )
                for q in questions
            ]
            deadline = time.monotonic() + timeout
            answers: list[str | None] = []
            for job in jobs:
                try:
                    answers.append(job.result(timeout=max(0.0, deadline - time.monotonic())))
                except Exception:  # timeout, or the job failed: the answer is lost
                    answers.append(None)
            return answers

        return await asyncio.to_thread(run)

    async def close(self) -> None:
        # Client.close() joins its heartbeat thread; jobs stuck after a lost answer never end,
        # so the worker process exits hard instead of waiting for them.
        await asyncio.to_thread(self._client.close)


class GradioClientPoolContender(GradioClientContender):
    """gradio_client the way that survives parallel use: one ``Client`` per worker thread.

    A shared ``Client`` loses answers under many concurrent jobs (its stream reader races its
    job threads), so a user who hits that falls back to a client per thread. Measured only in
    the parallel phase; each thread's ``Client`` is created inside the timed batch.
    """

    name = "gradio_client, a Client per thread (x8)"
    threads = 8

    async def open(self, url: str) -> None:
        try:
            import gradio_client  # noqa: F401
        except ImportError as exc:
            raise NotAvailable(f"gradio_client does not import: {exc}") from None
        self._url = url
        self._local = threading.local()
        self._clients: list[Any] = []
        self.prepare(self._placeholder, "image/png")

    def _own(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from gradio_client import Client

            client = Client(self._url, verbose=False)
            self._local.client = client
            self._clients.append(client)
        return client

    def _predict(self, question: str, image: bytes | None, mime: str) -> str:
        answer: str = self._own().predict(
            *self._args(question, image, mime), api_name="/multimodal_understanding"
        )
        return answer

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        return await asyncio.to_thread(self._predict, question, image, mime)

    async def parallel(
        self, questions: list[str], image: bytes | None, mime: str, timeout: float
    ) -> list[str | None]:
        def run() -> list[str | None]:
            pool = ThreadPoolExecutor(self.threads)
            futures = [pool.submit(self._predict, q, image, mime) for q in questions]
            deadline = time.monotonic() + timeout
            answers: list[str | None] = []
            for future in futures:
                try:
                    answers.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
                except Exception:
                    answers.append(None)
            pool.shutdown(wait=False, cancel_futures=True)
            return answers

        return await asyncio.to_thread(run)

    async def close(self) -> None:
        for client in self._clients:
            await asyncio.to_thread(client.close)


class CoreContender(Contender):
    """This project's ``janus_space.JanusClient``."""

    name = "janus_space (core)"

    def __init__(self, placeholder: bytes) -> None:
        super().__init__(placeholder)
        self._client: Any = None

    async def open(self, url: str) -> None:
        from janus_space import JanusClient

        self._client = JanusClient(base_url=url)

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        result = await self._client.understand(question, image)
        text: str = result.text
        return text

    async def generate(self, prompt: str) -> int:
        return len((await self._client.generate(prompt)).images)

    async def close(self) -> None:
        await self._client.aclose()


class LangChainContender(Contender):
    """``langchain_janus.ChatJanus`` (``ainvoke`` with one human message)."""

    name = "ChatJanus (LangChain)"
    generates = False

    def __init__(self, placeholder: bytes) -> None:
        super().__init__(placeholder)
        self._model: Any = None

    async def open(self, url: str) -> None:
        try:
            from langchain_janus import ChatJanus
        except ImportError as exc:
            raise NotAvailable(f"langchain_janus.ChatJanus does not import: {exc}") from None
        try:
            self._model = ChatJanus(base_url=url)
        except Exception as exc:
            raise NotAvailable(f"ChatJanus(base_url=...) failed: {exc!r}") from None

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        from langchain_core.messages import HumanMessage

        if image is None:
            message = HumanMessage(content=question)
        else:
            block = {"type": "image", "base64": base64.b64encode(image).decode(), "mime_type": mime}
            message = HumanMessage(content=[{"type": "text", "text": question}, block])
        reply = await self._model.ainvoke([message])
        return str(reply.text)

    async def close(self) -> None:
        closer = getattr(self._model, "aclose", None)
        if closer is not None:
            await closer()


class LlamaIndexContender(Contender):
    """``llama_index_janus.JanusPro`` (``achat`` with one user message)."""

    name = "JanusPro (LlamaIndex)"
    generates = False

    def __init__(self, placeholder: bytes) -> None:
        super().__init__(placeholder)
        self._llm: Any = None

    async def open(self, url: str) -> None:
        try:
            from llama_index_janus import JanusPro
        except ImportError as exc:
            raise NotAvailable(f"llama_index_janus.JanusPro does not import: {exc}") from None
        try:
            self._llm = JanusPro(base_url=url)
        except Exception as exc:
            raise NotAvailable(f"JanusPro(base_url=...) failed: {exc!r}") from None

    async def understand(self, question: str, image: bytes | None, mime: str) -> str:
        from llama_index.core.llms import ChatMessage, ImageBlock, TextBlock

        blocks: list[Any] = []
        if image is not None:
            blocks.append(ImageBlock(image=image, image_mimetype=mime))
        blocks.append(TextBlock(text=question))
        reply = await self._llm.achat([ChatMessage(role="user", blocks=blocks)])
        return str(reply.message.content)

    async def close(self) -> None:
        closer = getattr(self._llm, "aclose", None)
        if closer is not None:
            await closer()


CONTENDERS: dict[str, type[Contender]] = {
    "floor": FloorContender,
    "gradio_client": GradioClientContender,
    "gradio_client_pool": GradioClientPoolContender,
    "core": CoreContender,
    "langchain": LangChainContender,
    "llama_index": LlamaIndexContender,
}


def make_contender(key: str, placeholder: bytes) -> Contender:
    """A new, unopened contender by key (see ``CONTENDERS``)."""
    return CONTENDERS[key](placeholder)
