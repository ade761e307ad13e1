"""Types shared by the CLI tests (fixtures are in this folder's conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Run:
    """One in-process run of ``janus-space``: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


class CLI(Protocol):
    """The ``cli`` fixture: ``cli(*argv, stdin=None) -> Run``."""

    def __call__(self, *argv: str, stdin: str | None = None) -> Run: ...


class Picture(Protocol):
    """The ``picture`` fixture: ``picture(name, (width, height)) -> path``."""

    def __call__(self, name: str, size: tuple[int, int]) -> str: ...
