"""Helpers of the CLI tests: run ``janus-space`` in-process and capture what it prints."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cli_support import CLI, Picture, Run
from PIL import Image

from janus_space.cli import main


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's JANUS_BASE_URL / HF_TOKEN must not leak into the tests."""
    monkeypatch.delenv("JANUS_BASE_URL", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CLI:
    """``cli(*argv, stdin="...")``: run ``main`` with fresh stdout/stderr (and stdin) buffers."""

    def run(*argv: str, stdin: str | None = None) -> Run:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def picture(tmp_path: Path) -> Picture:
    """``picture(name, (w, h))``: a deterministic PNG (a gradient) in the test's directory.

    Deterministic bytes and a fixed file name keep recorded request bodies matching on replay.
    """

    def make(name: str, size: tuple[int, int]) -> str:
        path = tmp_path / name
        Image.linear_gradient("L").resize(size).convert("RGB").save(path, "PNG")
        return str(path)

    return make
