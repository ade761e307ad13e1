"""Argument parsing of ``janus-space``: help with examples, options on either side of the
command, settings from the environment, and bad input refused with exit code 2 before any
request (the base URL points at a port where nothing listens, which would give exit 5)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from cassette_support import free_port
from cli_support import CLI, Picture

from janus_space.cli import EXIT_CODES, EXIT_USAGE, build_parser
from janus_space.cli._parser import Settings, parse_header, settings_from

NOWHERE = f"http://127.0.0.1:{free_port()}"


def settings(argv: Sequence[str], environ: dict[str, str] | None = None) -> Settings:
    return settings_from(build_parser().parse_args(argv), environ or {})


def test_help_shows_examples_environment_and_exit_codes(cli: CLI) -> None:
    run = cli("--help")
    assert run.code == 0
    assert "examples:" in run.out
    assert 'janus-space ask "What is in this picture?" --image photo.jpg' in run.out
    assert "HF_TOKEN" in run.out and "JANUS_BASE_URL" in run.out
    for code in EXIT_CODES:
        assert f"\n  {code:<4} " in run.out


@pytest.mark.parametrize("command", ["ask", "chat", "imagine", "replica"])
def test_each_command_help_has_examples(cli: CLI, command: str) -> None:
    run = cli(command, "--help")
    assert run.code == 0
    assert "examples:" in run.out
    assert f"janus-space {command}" in run.out


def test_chat_help_lists_the_session_commands(cli: CLI) -> None:
    out = cli("chat", "--help").out
    for command in ("/image", "/reset", "/quit", "/help"):
        assert command in out


def test_common_options_work_before_and_after_the_command() -> None:
    before = settings(["--json", "--seed", "7", "--timeout", "9", "ask", "q"])
    after = settings(["ask", "q", "--json", "--seed", "7", "--timeout", "9"])
    assert before == after
    assert (before.json, before.seed, before.timeout) == (True, 7, 9.0)


def test_defaults_leave_sampling_to_the_command() -> None:
    chosen = settings(["ask", "q"])
    assert (chosen.seed, chosen.temperature, chosen.top_p) == (None, None, None)
    assert chosen.base_url is None and chosen.space == "deepseek-ai/Janus-Pro-7B"
    assert (chosen.timeout, chosen.max_retries, chosen.json) == (300.0, 2, False)


def test_base_url_comes_from_the_environment_and_the_flag_wins() -> None:
    env = {"JANUS_BASE_URL": "http://127.0.0.1:7860"}
    assert settings(["ask", "q"], env).base_url == "http://127.0.0.1:7860"
    flagged = settings(["ask", "q", "--base-url", "http://other:1"], env)
    assert flagged.base_url == "http://other:1"
    assert settings(["ask", "q"], {"JANUS_BASE_URL": "  "}).base_url is None


def test_token_presence_is_known_but_the_token_is_not_kept() -> None:
    chosen = settings(["ask", "q"], {"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz"})
    assert chosen.token_set is True
    assert "hf_abc" not in repr(chosen)


def test_headers_are_parsed_and_kept_out_of_repr() -> None:
    chosen = settings(["ask", "q", "--header", "x-ip-token: abc", "--header", "X-Other=1"])
    assert dict(chosen.headers) == {"x-ip-token": "abc", "X-Other": "1"}
    assert "abc" not in repr(chosen)
    assert parse_header("a:b:c") == ("a", "b:c")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["ask"],
        ["frobnicate"],
        ["ask", "q", "--timeout", "0"],
        ["ask", "q", "--timeout", "soon"],
        ["ask", "q", "--seed", "abc"],
        ["ask", "q", "--max-retries", "-1"],
        ["ask", "q", "--header", "no separator"],
        ["imagine", "p", "--guidance", "lots"],
        ["replica", "--port", "http"],
    ],
)
def test_usage_errors_exit_2(cli: CLI, argv: list[str]) -> None:
    run = cli(*argv)
    assert run.code == EXIT_USAGE
    assert "usage: janus-space" in run.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "q", "--seed", "-1"], "seed must be between 0 and"),
        (["ask", "q", "--temperature", "2"], "temperature must be between 0 and 1"),
        (["ask", "q", "--top-p", "-0.5"], "top_p must be between 0 and 1"),
        (["ask", "   "], "question is empty"),
        (["imagine", "p", "--guidance", "20"], "guidance must be between 1 and 10"),
        (["imagine", "p", "--top-p", "0.5"], "--top-p applies to questions"),
        (["imagine", "p", "--seed", str(2**32)], "seed must be between 0 and"),
    ],
)
def test_bad_values_exit_2_before_any_request(
    cli: CLI, argv: list[str], message: str, tmp_path: Path
) -> None:
    extra = ["-o", str(tmp_path)] if argv[0] == "imagine" else []
    run = cli(*argv, *extra, "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE, run.err
    assert message in run.err
    assert run.err.count("\n") == 1  # one line, no traceback


def test_bad_base_url_exits_2(cli: CLI) -> None:
    run = cli("ask", "q", "--base-url", "ftp://example.com")
    assert run.code == EXIT_USAGE
    assert "base_url must be an http(s) URL" in run.err


def test_missing_image_file_exits_2(cli: CLI) -> None:
    run = cli("ask", "q", "--image", "/no/such/photo.png", "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE
    assert "image file not found: /no/such/photo.png" in run.err


def test_a_file_that_is_not_an_image_exits_2(cli: CLI, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    run = cli("ask", "q", "--image", str(text), "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE
    assert "is not a supported image" in run.err


def test_every_image_is_checked_even_those_not_sent(cli: CLI, picture: Picture) -> None:
    good = picture("good.png", (10, 10))
    run = cli("ask", "q", "--image", "/missing.png", "--image", good, "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE
    assert "/missing.png" in run.err


def test_unwritable_output_directory_exits_2_before_any_request(cli: CLI, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = cli("imagine", "p", "-o", str(blocker / "sub"), "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE
    assert "cannot create the output directory" in run.err


def test_json_errors_are_also_printed_as_json(cli: CLI) -> None:
    run = cli("--json", "ask", "q", "--seed", "-3", "--base-url", NOWHERE)
    assert run.code == EXIT_USAGE
    record = json.loads(run.out)
    assert record["error"]["type"] == "InvalidInputError"
    assert record["error"]["exit_code"] == EXIT_USAGE


def test_version(cli: CLI) -> None:
    run = cli("--version")
    assert run.code == 0
    assert run.out.startswith("janus-space ")


def test_endpoints_repeat_keep_their_order_and_replace_the_base_url() -> None:
    chosen = settings(
        ["--endpoint", "you/Janus-Pro-7B", "ask", "q", "--endpoint", "http://127.0.0.1:7860/"],
        {"JANUS_BASE_URL": "http://127.0.0.1:9"},
    )
    assert chosen.endpoints == ("you/Janus-Pro-7B", "http://127.0.0.1:7860")
    assert chosen.base_url is None  # the endpoints are what is called
    both = settings(["--header", "a:1", "ask", "q", "--header", "b:2"])
    assert dict(both.headers) == {"a": "1", "b": "2"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "q", "--endpoint", "Janus-Pro-7B"], "--endpoint takes a Space id"),
        (["ask", "q", "--endpoint", "ftp://x/y"], "--endpoint takes a Space id"),
        (["ask", "q", "--endpoint", "a/b", "--base-url", NOWHERE], "use --endpoint for every"),
        (["ask", "q", "--local", "m", "--endpoint", "a/b"], "--local runs the model here"),
        (["ask", "q", "--local", "m", "--base-url", NOWHERE], "--local runs the model here"),
        (["ask", "q", "--local", " "], "--local needs a model"),
        (["ask", "q", "--proxy", "proxy.corp:3128"], "--proxy must be an http(s) URL"),
        (["status", "--hub-url", "huggingface.co"], "hub URL must be an http(s) URL"),
        (["imagine", "p", "--num-images", "3", "--base-url", NOWHERE], "num_images must be"),
    ],
)
def test_backend_options_that_cannot_work_exit_2_before_any_request(
    cli: CLI, argv: list[str], message: str, tmp_path: Path
) -> None:
    extra = ["-o", str(tmp_path)] if argv[0] == "imagine" else []
    run = cli(*argv, *extra)
    assert run.code == EXIT_USAGE, run.err
    assert message in run.err
    assert run.err.count("\n") == 1


def test_proxy_and_hub_url_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = settings(["ask", "q", "--proxy", "http://proxy.corp:3128/"])
    assert chosen.proxy == "http://proxy.corp:3128"
    assert chosen.hub_url == "https://huggingface.co"
    assert settings(["status"], {"HF_ENDPOINT": "http://hub.local:1"}).hub_url == (
        "http://hub.local:1"
    )
    flagged = settings(["status", "--hub-url", "http://other:2"], {"HF_ENDPOINT": "http://h:1"})
    assert flagged.hub_url == "http://other:2"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400), ("never", -1)],
)
def test_sleep_time_durations(text: str, seconds: int) -> None:
    from janus_space.cli._parser import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "argv",
    [
        ["--json"],
        ["--json", "ask"],
        ["ask", "--json", "q", "--timeout", "soon"],
        ["--json", "frobnicate"],
        ["--json", "duplicate", "--sleep-time", "soon"],
        ["status", "--json", "--bogus"],
    ],
)
def test_usage_errors_with_json_print_one_json_record(cli: CLI, argv: list[str]) -> None:
    run = cli(*argv)
    assert run.code == EXIT_USAGE
    assert "usage: janus-space" in run.err and "error:" in run.err
    record = json.loads(run.out)
    assert record["error"]["type"] == "UsageError"
    assert record["error"]["exit_code"] == EXIT_USAGE
    assert record["error"]["message"] in " ".join(run.err.split())


@pytest.mark.parametrize("command", ["duplicate", "status"])
def test_hub_commands_have_help_with_examples(cli: CLI, command: str) -> None:
    run = cli(command, "--help")
    assert run.code == 0
    assert f"janus-space {command}" in run.out and "examples:" in run.out
