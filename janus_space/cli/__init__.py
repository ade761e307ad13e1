"""``janus-space``: the command line of the Janus-Pro Space client (stdlib argparse only).

``ask`` (one answer), ``chat`` (a session with history), ``imagine`` (five images saved as
files) and ``replica`` (the offline stand-in of the Space). Results go to stdout, progress and
notes to stderr, failures to a one-line message and a documented exit code (``EXIT_CODES``)
so scripts can branch on what went wrong. ``main`` returns the code instead of exiting, so
tests and other programs can call it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from janus_space import JanusError, JanusWarning

from ._chat import chat_loop, run_chat
from ._commands import ask, imagine, write_json
from ._display import StatusDisplay, route_logging
from ._errors import (
    EXIT_APP,
    EXIT_CODES,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_QUOTA,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    describe_error,
    error_record,
    exit_code_for,
)
from ._parser import Settings, build_parser, settings_from
from ._replica import run_replica

__all__ = [
    "EXIT_APP",
    "EXIT_CODES",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_QUOTA",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "StatusDisplay",
    "build_parser",
    "chat_loop",
    "describe_error",
    "exit_code_for",
    "main",
]


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``janus-space`` with ``argv`` (default: ``sys.argv``); return its exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        # argparse prints help and usage errors to sys.stdout / sys.stderr itself.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse exits with 2)
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 2
    if args.command == "replica":
        return run_replica(args.host, args.port, background=args.background, out=out, err=err)
    settings = settings_from(args)
    display = StatusDisplay(err, quiet=settings.quiet)
    with warnings.catch_warnings(), route_logging(display, verbose=settings.verbose):
        # The CLI reports trimmed history and dropped images itself, from the call's result.
        warnings.simplefilter("ignore", JanusWarning)
        try:
            return _run(args.command, args, settings, display, out)
        except JanusError as exc:
            display.stop()
            return _fail(exc, settings, display, out)
        except KeyboardInterrupt:
            display.stop()
            display.note("janus-space: interrupted; the job on the Space was cancelled")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return EXIT_FAILURE  # stdout's reader left (e.g. `| head`): nothing to report to


def _run(
    command: str,
    args: argparse.Namespace,
    settings: Settings,
    display: StatusDisplay,
    out: TextIO,
) -> int:
    if command == "ask":
        return asyncio.run(ask(settings, args.question, args.image, display, out))
    if command == "imagine":
        return asyncio.run(
            imagine(settings, args.prompt, args.output_dir, args.guidance, display, out)
        )
    if command == "chat":

        def describe(exc: BaseException) -> str:
            return describe_error(exc, token_set=settings.token_set, base_url=settings.base_url)

        return run_chat(
            settings,
            display,
            out,
            image=args.image,
            describe=describe,
        )
    raise AssertionError(f"unknown command {command!r}")


def _fail(error: JanusError, settings: Settings, display: StatusDisplay, out: TextIO) -> int:
    """Report ``error`` as one stderr line (and a JSON record with --json); return its code."""
    display.note(describe_error(error, token_set=settings.token_set, base_url=settings.base_url))
    if settings.json:
        write_json(out, error_record(error))
    return exit_code_for(error)
