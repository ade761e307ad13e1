"""``janus-space chat``: a multi-turn session over a backend that keeps no memory.

The session keeps the conversation as ``janus_space.Message`` values and sends all of it on
every turn (the Space flattens it into one question and one image; a local model reads it as
turns). What the core had to leave out is shown as it happens: the oldest messages once the
history outgrows Janus-Pro's context, and earlier images once a newer one is attached (the
Space sees one). ``/image`` with no path stops sending any image, including one already sent.

The loop (``chat_loop``) takes its input and its answering function as arguments, so tests
drive it with a list of lines and a fake model; ``run_chat`` wires it to a real backend running
on a background event loop, which keeps the terminal's Ctrl-C working while a call waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from janus_space import (
    Failover,
    ImageInput,
    InvalidInputError,
    JanusError,
    Log,
    LoopThread,
    Message,
    TextDelta,
    UnderstandingResult,
)

from ._commands import (
    backend_label,
    image_label,
    image_source,
    make_backend,
    understanding_params,
    write_json,
)
from ._display import StatusDisplay
from ._errors import EXIT_INTERRUPTED, EXIT_OK, error_record, exit_code_for, interrupted_record
from ._parser import Settings

__all__ = ["HELP", "ChatState", "chat_loop", "run_chat"]

Answer = Callable[[Sequence[Message]], UnderstandingResult]
ReadLine = Callable[[str], str]

HELP = """\
Type a message and press Enter. Commands:
  /image PATH|URL   attach an image to your next message (the Space sees one image: the newest)
  /image            stop sending images: the attached one and those already sent
  /reset            forget the conversation
  /help             show this help
  /quit             leave (Ctrl-D works too)
  //text            send a message that starts with "/"
"""
_PROMPT = "you> "


def _snippet(message: Message, width: int = 32) -> str:
    text = " ".join(message.text.split())
    label = "User" if message.role == "user" else "Assistant"
    return f'{label}: "{text[:width]}{"…" if len(text) > width else ""}"'


@dataclass
class ChatState:
    """The conversation so far, the image waiting for the next message, what was reported."""

    history: list[Message] = field(default_factory=list)
    pending_image: ImageInput | None = None
    reported_trimmed: int = 0
    reported_dropped: int = 0
    streamed: bool = False
    """Set by an answering function that already printed the answer as it streamed."""

    def drop_images(self) -> int:
        """Stop sending any image: the attached one and those in the history; returns how
        many history images will no longer be sent (the text of every turn stays)."""
        self.pending_image = None
        dropped = sum(len(m.images) for m in self.history)
        self.history = [dataclasses.replace(m, images=()) if m.images else m for m in self.history]
        self.reported_dropped = 0
        return dropped

    def reset(self) -> None:
        """Forget everything (the Space keeps nothing, so this is all a reset takes)."""
        self.history.clear()
        self.pending_image = None
        self.reported_trimmed = self.reported_dropped = 0

    def next_message(self, text: str) -> Message:
        """The user's message, carrying the attached image if there is one."""
        images = () if self.pending_image is None else (self.pending_image,)
        return Message("user", text, images=images)

    def record(self, message: Message, result: UnderstandingResult) -> list[str]:
        """Add a finished turn; return notes about newly trimmed history or dropped images."""
        notes = []
        prompt = result.prompt
        trimmed = prompt.trimmed_messages if prompt else 0
        dropped = prompt.dropped_images if prompt else 0
        if trimmed > self.reported_trimmed:
            # The core drops the oldest non-system messages that have text, in order.
            candidates = [m for m in self.history if m.role != "system" and m.text.strip()]
            newly = candidates[self.reported_trimmed : trimmed]
            shown = ", ".join(_snippet(m) for m in newly[:3])
            more = f" and {len(newly) - 3} more" if len(newly) > 3 else ""
            notes.append(
                f"janus-space: note: the conversation outgrew Janus-Pro's 4096-token context; "
                f"{trimmed} oldest message(s) are now left out of each question "
                f"(newly: {shown}{more})"
            )
            self.reported_trimmed = trimmed
        if dropped > self.reported_dropped:
            notes.append(
                f"janus-space: note: the Space sees one image per question: sending the newest; "
                f"{dropped} earlier image(s) are no longer sent"
            )
            self.reported_dropped = dropped
        self.history += [message, Message("assistant", result.text)]
        self.pending_image = None
        return notes


def _attach(state: ChatState, argument: str, display: StatusDisplay) -> None:
    if not argument:
        had = state.pending_image is not None
        dropped = state.drop_images()
        if dropped:
            display.note(
                f"janus-space: no image from now on: the {dropped} image(s) already sent are "
                "no longer sent (the placeholder goes instead); /image PATH attaches one"
            )
        elif had:
            display.note("janus-space: the attached image was dropped; no image is sent")
        else:
            display.note("janus-space: no image is attached or being sent")
        return
    try:
        state.pending_image = image_source(argument)
    except InvalidInputError as exc:
        display.note(f"janus-space: bad input: {exc}")
        return
    display.note(
        f"janus-space: {image_label(state.pending_image)} is attached to your next message "
        "(the Space keeps seeing it until /reset or another /image)"
    )


def _end_partial_answer(state: ChatState, out: TextIO) -> None:
    """End the line of an answer that streamed part-way before its turn failed."""
    if state.streamed:
        out.write("\n")
        out.flush()
        state.streamed = False


def chat_loop(
    answer: Answer,
    read_line: ReadLine,
    out: TextIO,
    display: StatusDisplay,
    *,
    interactive: bool = False,
    as_json: bool = False,
    describe: Callable[[BaseException], str] = str,
    image: str | None = None,
    state: ChatState | None = None,
) -> int:
    """Run the session until /quit or end of input; returns the exit code.

    A failed turn is reported and left out of the history, and the session goes on; the exit
    code is that of the last failed turn (0 when every turn succeeded), so scripts that pipe
    questions in still see failures. Ctrl-C during a call cancels that call only.
    """
    state = state if state is not None else ChatState()
    status = EXIT_OK
    if interactive:
        display.note("Chat with Janus-Pro-7B. /help lists the commands; /quit leaves.")
    if image:
        _attach(state, image, display)
    while True:
        try:
            line = read_line(_PROMPT if interactive else "")
        except EOFError:
            if interactive:
                out.write("\n")
            return status
        except KeyboardInterrupt:
            if as_json:
                write_json(out, interrupted_record("interrupted at the prompt; session ended"))
            else:
                out.write("\n")  # end the prompt's line
            return EXIT_INTERRUPTED
        text = line.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//"):
            command, _, argument = text.partition(" ")
            if command in ("/quit", "/exit"):
                return status
            if command == "/reset":
                state.reset()
                display.note("janus-space: conversation forgotten")
            elif command == "/image":
                _attach(state, argument.strip(), display)
            elif command == "/help":
                display.note(HELP)
            else:
                display.note(f"janus-space: unknown command {command}; /help lists them")
            continue
        if text.startswith("//"):
            text = text[1:]
        message = state.next_message(text)
        state.streamed = False
        try:
            result = answer([*state.history, message])
        except KeyboardInterrupt:
            _end_partial_answer(state, out)
            display.stop()
            display.note("janus-space: cancelled")
            if as_json:
                write_json(out, interrupted_record("this turn was cancelled; the session goes on"))
            continue
        except JanusError as exc:
            _end_partial_answer(state, out)
            status = exit_code_for(exc)
            display.note(describe(exc))
            if as_json:
                write_json(out, error_record(exc))
            if isinstance(exc, InvalidInputError) and state.pending_image is not None:
                state.pending_image = None
                display.note("janus-space: the attached image was dropped; /image attaches one")
            continue
        for note in state.record(message, result):
            display.note(note)
        if as_json:
            prompt = result.prompt
            write_json(
                out,
                {
                    "answer": result.text,
                    "trimmed_messages": prompt.trimmed_messages if prompt else 0,
                    "dropped_images": prompt.dropped_images if prompt else 0,
                    "seed": result.seed,
                    "duration": result.duration,
                    "endpoint": result.endpoint,
                },
            )
        elif state.streamed:  # the answer is on screen already
            out.write("\n\n" if interactive else "\n")
            out.flush()
        else:
            out.write(result.text.rstrip("\n") + ("\n\n" if interactive else "\n"))
            out.flush()


def run_chat(
    settings: Settings,
    display: StatusDisplay,
    out: TextIO,
    *,
    image: str | None,
    describe: Callable[[BaseException], str],
    read_line: ReadLine | None = None,
    interactive: bool | None = None,
) -> int:
    """Run ``chat_loop`` against the configured backend (input from stdin by default)."""
    if interactive is None:
        interactive = sys.stdin.isatty() and not settings.json
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
    params = understanding_params(settings)  # bad values fail before the session starts
    backend = make_backend(settings)
    runner = LoopThread(name="janus-space-chat")
    state = ChatState()
    label = backend_label(settings)

    def answer(messages: Sequence[Message]) -> UnderstandingResult:
        result: UnderstandingResult | None = None
        with display.showing(f"asking {label}"):
            for item in runner.iterate(backend.stream_chat(messages, **params)):
                if isinstance(item, UnderstandingResult):
                    result = item
                elif isinstance(item, TextDelta):
                    if not settings.json and item.text:
                        if not state.streamed:
                            display.stop()
                        state.streamed = True
                        out.write(item.text)
                        out.flush()
                elif not state.streamed or isinstance(item, (Log, Failover)):
                    display.event(item)  # no status line over an answer being printed
        assert result is not None
        return result

    try:
        return chat_loop(
            answer,
            read_line or input,
            out,
            display,
            interactive=interactive,
            as_json=settings.json,
            describe=describe,
            image=image,
            state=state,
        )
    finally:
        runner.run(backend.aclose())
        runner.close()
