"""Connection settings shared by ChatJanus and JanusImageGenerator, and the clients they own.

Each object owns one ``janus_space.ClientPerLoop`` (so ``abatch`` and concurrent calls on one
event loop share one client and its session) and, for sync calls, one ``LoopThread`` whose
loop gets its own client. Nothing connects until the first call. ``aclose()``/``close()``
release both; a finalizer closes the loop thread's client if an object is dropped unclosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import weakref
from typing import Any

from langchain_core.utils import secret_from_env
from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr
from typing_extensions import Self

from janus_space import DEFAULT_SPACE, ClientPerLoop, JanusClient, LoopThread, Secret

__all__ = ["ClientRuntime", "SpaceSettings", "on_loop_thread"]

_THREAD_NAME = "langchain-janus-loop"
_RUNTIME_LOCK = threading.Lock()  # guards the lazy creation of each object's runtime


class ClientRuntime:
    """The clients of one model or tool: one per event loop, plus a loop thread for sync calls."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self.pool: ClientPerLoop[JanusClient] = ClientPerLoop(self._new_client)
        self._thread: LoopThread | None = None
        self._lock = threading.Lock()

    def _new_client(self) -> JanusClient:
        return JanusClient(**self._options)

    @property
    def loop_thread(self) -> LoopThread:
        """The background loop that sync calls (``invoke``, ``stream``, ``batch``) run on."""
        with self._lock:
            if self._thread is None:
                self._thread = LoopThread(name=_THREAD_NAME)
            return self._thread

    def close_thread(self) -> None:
        """Close the loop thread's client and stop the thread (blocking; not on that thread)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(RuntimeError):
            thread.run(self.pool.aclose_current())
        thread.close()

    def close_other_loops(self) -> None:
        """Ask clients living on other, still running loops to close (without waiting)."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, client in self.pool.clients():
            if loop is not current and loop.is_running() and not client.closed:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)


def on_loop_thread() -> bool:
    """True on one of this package's loop threads, which must never wait for themselves."""
    return threading.current_thread().name == _THREAD_NAME


def _finalize(runtime: ClientRuntime) -> None:
    """Finalizer: close the loop thread's client from a helper thread.

    The garbage collector may run this on a loop thread, which must not wait for itself, so
    the helper is only joined from other threads.
    """
    if runtime._thread is None:
        return
    worker = threading.Thread(target=runtime.close_thread, daemon=True)
    worker.start()
    if not on_loop_thread():
        worker.join(timeout=5)


class SpaceSettings(BaseModel):
    """Where the Space is and how to reach it; the client options LangChain users set."""

    space: str = Field(
        default=DEFAULT_SPACE,
        description="Hugging Face Space id (owner/name); ignored when base_url is set.",
    )
    base_url: str | None = Field(
        default=None,
        description="URL of a self-hosted copy of the Space (e.g. a local replica); "
        "overrides `space`.",
    )
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("HF_TOKEN", default=None),
        validation_alias=AliasChoices("api_key", "hf_token"),
        description="Hugging Face token (default: the HF_TOKEN environment variable); sent "
        "only to Hugging Face hosts unless allow_token_to_custom_host is set.",
    )
    allow_token_to_custom_host: bool = Field(
        default=False, description="Also send the token to a custom base_url."
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a whole call may take, queue wait included (default: the core's 300).",
    )
    max_retries: int = Field(
        default=2, ge=0, description="Retries of transient failures (429, 5xx, no GPU)."
    )
    default_headers: dict[str, str] | None = Field(
        default=None,
        repr=False,
        exclude=True,
        description="Extra request headers, e.g. {'x-ip-token': ...}; kept out of repr and dumps.",
    )

    _runtime: ClientRuntime | None = PrivateAttr(default=None)

    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``JanusClient``; subclasses add their own."""
        options: dict[str, Any] = {
            "space": self.space,
            "base_url": self.base_url,
            "hf_token": Secret(self.api_key.get_secret_value()) if self.api_key else None,
            "allow_token_to_custom_host": self.allow_token_to_custom_host,
            "max_retries": self.max_retries,
            "extra_headers": self.default_headers,
        }
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options

    @property
    def _clients(self) -> ClientRuntime:
        """The runtime, made on first use (creating the object touches no network)."""
        with _RUNTIME_LOCK:
            if self._runtime is None:
                runtime = ClientRuntime(self._client_options())
                weakref.finalize(self, _finalize, runtime)
                self._runtime = runtime
            return self._runtime

    async def aclose(self) -> None:
        """Close every client this object opened (this loop's, the sync loop thread's)."""
        runtime = self._runtime
        if runtime is None:
            return
        await runtime.pool.aclose_current()
        await asyncio.to_thread(runtime.close_thread)
        runtime.close_other_loops()

    def close(self) -> None:
        """Sync ``aclose``: for scripts and notebooks; in async code prefer ``await aclose()``."""
        runtime = self._runtime
        if runtime is None:
            return
        runtime.close_thread()
        runtime.close_other_loops()

    # Copies and unpickled objects get their own clients (made on first use): sessions, loop
    # threads and the token inside them are never shared or serialised.

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        private = {
            key: None if key == "_runtime" else copy.deepcopy(value, memo)
            for key, value in (self.__pydantic_private__ or {}).items()
        }
        object.__setattr__(copied, "__dict__", copy.deepcopy(self.__dict__, memo))
        object.__setattr__(copied, "__pydantic_extra__", copy.deepcopy(self.__pydantic_extra__))
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(copied, "__pydantic_private__", private)
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_runtime": None}
        return state

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
