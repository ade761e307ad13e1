"""``ask``, ``imagine``, ``chat`` and ``--json`` against the Space: replayed from cassettes
(``[replay]``) and run against the replica (``[live]``). The replica's answers report what it
received, so each test checks that the command sent what the user asked for; its fault
markers ([quota], [apperror], ...) check that each failure gets its exit code."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import CLI, Picture

from janus_space.cli import EXIT_APP, EXIT_QUOTA, EXIT_UNAVAILABLE
from janus_space.replica import (
    IMAGES_PER_PROMPT,
    parse_understanding_report,
    prompt_checksum,
    read_generation_report,
)


def test_ask_text_only_prints_the_answer(cli: CLI, space_url: str) -> None:
    run = cli("ask", "What is 2 + 2?", "--base-url", space_url)
    assert run.code == 0, run.err
    report = parse_understanding_report(run.out.rstrip("\n"))
    assert report.question == "What is 2 + 2?"
    assert (report.width, report.height) == (384, 384)  # the placeholder image
    assert (report.seed, report.top_p, report.temperature) == ("42", "0.95", "0.1")
    assert "janus-space: [" in run.err  # plain progress lines (stderr is not a terminal)


def test_ask_about_an_image_with_json_and_sampling_options(
    cli: CLI, space_url: str, picture: Picture
) -> None:
    photo = picture("photo.png", (120, 90))
    run = cli(
        "--json",
        "ask",
        "Describe the picture.",
        "--image",
        photo,
        "--seed",
        "7",
        "--top-p",
        "0.5",
        "--temperature",
        "0.25",
        "--base-url",
        space_url,
        "-q",
    )
    assert run.code == 0, run.err
    assert run.err == ""  # --quiet: no progress
    record = json.loads(run.out)
    report = parse_understanding_report(record["answer"])
    assert (report.width, report.height) == (120, 90)
    assert (report.seed, report.top_p, report.temperature) == ("7", "0.5", "0.25")
    assert record["image"] == "photo.png"
    assert record["placeholder_image"] is False
    assert record["dropped_images"] == 0
    assert (record["seed"], record["top_p"], record["temperature"]) == (7, 0.5, 0.25)
    assert isinstance(record["duration"], float)


def test_ask_with_several_images_sends_the_last_and_says_so(
    cli: CLI, space_url: str, picture: Picture
) -> None:
    first, last = picture("first.png", (40, 30)), picture("last.png", (64, 48))
    run = cli(
        "ask", "Which one?", "--image", first, "--image", last, "--base-url", space_url, "--json"
    )
    assert run.code == 0, run.err
    record = json.loads(run.out)
    report = parse_understanding_report(record["answer"])
    assert (report.width, report.height) == (64, 48)
    assert record["dropped_images"] == 1
    assert "sending the last --image (last.png) and ignoring 1" in run.err


def test_imagine_saves_five_files_and_prints_their_paths(
    cli: CLI, space_url: str, tmp_path: Path
) -> None:
    prompt = "a red fox in the snow"
    out_dir = tmp_path / "out"
    run = cli(
        "imagine", prompt, "-o", str(out_dir), "--seed", "7", "--guidance", "6",
        "--temperature", "0.5", "--base-url", space_url,
    )  # fmt: skip
    assert run.code == 0, run.err
    paths = [Path(line) for line in run.out.splitlines()]
    assert len(paths) == IMAGES_PER_PROMPT
    assert [p.name for p in paths] == [f"a-red-fox-in-the-snow-seed7-{n}.webp" for n in range(1, 6)]
    for index, path in enumerate(paths):
        report = read_generation_report(path.read_bytes())
        assert report.index == index
        assert (report.seed, report.guidance, report.temperature) == (7, 6.0, 0.5)
        assert report.prompt_crc32 == prompt_checksum(prompt)

    again = cli("imagine", prompt, "-o", str(out_dir), "--seed", "7", "--guidance", "6",
                "--temperature", "0.5", "--base-url", space_url, "-q")  # fmt: skip
    assert again.code == 0, again.err
    second = [Path(line) for line in again.out.splitlines()]
    assert not set(second) & set(paths), "an earlier image was overwritten"
    assert second[0].name == "a-red-fox-in-the-snow-seed7-1-2.webp"


def test_imagine_json(cli: CLI, space_url: str, tmp_path: Path) -> None:
    run = cli("imagine", "a lighthouse", "-o", str(tmp_path), "--json", "--base-url", space_url)
    assert run.code == 0, run.err
    record = json.loads(run.out)
    assert record["prompt"] == "a lighthouse"
    assert (record["seed"], record["guidance"], record["temperature"]) == (12345, 5.0, 1.0)
    assert len(record["images"]) == IMAGES_PER_PROMPT
    for image in record["images"]:
        assert image["mime_type"] == "image/webp"
        assert Path(image["path"]).stat().st_size == image["bytes"]


def test_quota_exits_3_with_the_time_to_retry(cli: CLI, space_url: str) -> None:
    run = cli("ask", "Hello [quota]", "--base-url", space_url, "-q")
    assert run.code == EXIT_QUOTA
    assert run.out == ""
    (line,) = run.err.splitlines()
    assert line.startswith("janus-space: quota exceeded: You have exceeded your GPU quota")
    assert "retry in 0:00:07 (at " in line


def test_quota_with_json_reports_retry_after(cli: CLI, space_url: str) -> None:
    run = cli("--json", "-q", "imagine", "a cat [quota]", "--base-url", space_url)
    assert run.code == EXIT_QUOTA
    record = json.loads(run.out)["error"]
    assert record["type"] == "QuotaExceededError"
    assert record["retry_after"] == 7.0
    assert record["exit_code"] == EXIT_QUOTA


def test_app_error_exits_6(cli: CLI, space_url: str) -> None:
    run = cli("ask", "Hello [apperror]", "--base-url", space_url, "-q")
    assert run.code == EXIT_APP
    assert run.err == "janus-space: Space error: Something bad happened\n"


def test_a_crash_without_a_message_exits_6(cli: CLI, space_url: str) -> None:
    run = cli("ask", "Hello [crash]", "--base-url", space_url, "-q")
    assert run.code == EXIT_APP
    assert "failed without a message" in run.err


def test_no_gpu_exits_4(cli: CLI, space_url: str) -> None:
    run = cli("ask", "Hello [nogpu]", "--max-retries", "0", "--base-url", space_url, "-q")
    assert run.code == EXIT_UNAVAILABLE
    assert run.err == "janus-space: no GPU: No GPU was available\n"


def test_space_logs_and_progress_are_shown(cli: CLI, space_url: str) -> None:
    run = cli("ask", "Work slowly [slow:3]", "--base-url", space_url)
    assert run.code == 0, run.err
    assert "janus-space: the Space says: replica: starting 3 slow steps" in run.err
    assert "replica working 2/3 steps" in run.err
    assert "janus-space: the Space warns: replica: slow steps done" in run.err


CHAT_SCRIPT = """\
What is this?
/image {second}
And this one?
/nonsense
Fail now [apperror]
/reset
Fresh start
/quit
never sent
"""


def test_chat_keeps_history_switches_images_and_resets(
    cli: CLI, space_url: str, picture: Picture
) -> None:
    first, second = picture("first.png", (40, 30)), picture("second.png", (64, 48))
    script = CHAT_SCRIPT.format(second=second)
    run = cli("chat", "--image", first, "--base-url", space_url, "-q", stdin=script)
    assert run.code == EXIT_APP, run.err  # the failed turn decides the exit code
    answers = [parse_understanding_report(line) for line in run.out.splitlines()]
    assert [(a.width, a.height) for a in answers] == [(40, 30), (64, 48), (384, 384)]
    assert answers[0].question == "What is this?"
    assert answers[1].question.startswith("Earlier conversation:\nUser: What is this?\n")
    assert answers[1].question.endswith("\n\nAnd this one?")
    assert answers[2].question == "Fresh start"  # /reset forgot everything
    assert "first.png is attached to your next message" in run.err
    assert "sending the newest; 1 earlier image(s) are no longer sent" in run.err
    assert "unknown command /nonsense" in run.err
    assert "janus-space: Space error: Something bad happened" in run.err
    assert "conversation forgotten" in run.err


def test_chat_reports_what_was_trimmed_from_a_long_history(cli: CLI, space_url: str) -> None:
    turns = [f"turn {n}: " + "words " * 700 for n in range(4)]
    run = cli("--json", "chat", "--base-url", space_url, "-q", stdin="\n".join(turns) + "\n")
    assert run.code == 0, run.err
    records = [json.loads(line) for line in run.out.splitlines()]
    trimmed = [r["trimmed_messages"] for r in records]
    assert trimmed[0] == 0 and trimmed[-1] > 0
    assert trimmed == sorted(trimmed)
    assert "outgrew Janus-Pro's 4096-token context" in run.err
    assert 'User: "turn 0: words words words words …"' in run.err
