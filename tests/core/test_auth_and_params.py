"""Tokens stay secret and go only to Hugging Face hosts; parameters are checked before sending."""

from __future__ import annotations

import base64
import json
import time

import pytest

from janus_space import InvalidInputError, JanusClient, Secret
from janus_space.auth import is_hf_host, jwt_expiry, resolve_hf_token, space_host_url
from janus_space.params import check_range, check_seed, check_text, check_unit


def test_secret_never_shows_itself() -> None:
    secret = Secret("hf_abcdefghijklmnopqrstuvwxyz")
    assert "hf_" not in repr(secret) and "hf_" not in str(secret) and "hf_" not in f"{secret}"
    assert secret.get() == "hf_abcdefghijklmnopqrstuvwxyz"


def test_token_from_env_and_never_in_client_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_envtokenenvtokenenvtoken")
    assert resolve_hf_token(None) == Secret("hf_envtokenenvtokenenvtoken")
    client = JanusClient()
    assert "hf_" not in repr(client) and "token=set" in repr(client)
    monkeypatch.delenv("HF_TOKEN")
    assert resolve_hf_token(None) is None


def test_hf_hosts() -> None:
    assert is_hf_host("https://deepseek-ai-janus-pro-7b.hf.space/config")
    assert is_hf_host("https://huggingface.co/api/spaces/x/y/jwt")
    assert not is_hf_host("http://deepseek-ai-janus-pro-7b.hf.space")  # no token over plain HTTP
    assert not is_hf_host("https://evil.example/huggingface.co")
    assert not is_hf_host("https://hf.space.evil.example")


def test_space_host_url() -> None:
    assert space_host_url("deepseek-ai/Janus-Pro-7B") == "https://deepseek-ai-janus-pro-7b.hf.space"
    with pytest.raises(ValueError):
        space_host_url("no-slash")


def test_jwt_expiry_reads_exp() -> None:
    claims = (
        base64.urlsafe_b64encode(json.dumps({"exp": 2_000_000_000}).encode()).decode().rstrip("=")
    )
    assert jwt_expiry(f"h.{claims}.s") == 2_000_000_000
    assert jwt_expiry("garbage") > time.time()


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True, None])
def test_bad_seeds(seed: object) -> None:
    with pytest.raises(InvalidInputError, match="seed"):
        check_seed(seed)


@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan"), float("inf"), "0.5", False])
def test_bad_unit_values(value: object) -> None:
    with pytest.raises(InvalidInputError, match="top_p"):
        check_unit(value, "top_p")


def test_good_values_pass() -> None:
    assert (
        check_seed(0) == 0
        and check_unit(1, "t") == 1.0
        and check_range(10, "guidance", 1, 10) == 10.0
    )
    assert check_text(" q ", "question") == " q "
    with pytest.raises(InvalidInputError, match="question is empty"):
        check_text("  ", "question")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"text_only": "maybe"}, "text_only"),
        ({"extra_images": "all"}, "extra_images"),
        ({"image_transport": "carrier-pigeon"}, "image_transport"),
        ({"space": "not-a-space-id"}, "owner/name"),
    ],
)
def test_bad_client_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        JanusClient(**kwargs)  # type: ignore[arg-type]
