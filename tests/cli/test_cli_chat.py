"""The chat loop on its own: scripted input and a fake model, no Space. (The loop against the
Space is in test_cli_commands.py; through a real terminal-less subprocess in test_cli_live.py.)"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image

from janus_space import (
    AppError,
    InvalidInputError,
    JanusWarning,
    Message,
    QuotaExceededError,
    UnderstandingResult,
    flatten_conversation,
)
from janus_space.cli import EXIT_INTERRUPTED, EXIT_QUOTA, StatusDisplay, chat_loop
from janus_space.cli._chat import HELP, ChatState
from janus_space.cli._errors import describe_error


class FakeModel:
    """Answers ``answer <n>`` after flattening like the client; can fail on request."""

    def __init__(self, failures: dict[int, BaseException] | None = None) -> None:
        self.calls: list[list[Message]] = []
        self.failures = failures or {}

    def __call__(self, messages: Sequence[Message]) -> UnderstandingResult:
        self.calls.append(list(messages))
        failure = self.failures.get(len(self.calls))
        if failure is not None:
            raise failure
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JanusWarning)  # the CLI reports from the result
            prompt = flatten_conversation(messages, token_budget=60)
        return UnderstandingResult(
            f"answer {len(self.calls)}", seed=42, top_p=0.95, temperature=0.1, prompt=prompt
        )


def lines(*items: str | BaseException) -> Iterator[str]:
    for item in items:
        if isinstance(item, BaseException):
            raise item
        yield item


def run(
    model: FakeModel,
    *items: str | BaseException,
    image: str | None = None,
    as_json: bool = False,
) -> tuple[int, str, str]:
    feed = lines(*items)

    def read_line(prompt: str) -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    out, err = io.StringIO(), io.StringIO()
    code = chat_loop(
        model,
        read_line,
        out,
        StatusDisplay(err),
        describe=describe_error,
        image=image,
        as_json=as_json,
    )
    return code, out.getvalue(), err.getvalue()


def test_history_grows_with_each_answered_turn() -> None:
    model = FakeModel()
    code, out, _ = run(model, "hi", "", "   ", "more")
    assert code == 0
    assert out == "answer 1\nanswer 2\n"
    assert model.calls[1] == [
        Message("user", "hi"),
        Message("assistant", "answer 1"),
        Message("user", "more"),
    ]


def test_image_goes_with_the_next_message_only(tmp_path: Path) -> None:
    path = f"{tmp_path}/a.png"
    Image.new("RGB", (8, 8)).save(path)
    model = FakeModel()
    code, _, err = run(model, f"/image {path}", "look", "again")
    assert code == 0
    assert len(model.calls[0][-1].images) == 1
    assert model.calls[1][-1].images == ()
    assert len(model.calls[1][0].images) == 1  # still in the history, so the Space keeps it
    assert "a.png is attached to your next message" in err


def test_image_url_is_attached_without_fetching_and_can_be_dropped() -> None:
    model = FakeModel()
    run(model, "/image https://example.com/cat.png", "/image", "hi")
    assert model.calls[0][-1].images == ()


def test_bad_image_is_refused_at_once(tmp_path: Path) -> None:
    model = FakeModel()
    code, _, err = run(model, f"/image {tmp_path}/missing.png", "hi")
    assert code == 0
    assert "janus-space: bad input: image file not found" in err
    assert model.calls[0][-1].images == ()


def test_reset_forgets_the_conversation() -> None:
    model = FakeModel()
    _, _, err = run(model, "one", "/reset", "two")
    assert model.calls[1] == [Message("user", "two")]
    assert "conversation forgotten" in err


def test_quit_stops_reading_and_double_slash_sends_a_slash() -> None:
    model = FakeModel()
    code, out, _ = run(model, "//etc/hosts?", "/quit", "never")
    assert code == 0
    assert model.calls[0][-1].text == "/etc/hosts?"
    assert out == "answer 1\n"


def test_help_and_unknown_commands() -> None:
    _, _, err = run(FakeModel(), "/help", "/what")
    assert HELP.splitlines()[0] in err
    assert "unknown command /what; /help lists them" in err


def test_failed_turn_is_reported_left_out_of_history_and_sets_the_exit_code() -> None:
    model = FakeModel({1: QuotaExceededError("quota gone", retry_after=60)})
    code, out, err = run(model, "first", "second")
    assert code == EXIT_QUOTA
    assert out == "answer 2\n"
    assert "janus-space: quota exceeded: quota gone; retry in 0:01:00" in err
    assert model.calls[1] == [Message("user", "second")]


def test_failed_turn_in_json_mode_prints_an_error_record() -> None:
    model = FakeModel({1: AppError("broken")})
    _, out, _ = run(model, "first", as_json=True)
    assert '"type": "AppError"' in out


def test_bad_input_with_an_attached_url_drops_the_image() -> None:
    model = FakeModel({1: InvalidInputError("could not fetch the image URL")})
    _, _, err = run(model, "/image https://example.com/x.png", "hi", "again")
    assert "the attached image was dropped" in err
    assert model.calls[1][-1].images == ()


def test_trimmed_history_is_shown_once_per_change_with_what_was_left_out() -> None:
    model = FakeModel()
    words = ["alpha " * 20, "beta " * 20, "gamma " * 20, "delta " * 20]
    _, _, err = run(model, *words)
    notes = [line for line in err.splitlines() if "outgrew" in line]
    assert notes, err
    assert 'User: "alpha alpha' in notes[0]
    assert len(notes) == len(set(notes))


def test_state_record_reports_dropped_images_once() -> None:
    state = ChatState()
    message = Message("user", "x", images=(b"a", b"b"))
    prompt = flatten_conversation([Message("user", "x")])
    result = UnderstandingResult("ok", 1, 0.9, 0.1, prompt=prompt)
    assert state.record(message, result) == []
    dropped = dataclasses.replace(result, prompt=dataclasses.replace(prompt, dropped_images=1))
    assert "1 earlier image(s)" in state.record(message, dropped)[0]
    assert state.record(message, dropped) == []


def test_ctrl_c_during_a_call_cancels_only_that_call() -> None:
    model = FakeModel({1: KeyboardInterrupt()})
    code, out, err = run(model, "slow", "fast")
    assert code == 0
    assert "janus-space: cancelled" in err
    assert out == "answer 2\n"


def test_ctrl_c_at_the_prompt_leaves_with_130() -> None:
    code, _, _ = run(FakeModel(), "hi", KeyboardInterrupt())
    assert code == EXIT_INTERRUPTED


def test_interactive_mode_greets_and_prompts() -> None:
    prompts: list[str] = []
    feed = iter(["hi"])

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    out, err = io.StringIO(), io.StringIO()
    code = chat_loop(FakeModel(), read_line, out, StatusDisplay(err), interactive=True)
    assert code == 0
    assert prompts == ["you> ", "you> "]
    assert "/help lists the commands" in err.getvalue()
    assert out.getvalue() == "answer 1\n\n\n"


def _images_sent(call: list[Message]) -> int:
    return sum(len(message.images) for message in call)


def test_image_with_no_path_stops_an_image_already_sent(tmp_path: Path) -> None:
    """After ``/image``, no later call carries any image, whichever turn attached it."""
    paths = []
    for name in ("a.png", "b.png"):
        paths.append(f"{tmp_path}/{name}")
        Image.new("RGB", (8, 8)).save(paths[-1])
    model = FakeModel()
    code, out, err = run(
        model,
        f"/image {paths[0]}",
        "look",
        "and now?",
        f"/image {paths[1]}",
        "this one",
        "/image",
        "no picture now",
        "still none?",
    )
    assert code == 0
    assert [_images_sent(call) for call in model.calls] == [1, 1, 2, 0, 0]
    assert [m.text for m in model.calls[-1] if m.role == "user"] == [
        "look",
        "and now?",
        "this one",
        "no picture now",
        "still none?",
    ]  # the words of every turn stay in the history
    assert "the 2 image(s) already sent are no longer sent" in err
    assert out.count("answer") == 5


def test_image_with_no_path_after_attaching_drops_the_attachment_only(tmp_path: Path) -> None:
    path = f"{tmp_path}/a.png"
    Image.new("RGB", (8, 8)).save(path)
    model = FakeModel()
    _, _, err = run(model, "first", f"/image {path}", "/image", "second", "/image")
    assert [_images_sent(call) for call in model.calls] == [0, 0]
    assert "the attached image was dropped" in err
    assert "no image is attached or being sent" in err


def test_ctrl_c_in_json_mode_prints_a_record_for_the_turn_and_for_leaving() -> None:
    import json

    model = FakeModel({1: KeyboardInterrupt()})
    code, out, _ = run(model, "slow", "fast", KeyboardInterrupt(), as_json=True)
    assert code == EXIT_INTERRUPTED
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("error", {}).get("type") for r in records] == [
        "KeyboardInterrupt",
        None,
        "KeyboardInterrupt",
    ]
    assert records[0]["error"]["exit_code"] == EXIT_INTERRUPTED
    assert "cancelled" in records[0]["error"]["message"]
    assert records[1]["answer"] == "answer 2"
    assert "session ended" in records[2]["error"]["message"]
