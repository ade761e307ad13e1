"""Fixtures for the whole suite: the local replica of the Space and the record/replay tiers.

A test that takes ``space_url`` runs twice:

* ``[replay]``: vcrpy answers from ``cassettes/<test module>/<test name>.yaml`` (record mode
  none: a missing cassette or an unmatched request fails the test) and every socket except
  Unix ones is blocked, which proves the tier touches no network. The URL is
  :data:`cassette_support.REPLAY_BASE_URL`, where nothing listens.
* ``[live]``: the URL of the replica (a real Gradio server started once per session, lazily).

``python -m pytest --record [tests...]`` makes ``[replay]`` re-record (overwrite) its cassette
against the replica, with secrets filtered; commit the changed cassettes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

# A developer's saved `hf auth login` must never reach a test: point huggingface_hub's token file
# at a path that does not exist (before anything imports huggingface_hub).
os.environ["HF_TOKEN_PATH"] = str(Path(tempfile.gettempdir()) / "janus-space-tests-no-token")
os.environ.pop("HF_TOKEN", None)

import pytest
import pytest_socket
from cassette_support import (
    REPLAY_BASE_URL,
    CassetteSession,
    cassette_path,
    running_replica,
    strip_param_id,
)
from cassette_support import use_cassette as _use_cassette

SpaceTier = Literal["replay", "record", "live"]
_CASSETTE = pytest.StashKey[CassetteSession]()
_TIER = pytest.StashKey[SpaceTier]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record",
        action="store_true",
        default=False,
        help="re-record the cassettes of the [replay] tests against the local replica",
    )


@pytest.fixture(scope="session")
def replica_url() -> Iterator[str]:
    """Base URL of the replica (``python -m janus_space.replica``), started on first use."""
    with running_replica() as url:
        yield url


@pytest.fixture(params=["replay", "live"])
def space_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Base URL of "the Space" for this tier; see the module docstring."""
    node = request.node
    if request.param == "live":
        node.stash[_TIER] = "live"
        yield request.getfixturevalue("replica_url")
        return
    path = cassette_path(
        request.config.rootpath, node.path, strip_param_id(node.name, request.param)
    )
    if request.config.getoption("--record"):
        live_url = request.getfixturevalue("replica_url")
        node.stash[_TIER] = "record"
        with _use_cassette(path, record_from=live_url) as cassette:
            node.stash[_CASSETTE] = cassette
            yield live_url
        return
    if not path.exists():
        pytest.fail(f"no cassette {path}: record it with `python -m pytest --record {node.nodeid}`")
    node.stash[_TIER] = "replay"
    pytest_socket.disable_socket(allow_unix_socket=True)  # undone by pytest-socket's teardown
    with _use_cassette(path) as cassette:
        node.stash[_CASSETTE] = cassette
        yield REPLAY_BASE_URL
    if cassette.unmatched:
        pytest.fail(f"requests not in cassette {path}: {cassette.unmatched}")


@pytest.fixture
def space_tier(request: pytest.FixtureRequest, space_url: str) -> SpaceTier:
    """Which tier ``space_url`` is in: ``"replay"``, ``"record"`` or ``"live"``."""
    node: pytest.Item = request.node
    return node.stash[_TIER]


@pytest.fixture
def space_cassette(request: pytest.FixtureRequest, space_url: str) -> CassetteSession | None:
    """The cassette in use (replay and record tiers), else None."""
    node: pytest.Item = request.node
    return node.stash.get(_CASSETTE, None)
