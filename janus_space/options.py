"""Settings declared once and validated once: sampling defaults, limits, timeouts, Space options.

``SpaceOptions`` is the frozen settings object of one Space client; ``JanusClient``, its
connection and both adapters read it instead of re-checking arguments by hand. The sampling
defaults and parameter ranges here are the Space's own (its sliders and numbers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .auth import Secret
from .errors import InvalidInputError
from .params import MAX_SEED, check_range

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_SPACE",
    "GENERATION_DEFAULTS",
    "GUIDANCE_RANGE",
    "MAX_SEED",
    "UNDERSTANDING_DEFAULTS",
    "GenerationDefaults",
    "SpaceOptions",
    "Timeouts",
    "UnderstandingDefaults",
]

DEFAULT_SPACE = "deepseek-ai/Janus-Pro-7B"
BASE_URL_ENV = "JANUS_BASE_URL"
"""Environment variable read as the default ``base_url`` (like ``OPENAI_BASE_URL``)."""
GUIDANCE_RANGE = (1.0, 10.0)  # the Space's "CFG Weight" slider

TextOnly = Literal["placeholder", "error"]
ExtraImages = Literal["latest", "error"]
ImageTransport = Literal["inline", "upload"]


@dataclass(frozen=True)
class UnderstandingDefaults:
    """The Space's defaults for an answer: seed 42, top_p 0.95, temperature 0.1."""

    seed: int = 42
    top_p: float = 0.95
    temperature: float = 0.1


@dataclass(frozen=True)
class GenerationDefaults:
    """The Space's defaults for images: seed 12345, CFG weight 5, temperature 1, five images."""

    seed: int = 12345
    guidance: float = 5.0
    temperature: float = 1.0
    num_images: int = 5


UNDERSTANDING_DEFAULTS = UnderstandingDefaults()
GENERATION_DEFAULTS = GenerationDefaults()


def _positive_seconds(value: Any, name: str) -> float:
    return check_range(value, name, 0.001, 86_400)


@dataclass(frozen=True)
class Timeouts:
    """Seconds: a whole call, opening a connection, a silent event stream, a waking Space."""

    call: float = 300.0
    connect: float = 30.0
    idle: float = 45.0
    cold_start: float = 600.0

    def __post_init__(self) -> None:
        for item in fields(self):
            object.__setattr__(
                self, item.name, _positive_seconds(getattr(self, item.name), f"{item.name}_timeout")
            )


def _int_at_least(value: Any, name: str, low: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        extra = " or None" if optional else ""
        raise InvalidInputError(
            f"{name} must be an integer of at least {low}{extra}, not {value!r}"
        )


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInputError(f"{name} must be one of {allowed}, not {value!r}")


def _http_url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip().lower().startswith(("http://", "https://")):
        raise InvalidInputError(f"{name} must be an http(s) URL, not {value!r}")
    return value.strip().rstrip("/")


@dataclass(frozen=True)
class SpaceOptions:
    """Everything one Space client is configured with, validated when it is made."""

    space: str = DEFAULT_SPACE
    base_url: str | None = None
    hf_token: Secret | None = field(default=None, repr=False)
    discover_token: bool = True
    """With no ``hf_token``: use the token Hugging Face tools find (found on the first call)."""
    allow_token_to_custom_host: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_retries: int = 2
    text_only: TextOnly = "placeholder"
    extra_images: ExtraImages = "latest"
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    hub_url: str = "https://huggingface.co"
    max_download_bytes: int = 20_000_000
    max_image_side: int | None = 384
    max_concurrency: int | None = None
    max_connections: int = 4
    image_transport: ImageTransport = "inline"
    proxy: str | None = None
    trust_env: bool = True

    def __post_init__(self) -> None:
        if self.base_url is not None:
            object.__setattr__(self, "base_url", _http_url(self.base_url, "base_url"))
        elif (
            not isinstance(self.space, str)
            or self.space.count("/") != 1
            or not all(self.space.split("/"))
        ):
            raise InvalidInputError(f"a Space id looks like 'owner/name', not {self.space!r}")
        object.__setattr__(self, "hub_url", _http_url(self.hub_url, "hub_url"))
        if self.proxy is not None:
            object.__setattr__(self, "proxy", _http_url(self.proxy, "proxy"))
        if not isinstance(self.timeouts, Timeouts):
            raise InvalidInputError("timeouts must be a janus_space.Timeouts")
        _int_at_least(self.max_retries, "max_retries", 0)
        _int_at_least(self.max_download_bytes, "max_download_bytes", 1)
        _int_at_least(self.max_image_side, "max_image_side", 16, optional=True)
        _int_at_least(self.max_concurrency, "max_concurrency", 1, optional=True)
        _int_at_least(self.max_connections, "max_connections", 2)
        _choice(self.text_only, "text_only", ("placeholder", "error"))
        _choice(self.extra_images, "extra_images", ("latest", "error"))
        _choice(self.image_transport, "image_transport", ("inline", "upload"))
        headers = self.extra_headers
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidInputError("extra_headers must map strings to strings")
        object.__setattr__(self, "extra_headers", dict(headers))
        if self.hf_token is not None and not isinstance(self.hf_token, Secret):
            raise InvalidInputError("hf_token must be a janus_space.Secret (use SpaceOptions.of)")

    @classmethod
    def of(
        cls,
        space: str = DEFAULT_SPACE,
        *,
        hf_token: str | Secret | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        idle_timeout: float | None = None,
        cold_start_timeout: float | None = None,
        **settings: Any,
    ) -> SpaceOptions:
        """Options from flat keyword settings (``timeout=`` etc.), with the environment's defaults.

        The token comes from ``hf_token`` or, on the first call, Hugging Face's own discovery
        (``HF_TOKEN``, the ``hf auth login`` file); ``base_url`` defaults to ``JANUS_BASE_URL``.
        """
        if hf_token is not None and not isinstance(hf_token, (str, Secret)):
            raise InvalidInputError("hf_token must be a string")
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise InvalidInputError(f"unknown Space client settings: {sorted(unknown)}")
        if "extra_headers" in settings and settings["extra_headers"] is None:
            del settings["extra_headers"]
        if settings.get("base_url") is None and os.environ.get(BASE_URL_ENV):
            settings["base_url"] = os.environ[BASE_URL_ENV]
        given = {
            "call": timeout,
            "connect": connect_timeout,
            "idle": idle_timeout,
            "cold_start": cold_start_timeout,
        }
        timeouts = replace(
            settings.pop("timeouts", None) or Timeouts(),
            **{k: v for k, v in given.items() if v is not None},
        )
        token = hf_token if isinstance(hf_token, Secret) or hf_token is None else Secret(hf_token)
        if token is not None:
            token = Secret(token.get().strip()) if token.get().strip() else None
        elif settings.get("discover_token", True):
            from .hub import token_without_import

            found, token = token_without_import()  # else found on the first call, off the loop
            if found:
                settings["discover_token"] = False
        return cls(space=space, hf_token=token, timeouts=timeouts, **settings)

    @property
    def endpoint(self) -> str:
        """How results name this endpoint: the base URL of a copy, else the Space id."""
        return self.base_url or self.space
