"""Endpoint discovery from /config: found by api_name, never by hard-coded index."""

from __future__ import annotations

from typing import Any

import pytest

from janus_space.config import parse_config
from janus_space.errors import ProtocolError, SpaceUnavailableError


def config(*deps: dict[str, Any], prefix: str = "/gradio_api") -> dict[str, Any]:
    return {
        "version": "5.1.0",
        "protocol": "sse_v3",
        "api_prefix": prefix,
        "dependencies": list(deps),
    }


def dep(fn: int, name: str | None, trigger: int, n: int) -> dict[str, Any]:
    return {"id": fn, "api_name": name, "targets": [[trigger, "click"]], "inputs": list(range(n))}


def test_live_layout_is_found() -> None:
    parsed = parse_config(
        config(
            dep(0, None, 12, 1),
            dep(1, None, 22, 1),
            dep(2, "multimodal_understanding", 10, 5),
            dep(3, "generate_image", 20, 4),
        )
    )
    assert (
        parsed.understand.fn_index,
        parsed.understand.trigger_id,
        parsed.understand.n_inputs,
    ) == (2, 10, 5)
    assert (parsed.generate.fn_index, parsed.generate.trigger_id) == (3, 20)
    assert parsed.api_prefix == "/gradio_api" and parsed.protocol == "sse_v3"


def test_a_reordered_space_still_works() -> None:
    parsed = parse_config(
        config(
            dep(7, "generate_image", 40, 4),
            dep(9, "multimodal_understanding", 30, 5),
            prefix="gradio_api/",
        )
    )
    assert (parsed.understand.fn_index, parsed.generate.fn_index) == (9, 7)
    assert parsed.api_prefix == "/gradio_api"


def test_missing_function_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="multimodal_understanding"):
        parse_config(config(dep(3, "generate_image", 20, 4)))


def test_non_gradio_document_means_unavailable() -> None:
    with pytest.raises(SpaceUnavailableError):
        parse_config(["not", "a", "config"])
