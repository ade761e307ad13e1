"""The ``janus-space`` argument parser (stdlib argparse) and the settings it resolves to.

Common options are accepted both before and after the subcommand (``janus-space --json ask
...`` and ``janus-space ask ... --json``), because users type both. Settings that may come
from the environment (``JANUS_BASE_URL``, ``HF_ENDPOINT``; the token is found by the client
itself, as Hugging Face tools find it) are resolved here so the commands never look at
``os.environ``. Usage errors raise ``UsageError`` instead of exiting, so ``main`` can report
them as JSON too.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from janus_space import DEFAULT_SPACE, InvalidInputError

from ._errors import EXIT_CODES

__all__ = [
    "HUB_URL",
    "Settings",
    "UsageError",
    "build_parser",
    "check_endpoint",
    "parse_duration",
    "parse_header",
    "settings_from",
]

HUB_URL = "https://huggingface.co"

PROG = "janus-space"

_MAIN_EXAMPLES = """\
examples:
  janus-space ask "What is in this picture?" --image photo.jpg
  janus-space ask "Describe it in one sentence" --image https://example.com/cat.png --json
  janus-space imagine "a lighthouse at dawn, watercolour" -o out/ --seed 7
  janus-space chat --image diagram.png
  janus-space replica --background          # offline stand-in of the Space on :7860
  JANUS_BASE_URL=http://127.0.0.1:7860 janus-space ask "Hello"
  janus-space duplicate --hardware l4x1 --sleep-time 1h --wait   # your own copy
  janus-space ask "Hello" --endpoint you/Janus-Pro-7B --endpoint deepseek-ai/Janus-Pro-7B
  janus-space status deepseek-ai/Janus-Pro-7B

environment:
  HF_TOKEN         Hugging Face token (else the one `hf auth login` saved), sent to Hugging
                   Face hosts only (never printed); the ZeroGPU quota then counts against
                   your account; HF_HUB_DISABLE_IMPLICIT_TOKEN=1 sends none
  JANUS_BASE_URL   talk to this URL (a duplicated Space or the local replica) instead of
                   the public Space; --base-url wins over it
  HTTPS_PROXY      proxy for Space and Hub traffic (also HTTP_PROXY, NO_PROXY); --proxy wins
  HF_ENDPOINT      the Hub's address (default https://huggingface.co); --hub-url wins

exit codes:
{codes}
"""

_ASK_EXAMPLES = """\
The Space answers about exactly one image per question. Without --image a blank placeholder
image is sent (the Space's function needs one); with several, the last is sent and the
others are reported as dropped.

examples:
  janus-space ask "What is in this picture?" --image photo.jpg
  janus-space ask "Read the formula as LaTeX" --image https://example.com/eq.png --json
  janus-space ask "Write a haiku about autumn"          # text only (placeholder image)
"""

_CHAT_EXAMPLES = """\
A multi-turn session: the history is flattened into each question (the Space has no memory)
and its oldest turns are left out, with a note, when it outgrows Janus-Pro's context.

in the session:
  /image PATH|URL   attach an image to your next message (it stays in the conversation)
  /image            stop sending images: the attached one and those already sent
  /reset            forget the conversation
  /help             show these commands
  /quit             leave (so do Ctrl-D and Ctrl-C at the prompt)
  //text            send a message that starts with "/"

A failed turn is reported and the session goes on; the exit code is that of the last failed
turn (0 when all succeeded), so piped sessions still report failures.

examples:
  janus-space chat
  janus-space chat --image photo.jpg --temperature 0.3
  printf 'What is this?\\nAnd its colour?\\n' | janus-space chat --image photo.jpg
"""

_IMAGINE_EXAMPLES = """\
The Space draws five images per prompt. They are saved as files (named after the prompt and
seed, never overwriting) and their paths are printed, one per line.

examples:
  janus-space imagine "a lighthouse at dawn, watercolour"
  janus-space imagine "a red fox in the snow" -o out/ --seed 7 --guidance 6
  janus-space imagine "a cat" --json | python -c 'import json,sys; print(json.load(sys.stdin))'
"""

_REPLICA_EXAMPLES = """\
A local Gradio app that speaks the Space's protocol with deterministic stand-ins instead of
the model (answers report what they received; images encode their inputs). Markers in a
question provoke the Space's failures: [quota], [nogpu], [apperror], [crash], [slow:N].
Needs the replica extra: pip install "janus-space[replica]".

examples:
  janus-space replica                       # foreground; Ctrl-C stops it
  janus-space replica --background          # returns once it answers; prints the pid
  JANUS_BASE_URL=http://127.0.0.1:7860 janus-space ask "Hello [slow:5]"
"""

_DUPLICATE_EXAMPLES = """\
Copies a Space (default: the public Janus-Pro-7B) into your account through huggingface_hub,
so your calls stop sharing its queue. Needs a token that may write (`hf auth login`).

Hardware is never chosen for you. Without --hardware the copy gets the Hub's free default,
cpu-basic, where Janus-Pro-7B cannot run. The 7B model in bf16 needs a GPU with 24 GB or more:
l4x1, a10g-large, l40sx1 or a100-large (paid, billed by the minute while the Space runs; set
--sleep-time so an idle copy stops billing). zero-a10g (ZeroGPU) is free to host but needs
PRO on a personal account, and callers still spend their own daily ZeroGPU quota there.

examples:
  janus-space duplicate --hardware l4x1 --sleep-time 1h --wait
  janus-space duplicate --to my-janus --hardware a10g-large --private
  janus-space duplicate --to my-org/janus --hardware zero-a10g
"""

_STATUS_EXAMPLES = """\
For each Space: its stage (RUNNING, SLEEPING, BUILDING, RUNTIME_ERROR, PAUSED, ...), hardware
and sleep time from the Hub, and whether this client would refuse a call now from its own
quota memory. Base URLs (self-hosted copies, the replica) are not on the Hub. Without SPACE:
the --endpoint values, else --base-url / --space. Exit code 0 when every one can take a call
now (running or asleep), 4 when one cannot.

examples:
  janus-space status
  janus-space status you/Janus-Pro-7B deepseek-ai/Janus-Pro-7B --json
"""


@dataclass(frozen=True)
class Settings:
    """What every Space command needs, resolved from options and the environment."""

    space: str = DEFAULT_SPACE
    base_url: str | None = None
    timeout: float = 300.0
    max_retries: int = 2
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    token_set: bool = False
    endpoints: tuple[str, ...] = ()
    """``--endpoint`` values: Space ids or base URLs; two or more make a pool."""
    local: str | None = None
    """``--local MODEL``: run the model with transformers instead of calling a Space."""
    proxy: str | None = None
    hub_url: str = HUB_URL


class UsageError(Exception):
    """A command line argparse refused; ``usage`` is the usage text of the (sub)command."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """argparse, raising ``UsageError`` instead of printing and exiting on a usage error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``"300"``, ``"15m"``, ``"2h"``, ``"1d"`` → seconds; ``"never"`` or ``"-1"`` → -1."""
    value = text.strip().lower()
    if value in ("never", "-1"):
        return -1
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS else (value, "s")
    try:
        seconds = int(float(number) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds or a duration such as 15m, 2h, 1d, or 'never'; got {text!r}"
        ) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return seconds


def parse_header(text: str) -> tuple[str, str]:
    """``"x-ip-token: abc"`` or ``"x-ip-token=abc"`` → ``("x-ip-token", "abc")``."""
    for separator in (":", "="):
        name, sep, value = text.partition(separator)
        if sep and name.strip() and " " not in name.strip():
            return name.strip(), value.strip()
    raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text.split(':')[0][:40]!r}")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _output_options(parser: argparse.ArgumentParser, group: Any, *, top_level: bool) -> None:
    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    group.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress display on stderr",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="also show the client's retries and notes",
    )
    group.add_argument(
        "--proxy",
        metavar="URL",
        default=default(None),
        help="HTTP(S) proxy for Space and Hub traffic (default: $HTTPS_PROXY / $HTTP_PROXY, "
        "honouring $NO_PROXY)",
    )
    group.add_argument(
        "--hub-url",
        metavar="URL",
        default=default(None),
        help=f"the Hub's address (default: $HF_ENDPOINT, else {HUB_URL})",
    )


def _common_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """The options of every Space command; below a subcommand they default to "not given"."""

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    where = "also accepted after the command" if top_level else "also accepted before it"
    group = parser.add_argument_group(f"connection and output ({where})")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help="a duplicated Space or the replica, e.g. http://127.0.0.1:7860 "
        "(default: $JANUS_BASE_URL, else the public Space)",
    )
    group.add_argument(
        "--space",
        metavar="OWNER/NAME",
        default=default(DEFAULT_SPACE),
        help=f"Hugging Face Space id when no base URL is set (default: {DEFAULT_SPACE})",
    )
    group.add_argument(
        "--endpoint",
        action="append",
        metavar="SPACE|URL",
        default=default(None),
        dest="endpoints" if top_level else "endpoints_after",
        help="a Space id or a base URL to call; repeat it for a pool: each call goes to the "
        "least busy usable endpoint, in the order given on ties, and moves on when one is "
        "out of quota, paused or down",
    )
    group.add_argument(
        "--local",
        metavar="MODEL",
        default=default(None),
        help="run Janus-Pro on this machine with transformers instead of a Space: a model id "
        "in your HF cache or a folder, e.g. deepseek-community/Janus-Pro-7B "
        '(pip install "janus-space[local]")',
    )
    group.add_argument(
        "--timeout",
        type=_positive,
        metavar="SECONDS",
        default=default(300.0),
        help="give up on a call after this long, queue wait included (default: 300)",
    )
    group.add_argument(
        "--max-retries",
        type=_count,
        metavar="N",
        default=default(2),
        help="retries of transient failures such as 'no GPU available' (default: 2)",
    )
    group.add_argument(
        "--header",
        action="append",
        type=parse_header,
        metavar="NAME:VALUE",
        default=default(None),
        dest="headers" if top_level else "headers_after",
        help="extra request header, repeatable (e.g. x-ip-token:...); never printed",
    )
    _output_options(parser, group, top_level=top_level)
    sampling = parser.add_argument_group(f"sampling ({where})")
    sampling.add_argument(
        "--seed",
        type=int,
        metavar="N",
        default=default(None),
        help="random seed, 0..4294967295 (default: 42 for questions, 12345 for images)",
    )
    sampling.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        default=default(None),
        help="sampling temperature, 0..1 (default: 0.1 for questions, 1.0 for images)",
    )
    sampling.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        default=default(None),
        help="nucleus sampling for questions, 0..1 (default: 0.95); not used by imagine",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``janus-space`` parser with its six subcommands."""
    codes = "\n".join(
        textwrap.fill(text, 88, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items()
    )
    parser = _Parser(
        prog=PROG,
        description="Ask DeepSeek's Janus-Pro-7B about images and have it draw pictures, "
        "through its public Hugging Face Space (or a copy, a pool of copies, the local "
        "replica, or the model on your own GPU).",
        epilog=_MAIN_EXAMPLES.format(codes=codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from janus_space import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    ask = command("ask", "ask one question about an image and print the answer", _ASK_EXAMPLES)
    ask.add_argument("question", help="the question (quote it)")
    ask.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="image file, http(s) URL or data: URI; the Space takes one per question",
    )
    _common_options(ask, top_level=False)

    chat = command("chat", "an interactive conversation (history kept)", _CHAT_EXAMPLES)
    chat.add_argument(
        "--image", metavar="PATH|URL", default=None, help="image attached to the first message"
    )
    _common_options(chat, top_level=False)

    imagine = command("imagine", "generate images from a prompt", _IMAGINE_EXAMPLES)
    imagine.add_argument("prompt", help="what to draw (quote it)")
    imagine.add_argument(
        "-o",
        "--output-dir",
        default=".",
        metavar="DIR",
        help="where to save the images (created if missing; default: current directory)",
    )
    imagine.add_argument(
        "--guidance",
        type=float,
        default=5.0,
        metavar="G",
        help="classifier-free guidance weight, 1..10 (default: 5)",
    )
    imagine.add_argument(
        "--num-images",
        type=int,
        default=None,
        metavar="N",
        help="how many images (the Space always draws 5; --local: 1..16, default 5)",
    )
    _common_options(imagine, top_level=False)

    duplicate = command(
        "duplicate", "copy the Space into your account (your own queue)", _DUPLICATE_EXAMPLES
    )
    duplicate.add_argument(
        "--from",
        dest="from_id",
        default=DEFAULT_SPACE,
        metavar="OWNER/NAME",
        help=f"the Space to copy (default: {DEFAULT_SPACE})",
    )
    duplicate.add_argument(
        "--to",
        dest="to_id",
        default=None,
        metavar="[OWNER/]NAME",
        help="the copy's id (default: the same name under your account)",
    )
    duplicate.add_argument(
        "--hardware",
        default=None,
        metavar="FLAVOUR",
        help="hardware to run on, e.g. l4x1, a10g-large, zero-a10g (default: none asked: the "
        "Hub's free cpu-basic, too small for the model)",
    )
    duplicate.add_argument(
        "--private", action="store_true", default=None, help="make the copy private"
    )
    duplicate.add_argument(
        "--sleep-time",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="sleep after this long idle: seconds, 15m, 2h, 1d or never (upgraded hardware "
        "only; without it upgraded hardware never sleeps and keeps billing)",
    )
    duplicate.add_argument(
        "--wait",
        action="store_true",
        help="follow the build until the copy runs (or say why it failed)",
    )
    duplicate.add_argument(
        "--wait-timeout",
        type=_positive,
        default=1800.0,
        metavar="SECONDS",
        help="how long --wait waits (default: 1800)",
    )
    output = duplicate.add_argument_group("output (also accepted before the command)")
    _output_options(duplicate, output, top_level=False)

    status = command(
        "status", "stage, hardware and sleep time of Spaces, from the Hub", _STATUS_EXAMPLES
    )
    status.add_argument("spaces", nargs="*", metavar="SPACE", help="Space ids or base URLs")
    output = status.add_argument_group("output (also accepted before the command)")
    _output_options(status, output, top_level=False)

    replica = command(
        "replica", "serve the local replica of the Space (offline, no GPU)", _REPLICA_EXAMPLES
    )
    replica.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    replica.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    replica.add_argument(
        "--background",
        action="store_true",
        help="start it detached, wait until it answers, print its pid and return",
    )
    return parser


def _http_url(value: str, what: str) -> str:
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")) or len(text) < 10:
        raise InvalidInputError(f"{what} must be an http(s) URL, not {value!r}")
    return text.rstrip("/")


def check_endpoint(text: str) -> str:
    """An ``--endpoint`` value: a Space id (``owner/name``) or an http(s) base URL."""
    value = text.strip()
    if value.lower().startswith(("http://", "https://")):
        return _http_url(value, "--endpoint")
    if value.count("/") == 1 and all(value.split("/")) and " " not in value:
        return value
    raise InvalidInputError(
        f"--endpoint takes a Space id (owner/name) or an http(s) URL, not {text!r}"
    )


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve parsed options and the environment into ``Settings``.

    Raises ``InvalidInputError`` for combinations that cannot work (``--local`` with a Space
    endpoint, a proxy that is not a URL), before anything is sent.
    """
    env = os.environ if environ is None else environ
    base_url = args.base_url or env.get("JANUS_BASE_URL", "").strip() or None
    # A repeatable option may be given both before and after the command: argparse keeps the
    # two lists apart (the subcommand's under ``*_after``), joined here in the order typed.
    headers: list[tuple[str, str]] = [
        *(args.headers or ()),
        *(getattr(args, "headers_after", None) or ()),
    ]
    endpoints = tuple(
        check_endpoint(value)
        for value in [*(args.endpoints or ()), *(getattr(args, "endpoints_after", None) or ())]
    )
    local = args.local.strip() if args.local else None
    if args.local is not None and not local:
        raise InvalidInputError("--local needs a model: a model id or a folder")
    if local and (endpoints or args.base_url):
        raise InvalidInputError(
            "--local runs the model here: it cannot be combined with --endpoint or --base-url"
        )
    if endpoints and args.base_url:
        raise InvalidInputError(
            "use --endpoint for every endpoint (a base URL is an endpoint too), not --base-url"
        )
    proxy = _http_url(args.proxy, "--proxy") if args.proxy else None
    hub_url = _http_url(args.hub_url or env.get("HF_ENDPOINT", "").strip() or HUB_URL, "hub URL")
    if environ is None:
        from janus_space.auth import resolve_hf_token

        token_set = resolve_hf_token(None) is not None
    else:
        token_set = bool(env.get("HF_TOKEN", "").strip())
    return Settings(
        space=args.space,
        base_url=None if endpoints or local else base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        headers=dict(headers),
        json=args.json,
        quiet=args.quiet,
        verbose=args.verbose,
        token_set=token_set,
        endpoints=endpoints,
        local=local,
        proxy=proxy,
        hub_url=hub_url,
    )
