"""Fixtures of the Hub tests: the stand-in Hub, and an environment where nothing reaches the
real one — no token of the user's, no proxy, huggingface_hub's offline switch off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
from hub_server import TOKEN, HubStandIn, ScriptedSpace, running_hub
from huggingface_hub import constants

_CLEARED = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HF_OIDC_RESOURCE",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "NO_PROXY",
    "no_proxy",
    "JANUS_BASE_URL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def no_user_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Neither the user's token (env or ``hf auth login`` file) nor their proxy is used.

    huggingface_hub reads ``HF_TOKEN_PATH`` and ``HF_HUB_OFFLINE`` once, at its import, so the
    module constants are patched; the token file path points into this test's folder.
    """
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    token_file = tmp_path / "hf_home" / "token"
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_file))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield token_file
    huggingface_hub.close_session()  # its shared client pooled connections to the stand-in


@pytest.fixture
def hub() -> Iterator[HubStandIn]:
    """A running stand-in Hub: user ``tester`` (token ``TOKEN``, not PRO) and the public Space."""
    with running_hub() as stand_in:
        stand_in.users[TOKEN] = {"name": "tester", "isPro": False}
        stand_in.spaces["deepseek-ai/Janus-Pro-7B"] = ScriptedSpace(
            stages=["RUNNING"], hardware="zero-a10g", requested_hardware="zero-a10g"
        )
        yield stand_in
