"""``janus-space``: the command line of the Janus-Pro client (stdlib argparse only).

``ask`` (one answer), ``chat`` (a session with history), ``imagine`` (images saved as files),
``duplicate`` (your own copy of the Space), ``status`` (what the Hub says of Spaces) and
``replica`` (the offline stand-in of the Space). Results go to stdout, progress and notes to
stderr, failures to a one-line message and a documented exit code (``EXIT_CODES``) so scripts
can branch on what went wrong; with ``--json`` every failure, usage errors and Ctrl-C
included, is also one JSON object on stdout. ``main`` returns the code instead of exiting, so
tests and other programs can call it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from janus_space import HistoryTrimmedWarning, ImagesDroppedWarning, JanusError, JanusWarning

from ._chat import chat_loop, run_chat
from ._commands import ask, imagine, write_json
from ._display import StatusDisplay, route_logging
from ._errors import (
    EXIT_ACCESS,
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
    interrupted_record,
    usage_record,
)
from ._parser import PROG, Settings, UsageError, build_parser, settings_from
from ._replica import run_replica

__all__ = [
    "EXIT_ACCESS",
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


_INTERRUPTED = {
    "duplicate": "interrupted; a copy the Hub already made goes on building "
    "(`janus-space status` shows it)",
    "status": "interrupted",
}
_INTERRUPTED_CALL = "interrupted; the job on the Space was cancelled"
_INTERRUPTED_LOCAL = "interrupted; the local generation was stopped"


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``janus-space`` with ``argv`` (default: ``sys.argv``); return its exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        # argparse prints help and --version to sys.stdout itself.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(arguments)
    except UsageError as exc:
        err.write(f"{exc.usage}{PROG}: error: {exc.message}\n")
        if "--json" in arguments:
            write_json(out, usage_record(exc.message))
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 2
    if args.command == "replica":
        return run_replica(args.host, args.port, background=args.background, out=out, err=err)
    display = StatusDisplay(err, quiet=bool(args.quiet))
    settings = Settings(json=bool(args.json))
    with warnings.catch_warnings(), route_logging(display, verbose=bool(args.verbose)):
        # The CLI reports trimmed history and dropped images itself, from the call's result;
        # every other warning of the client (a slow device, a setting it cannot honour) is
        # shown as a note.
        warnings.simplefilter("ignore", HistoryTrimmedWarning)
        warnings.simplefilter("ignore", ImagesDroppedWarning)
        warnings.showwarning = _warning_as_note(display, warnings.showwarning)
        try:
            settings = settings_from(args)
            return _run(args.command, args, settings, display, out)
        except JanusError as exc:
            display.stop()
            return _fail(exc, settings, display, out)
        except KeyboardInterrupt:
            display.stop()
            message = _INTERRUPTED.get(
                args.command, _INTERRUPTED_LOCAL if settings.local else _INTERRUPTED_CALL
            )
            display.note(f"janus-space: {message}")
            if settings.json:
                write_json(out, interrupted_record(message))
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return EXIT_FAILURE  # stdout's reader left (e.g. `| head`): nothing to report to


def _warning_as_note(display: StatusDisplay, show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints janus_space's warnings as one-line notes."""

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, JanusWarning):
            display.note(f"janus-space: warning: {' '.join(str(message).split())}")
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


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
            imagine(
                settings,
                args.prompt,
                args.output_dir,
                args.guidance,
                display,
                out,
                num_images=args.num_images,
            )
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
    if command == "duplicate":
        from ._hub import run_duplicate

        return run_duplicate(args, settings, display, out)
    if command == "status":
        from ._hub import run_status

        return run_status(args, settings, display, out)
    raise AssertionError(f"unknown command {command!r}")


def _fail(error: JanusError, settings: Settings, display: StatusDisplay, out: TextIO) -> int:
    """Report ``error`` as one stderr line (and a JSON record with --json); return its code."""
    display.note(describe_error(error, token_set=settings.token_set, base_url=settings.base_url))
    if settings.json:
        write_json(out, error_record(error))
    return exit_code_for(error)
