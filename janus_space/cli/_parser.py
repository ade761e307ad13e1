"""The ``janus-space`` argument parser (stdlib argparse) and the settings it resolves to.

Common options are accepted both before and after the subcommand (``janus-space --json ask
...`` and ``janus-space ask ... --json``), because users type both. Settings that may come
from the environment (``JANUS_BASE_URL``; ``HF_TOKEN`` is read by the client itself) are
resolved here so the commands never look at ``os.environ``.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

from janus_space import DEFAULT_SPACE

from ._errors import EXIT_CODES

__all__ = ["Settings", "build_parser", "parse_header", "settings_from"]

PROG = "janus-space"

_MAIN_EXAMPLES = """\
examples:
  janus-space ask "What is in this picture?" --image photo.jpg
  janus-space ask "Describe it in one sentence" --image https://example.com/cat.png --json
  janus-space imagine "a lighthouse at dawn, watercolour" -o out/ --seed 7
  janus-space chat --image diagram.png
  janus-space replica --background          # offline stand-in of the Space on :7860
  JANUS_BASE_URL=http://127.0.0.1:7860 janus-space ask "Hello"

environment:
  HF_TOKEN         Hugging Face token, sent to Hugging Face hosts only (never printed);
                   the ZeroGPU quota then counts against your account
  JANUS_BASE_URL   talk to this URL (a duplicated Space or the local replica) instead of
                   the public Space; --base-url wins over it

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
  /image            drop the image attached to the next message
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
        dest="headers",
        help="extra request header, repeatable (e.g. x-ip-token:...); never printed",
    )
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
    """The full ``janus-space`` parser with its four subcommands."""
    codes = "\n".join(
        textwrap.fill(text, 88, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, text in EXIT_CODES.items()
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ask DeepSeek's Janus-Pro-7B about images and have it draw pictures, "
        "through its public Hugging Face Space (or a copy, or the local replica).",
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

    imagine = command("imagine", "generate five images from a prompt", _IMAGINE_EXAMPLES)
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
    _common_options(imagine, top_level=False)

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


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve parsed options and the environment into ``Settings``."""
    env = os.environ if environ is None else environ
    base_url = args.base_url or env.get("JANUS_BASE_URL", "").strip() or None
    headers: list[tuple[str, str]] = args.headers or []
    return Settings(
        space=args.space,
        base_url=base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        headers=dict(headers),
        json=args.json,
        quiet=args.quiet,
        verbose=args.verbose,
        token_set=bool(env.get("HF_TOKEN", "").strip()),
    )
