"""``janus-space duplicate`` and ``janus-space status``: what the Hub knows, via ``hub``.

``duplicate`` copies the Space into the user's account and, with ``--wait``, follows its build
on the status line; ``status`` reads each Space's runtime. Both go through ``huggingface_hub``
(imported only here, not by the Space commands). Results go to stdout (text or ``--json``),
progress and notes to stderr.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from janus_space import JanusError

from ._commands import write_json
from ._display import StatusDisplay
from ._errors import EXIT_OK, EXIT_UNAVAILABLE, describe_error, error_record, exit_code_for
from ._parser import Settings

__all__ = ["hub_proxy", "run_duplicate", "run_status"]

_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
_STAGES = {
    "RUNNING": "answers now",
    "RUNNING_BUILDING": "answers now; a rebuild is under way",
    "RUNNING_APP_STARTING": "answers now; a new version is starting",
    "SLEEPING": "asleep: the first call wakes it (a cold start takes minutes)",
    "BUILDING": "building: it does not answer yet",
    "APP_STARTING": "starting its app: it does not answer yet",
    "PAUSED": "paused by its owner: nothing is answered until it is restarted",
    "STOPPED": "stopped: nothing is answered until it is restarted",
    "RUNTIME_ERROR": "crashed",
    "BUILD_ERROR": "its build failed",
    "CONFIG_ERROR": "its configuration is broken",
    "NO_APP_FILE": "it has no app file",
    "DELETING": "being deleted",
}
_QUOTA_MEMORY = (
    "no refusal remembered: this is a new process (a running client or pool remembers a "
    "quota error and fails fast until its retry-after; a process starts with none)"
)


@contextmanager
def hub_proxy(proxy: str | None) -> Iterator[None]:
    """Send this command's Hub requests through ``proxy``.

    ``huggingface_hub``'s shared HTTP client takes its proxy from the environment when it is
    made, so the proxy variables are set for the command and the client is remade before and
    after (``NO_PROXY`` still applies, as it does for the Space's traffic).
    """
    if proxy is None:
        yield
        return
    import huggingface_hub

    close = getattr(huggingface_hub, "close_session", None)
    saved = {name: os.environ.get(name) for name in _PROXY_VARIABLES}
    os.environ.update(dict.fromkeys(_PROXY_VARIABLES, proxy))
    if close is not None:
        close()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if close is not None:
            close()


def _page(settings: Settings, space_id: str) -> str:
    return f"{settings.hub_url}/spaces/{space_id}"


def _sleep_text(seconds: int | None) -> str:
    if seconds is None:
        return "the Hub's default (48 h idle on free cpu-basic; upgraded hardware never sleeps)"
    if seconds < 0:
        return "never (paid hardware bills as long as it runs)"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"after {seconds // size}{unit} idle"
    return f"after {seconds}s idle"


def _record(status: Any, settings: Settings) -> dict[str, Any]:
    return {
        "space": status.space_id,
        "url": _page(settings, status.space_id),
        "stage": status.stage,
        "hardware": status.hardware,
        "requested_hardware": status.requested_hardware,
        "sleep_time": status.sleep_time,
        "zerogpu": status.zerogpu,
        "usable": status.usable,
        "error_message": status.error_message,
    }


# -- duplicate ---------------------------------------------------------------------------


def _duplicate_notes(hub: Any, hardware: str | None, sleep_time: int | None) -> list[str]:
    """What the user should know about the hardware they named (or did not) before paying."""
    fits = ", ".join(hub.RECOMMENDED_HARDWARE)
    if hardware is None:
        return [
            "janus-space: note: no --hardware named, so none is asked for: the copy gets the "
            "Hub's free default (cpu-basic), where Janus-Pro-7B cannot run; give it a GPU of "
            f"24 GB or more ({fits}; paid) in its Settings, or use --hardware"
        ]
    notes = []
    known = hub.HARDWARE.get(hardware)
    if hub.is_zerogpu(hardware):
        notes.append(
            "janus-space: note: on ZeroGPU each caller spends their own daily ZeroGPU quota, "
            "shared with every other ZeroGPU Space: the copy gives you your own queue, not "
            "more GPU time"
        )
    elif known is not None and not known.fits_7b:
        notes.append(
            f"janus-space: note: {hub.describe_hardware(hardware)} is too small for "
            f"Janus-Pro-7B in bf16 (it needs a 24 GB GPU or more: {fits}); it will not start"
        )
    if known is None or known.paid:
        notes.append(
            f"janus-space: note: {hardware} is paid hardware, billed by the minute while the "
            "Space runs (https://huggingface.co/pricing)"
            + (
                "; without --sleep-time it never sleeps: pause it when done, or use e.g. "
                "--sleep-time 1h"
                if sleep_time is None
                else ""
            )
        )
    return notes


def run_duplicate(
    args: argparse.Namespace, settings: Settings, display: StatusDisplay, out: TextIO
) -> int:
    """``janus-space duplicate``: copy the Space; with ``--wait``, follow it until it runs."""
    from janus_space import hub

    hardware = None if args.hardware is None else hub.check_hardware(args.hardware)
    for note in _duplicate_notes(hub, hardware, args.sleep_time):
        display.note(note)

    def progress(status: Any) -> None:
        display.update(
            f"{status.space_id}: {status.stage} on {status.hardware or status.requested_hardware}"
        )

    with hub_proxy(settings.proxy), display.showing("asking the Hub for a copy"):
        status = hub.duplicate_space(
            args.from_id,
            args.to_id,
            hardware=hardware,
            private=args.private,
            sleep_time=args.sleep_time,
            hub_url=settings.hub_url,
            wait=args.wait,
            wait_timeout=args.wait_timeout,
            on_progress=progress,
        )
    space = status.space_id
    if settings.json:
        write_json(out, {**_record(status, settings), "use": f"--endpoint {space}"})
        return EXIT_OK
    lines = [
        f"created {space}: {status.stage} on {hub.describe_hardware(status.hardware)}",
        f"  page:     {_page(settings, space)}",
    ]
    if not status.usable:
        lines.append(f"  follow:   janus-space status {space}")
    lines += [
        f'  use it:   janus-space ask "What is in this picture?" --image photo.jpg '
        f"--endpoint {space}",
        f"  pool it:  janus-space ask ... --endpoint {space} --endpoint {hub.DEFAULT_SPACE}"
        "   (yours first, the public Space when yours is busy or down)",
        f'  Python:   JanusClient("{space}")  or  JanusPool(["{space}", "{hub.DEFAULT_SPACE}"])',
    ]
    if args.private:
        lines.append("  private:  calls need your token (HF_TOKEN or `hf auth login`)")
    out.write("\n".join(lines) + "\n")
    out.flush()
    return EXIT_OK


# -- status ------------------------------------------------------------------------------


def _quota_line(status: Any, settings: Settings) -> str:
    if not status.zerogpu:
        return "not ZeroGPU: no daily GPU quota applies"
    whose = (
        "your account's (a token is set)"
        if settings.token_set
        else "the small anonymous one (no token)"
    )
    return f"ZeroGPU: each call reserves about 120 s of the caller's daily quota, {whose}"


def _status_text(status: Any, settings: Settings, hub: Any) -> str:
    meaning = _STAGES.get(status.stage, "")
    if status.error_message:
        meaning = f"{meaning}: {status.error_message}" if meaning else status.error_message
    hardware = hub.describe_hardware(status.hardware)
    if status.requested_hardware and status.requested_hardware != status.hardware:
        hardware += f"; {status.requested_hardware} requested"
    return "\n".join(
        [
            status.space_id,
            f"  stage:     {status.stage}" + (f" ({meaning})" if meaning else ""),
            f"  hardware:  {hardware}",
            f"  sleeps:    {_sleep_text(status.sleep_time)}",
            f"  quota:     {_quota_line(status, settings)}",
            f"  refused:   {_QUOTA_MEMORY}",
        ]
    )


def _targets(args: argparse.Namespace, settings: Settings) -> Sequence[str]:
    from ._parser import check_endpoint

    if args.spaces:
        return [check_endpoint(text) for text in args.spaces]
    if settings.endpoints:
        return settings.endpoints
    return [settings.base_url or settings.space]


def run_status(
    args: argparse.Namespace, settings: Settings, display: StatusDisplay, out: TextIO
) -> int:
    """``janus-space status``: each Space's runtime; 0 when all can take a call, else 4."""
    targets = _targets(args, settings)  # all checked before the first request
    from janus_space import hub

    code = EXIT_OK
    blocks: list[str] = []
    with hub_proxy(settings.proxy):
        for target in targets:
            if target.lower().startswith(("http://", "https://")):
                text = (
                    f"{target}\n  not a Hub Space (a self-hosted copy or the replica): the Hub "
                    "knows nothing of it; a pool counts it as its own hardware"
                )
                record: dict[str, Any] = {"space": target, "hub": False}
            else:
                try:
                    with display.showing(f"asking the Hub about {target}"):
                        status = hub.space_status(target, hub_url=settings.hub_url)
                except JanusError as exc:
                    code = code or exit_code_for(exc)
                    line = describe_error(exc, token_set=settings.token_set)
                    text = f"{target}\n  {line.removeprefix('janus-space: ')}"
                    record = {"space": target, **error_record(exc)}
                else:
                    if not status.usable:
                        code = code or EXIT_UNAVAILABLE
                    text = _status_text(status, settings, hub)
                    record = {**_record(status, settings), "quota_refused": False}
            if settings.json:
                write_json(out, record)
            else:
                blocks.append(text)
    if blocks:
        out.write("\n\n".join(blocks) + "\n")
        out.flush()
    return code
