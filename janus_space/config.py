"""Endpoint discovery: read the app's ``/config`` once and find the two functions by api_name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError, SpaceUnavailableError

__all__ = ["GENERATE", "UNDERSTAND", "Endpoint", "SpaceConfig", "parse_config"]

UNDERSTAND = "multimodal_understanding"
GENERATE = "generate_image"


@dataclass(frozen=True)
class Endpoint:
    """Where one function of the app is reached: its fn_index, trigger and input count."""

    api_name: str
    fn_index: int
    trigger_id: int | None
    n_inputs: int


@dataclass(frozen=True)
class SpaceConfig:
    """What the client needs from ``/config``: API prefix, protocol, version, the two endpoints."""

    api_prefix: str
    protocol: str
    version: str
    understand: Endpoint
    generate: Endpoint


def _endpoint(dependencies: list[Any], api_name: str) -> Endpoint:
    for position, dep in enumerate(dependencies):
        if not isinstance(dep, Mapping) or dep.get("api_name") != api_name:
            continue
        fn_index = dep.get("id", position)
        targets = dep.get("targets") or []
        trigger: int | None = None
        if targets and isinstance(targets[0], (list, tuple)) and targets[0]:
            trigger = targets[0][0] if isinstance(targets[0][0], int) else None
        inputs = dep.get("inputs") or []
        return Endpoint(api_name, int(fn_index), trigger, len(inputs))
    raise ProtocolError(
        f"the Space's /config has no function named {api_name!r}: it is not the Janus-Pro app "
        "or its API changed"
    )


def parse_config(payload: Any) -> SpaceConfig:
    """Validate a decoded ``/config`` document and pull out what the client needs."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("dependencies"), list):
        raise SpaceUnavailableError("the Space's /config is not a Gradio app configuration")
    deps = payload["dependencies"]
    prefix = payload.get("api_prefix")
    return SpaceConfig(
        api_prefix=("/" + prefix.strip("/"))
        if isinstance(prefix, str) and prefix.strip("/")
        else "",
        protocol=str(payload.get("protocol", "")),
        version=str(payload.get("version", "")),
        understand=_endpoint(deps, UNDERSTAND),
        generate=_endpoint(deps, GENERATE),
    )
