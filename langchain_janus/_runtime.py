"""Where Janus runs and how to reach it: the settings ChatJanus and the tools share.

Each object holds one ``janus_space.BackendHandle``: the backend the user passed
(``backend=``), or one built on first use from these settings — a ``JanusClient`` for one
Space, a ``JanusPool`` for ``endpoints=[...]`` — and rebuilt when the settings change. The
core keeps one HTTP session per event loop and releases it when the loop ends; sync calls run
on the core's loop thread. Nothing connects until the first call.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from langchain_core.utils import secret_from_env
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr
from typing_extensions import Self

from janus_space import DEFAULT_SPACE, BackendHandle, JanusBackend, JanusClient
from janus_space.runtime import on_sync_runner

__all__ = ["SpaceSettings", "on_loop_thread"]


def on_loop_thread() -> bool:
    """True on the core's loop thread, which must never wait for itself."""
    return on_sync_runner()


class SpaceSettings(BaseModel):
    """Where Janus runs (a Space, a pool of endpoints, or any backend) and how to reach it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: JanusBackend | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Any janus_space backend (JanusClient, JanusPool, LocalJanus); when set, "
        "the connection settings below are not used. It is not closed by close().",
    )
    endpoints: list[str] | None = Field(
        default=None,
        description="Several Space ids or base URLs served as one pool (janus_space.JanusPool), "
        "in order of preference.",
    )
    space: str = Field(
        default=DEFAULT_SPACE,
        description="Hugging Face Space id (owner/name); ignored when base_url is set.",
    )
    base_url: str | None = Field(
        default=None,
        description="URL of a self-hosted copy of the Space (e.g. a local replica); "
        "overrides `space`. Default: the JANUS_BASE_URL environment variable.",
    )
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("HF_TOKEN", default=None),
        validation_alias=AliasChoices("api_key", "hf_token"),
        description="Hugging Face token (default: HF_TOKEN, else the `hf auth login` token); "
        "sent only to Hugging Face hosts unless allow_token_to_custom_host is set.",
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
    proxy: str | None = Field(
        default=None,
        description="HTTP(S) proxy URL; HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured anyway.",
    )
    default_headers: dict[str, str] | None = Field(
        default=None,
        repr=False,
        exclude=True,
        description="Extra request headers, e.g. {'x-ip-token': ...}; kept out of repr and dumps.",
    )

    _handle: BackendHandle = PrivateAttr(default_factory=BackendHandle)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._handle.bind(self)

    def _space_settings(self) -> dict[str, Any]:
        """Keyword settings of the core's Space client; subclasses add their own."""
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "hf_token": self.api_key.get_secret_value() if self.api_key else None,
            "allow_token_to_custom_host": self.allow_token_to_custom_host,
            "max_retries": self.max_retries,
            "extra_headers": self.default_headers,
            "proxy": self.proxy,
        }
        if self.timeout is not None:
            settings["timeout"] = self.timeout
        return settings

    def _backend_key(self) -> tuple[Any, ...]:
        """What the built backend depends on: a copy or an edit that changes it rebuilds it."""
        settings = sorted(self._space_settings().items(), key=str)
        digest = hashlib.sha256(repr(settings).encode()).hexdigest()  # no second copy of a token
        return (tuple(self.endpoints or ()), self.space, digest)

    def _build_backend(self) -> JanusBackend:
        settings = self._space_settings()
        if self.endpoints:
            from janus_space.pool import JanusPool

            settings.pop("base_url", None)
            return JanusPool(self.endpoints, **settings)
        return JanusClient(self.space, **settings)

    @property
    def janus_backend(self) -> JanusBackend:
        """The backend calls go to: ``backend`` if given, else one built from the settings."""
        if self.backend is not None:
            return self.backend
        backend: JanusBackend = self._handle.get(self._backend_key(), self._build_backend)
        return backend

    async def aclose(self) -> None:
        """Close the backend this object built (a ``backend`` you passed stays open)."""
        await self._handle.aclose()

    def close(self) -> None:
        """Sync ``aclose``: for scripts and notebooks; in async code prefer ``await aclose()``."""
        self._handle.close()

    # Copies and unpickled objects get their own handle (a backend built on first use): sessions,
    # loop threads and the token inside them are never shared or serialised.

    def __copy__(self) -> Self:
        copied = super().__copy__()
        object.__setattr__(copied, "__pydantic_private__", {"_handle": BackendHandle()})
        copied._handle.bind(copied)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        state = {k: v for k, v in self.__dict__.items() if k != "backend"}
        object.__setattr__(
            copied, "__dict__", {**copy.deepcopy(state, memo), "backend": self.backend}
        )
        object.__setattr__(copied, "__pydantic_extra__", copy.deepcopy(self.__pydantic_extra__))
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(copied, "__pydantic_private__", {"_handle": BackendHandle()})
        copied._handle.bind(copied)
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        if self.backend is not None:
            raise TypeError("an object with backend= cannot be pickled; pass settings instead")
        state = super().__getstate__()
        state["__pydantic_private__"] = None
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "__pydantic_private__": {"_handle": BackendHandle()}})
        self._handle.bind(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
