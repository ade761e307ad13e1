"""Building a JanusPool: endpoints and settings checked at once, before any network."""

from __future__ import annotations

from typing import Any

import pytest
from pool_support import FAST

from janus_space import (
    SPACE_CAPABILITIES,
    InvalidInputError,
    JanusBackend,
    JanusClient,
    JanusError,
    JanusPool,
)


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        ("deepseek-ai/Janus-Pro-7B", "a single endpoint still goes in a list"),
        (JanusClient("a/b"), "a single endpoint still goes in a list"),
        (None, "must be a list"),
        ([], "at least one endpoint"),
        ([42], r"endpoints\[0\] must be a Space id"),
        (["a/b", ""], r"endpoints\[1\] must be a Space id"),
        (["ftp://example.com/x"], "not an http"),
        (["not-a-space-id"], r"endpoints\[0\].*owner/name"),
        (["a/b", "c/d", "a/b"], "more than once"),
        (["http://127.0.0.1:9/", "http://127.0.0.1:9"], "more than once"),
    ],
)
def test_bad_endpoints_are_refused(endpoints: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        JanusPool(endpoints)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "http://127.0.0.1:9"}, "name one endpoint"),
        ({"space": "a/b"}, "name one endpoint"),
        ({"bogus": 1}, "unknown"),
        ({"timeout": -1}, "timeout"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"hardware": {"x/y": "zero-a10g"}}, "not an endpoint of the pool"),
        ({"hardware": {"a/b": ""}}, "hardware name"),
        ({"hardware": ["zero-a10g"]}, "must map"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        JanusPool(["a/b", "http://127.0.0.1:9"], **settings)


async def test_a_closed_client_is_refused() -> None:
    client = JanusClient(base_url="http://127.0.0.1:9")
    await client.aclose()
    with pytest.raises(InvalidInputError, match="closed"):
        JanusPool(["a/b", client])


def test_shared_settings_reach_the_clients_the_pool_builds_only() -> None:
    own = JanusClient(base_url="http://127.0.0.1:9", timeout=7.0, max_concurrency=2)
    pool = JanusPool(["a/b", "http://127.0.0.1:8/", own], timeout=12.0)
    built_id, built_url, given = pool.clients
    assert pool.endpoints == ("a/b", "http://127.0.0.1:8", "http://127.0.0.1:9")
    assert built_id.options.timeouts.call == built_url.options.timeouts.call == 12.0
    assert given is own and given.options.timeouts.call == 7.0
    assert built_id.base_url is None and built_url.base_url == "http://127.0.0.1:8"


def test_janus_base_url_does_not_redirect_listed_space_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANUS_BASE_URL", "http://127.0.0.1:9")
    pool = JanusPool(["a/b", "c/d"])
    assert pool.endpoints == ("a/b", "c/d")
    assert [client.base_url for client in pool.clients] == [None, None]


def test_it_is_a_backend_with_the_space_capabilities() -> None:
    pool = JanusPool(["a/b", "http://127.0.0.1:9"])
    assert isinstance(pool, JanusBackend)
    assert pool.capabilities.kind == "pool"
    for name in ("images_per_call", "max_new_tokens", "images_per_generation", "context_tokens"):
        assert getattr(pool.capabilities, name) == getattr(SPACE_CAPABILITIES, name)


def test_no_token_in_its_repr() -> None:
    secret = "hf_" + "x" * 30
    pool = JanusPool(["a/b", "http://127.0.0.1:9"], hf_token=secret)
    assert secret not in repr(pool) and secret not in repr(pool.clients)
    assert repr(pool) == "JanusPool(['a/b', 'http://127.0.0.1:9'])"


async def test_bad_input_fails_before_any_endpoint_is_called(refused: str) -> None:
    other = refused.replace(refused.rsplit(":", 1)[1], "9")
    async with JanusPool([refused, other], **FAST) as pool:
        with pytest.raises(InvalidInputError, match="seed"):
            await pool.understand("fine question", seed=-1)
        with pytest.raises(InvalidInputError, match="prompt"):
            await pool.generate("   ")
        with pytest.raises(InvalidInputError, match="num_images"):
            await pool.generate("a cat", num_images=2)


async def test_aclose_closes_every_client_and_refuses_calls() -> None:
    own = JanusClient(base_url="http://127.0.0.1:9")
    pool = JanusPool(["a/b", own])
    async with pool:
        assert not pool.closed
    assert pool.closed and own.closed and all(client.closed for client in pool.clients)
    with pytest.raises(JanusError, match="closed"):
        await pool.understand("anything")
    await pool.aclose()  # idempotent
