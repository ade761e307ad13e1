"""``janus-space duplicate`` and ``janus-space status`` against the stand-in Hub (``--hub-url``),
and ``--proxy`` through a real local forward proxy for both Hub and Space traffic: what the user
sees on stdout and stderr, the exit code, and what reached the Hub and the proxy."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

import pytest
from forward_proxy import running_proxy
from hub_server import TOKEN, HubStandIn, ScriptedSpace

import janus_space.hub as hub_module
from janus_space.cli import EXIT_ACCESS, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main

PUBLIC = "deepseek-ai/Janus-Pro-7B"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def cli(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def logged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "WAIT_POLL_SECONDS", 0.01)


# -- duplicate ---------------------------------------------------------------------------


@pytest.mark.usefixtures("logged_in")
def test_duplicate_waits_with_progress_and_says_how_to_use_the_copy(hub: HubStandIn) -> None:
    hub.build_stages = ["BUILDING", "BUILDING", "APP_STARTING", "RUNNING"]
    run = cli(
        "duplicate", "--hardware", "l4x1", "--sleep-time", "1h", "--wait", "--hub-url", hub.url
    )
    assert run.code == EXIT_OK, run.err
    assert run.out.splitlines()[0] == (
        "created tester/Janus-Pro-7B: RUNNING on l4x1 (Nvidia L4, 24 GB, 30 GB RAM)"
    )
    assert "--endpoint tester/Janus-Pro-7B --endpoint deepseek-ai/Janus-Pro-7B" in run.out
    assert f"{hub.url}/spaces/tester/Janus-Pro-7B" in run.out
    progress = [line.split("] ", 1)[1] for line in run.err.splitlines() if "] " in line]
    assert progress == [
        "asking the Hub for a copy",
        "tester/Janus-Pro-7B: BUILDING on l4x1",
        "tester/Janus-Pro-7B: APP_STARTING on l4x1",
        "tester/Janus-Pro-7B: RUNNING on l4x1",
    ]
    assert "l4x1 is paid hardware" in run.err and "never sleeps" not in run.err
    assert hub.requests[1].body == {
        "repository": "tester/Janus-Pro-7B",
        "hardware": "l4x1",
        "sleepTimeSeconds": 3600,
    }
    assert TOKEN not in run.out + run.err


@pytest.mark.usefixtures("logged_in")
def test_duplicate_without_hardware_asks_for_none_and_says_the_model_cannot_run(
    hub: HubStandIn,
) -> None:
    run = cli("--json", "duplicate", "--to", "tester/copy", "--hub-url", hub.url, "-q")
    assert run.code == EXIT_OK, run.err
    record = json.loads(run.out)
    assert (record["space"], record["stage"], record["hardware"]) == (
        "tester/copy",
        "BUILDING",
        "cpu-basic",
    )
    assert record["use"] == "--endpoint tester/copy"
    assert hub.requests[0].body == {"repository": "tester/copy"}
    assert "no --hardware named" in run.err and "cannot run" in run.err


@pytest.mark.usefixtures("logged_in")
def test_a_failed_build_exits_4_with_the_hubs_reason(hub: HubStandIn) -> None:
    hub.build_stages = ["BUILDING", "RUNTIME_ERROR"]
    hub.build_error = "CUDA is not available"
    run = cli("duplicate", "--to", "cpu-copy", "--wait", "--hub-url", hub.url, "--json")
    assert run.code == EXIT_UNAVAILABLE
    record = json.loads(run.out)
    assert record["error"]["type"] == "SpaceUnavailableError"
    assert "tester/cpu-copy is RUNTIME_ERROR: CUDA is not available" in record["error"]["message"]
    assert "l4x1" in run.err.splitlines()[-1]  # what to choose instead, on the one error line


def test_duplicate_without_a_token_exits_2_before_any_request(hub: HubStandIn) -> None:
    run = cli("duplicate", "--hardware", "l4x1", "--hub-url", hub.url)
    assert run.code == EXIT_USAGE
    assert "hf auth login" in run.err
    assert hub.requests == []


@pytest.mark.usefixtures("logged_in")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hardware", "l4"], "unknown Space hardware 'l4'"),
        (["--sleep-time", "2h"], "needs upgraded hardware"),
        (["--to", "a/b/c"], "to_id must be"),
        (["--from", "nope"], "from_id"),
    ],
)
def test_bad_duplicate_settings_exit_2_before_any_request(
    hub: HubStandIn, argv: list[str], message: str
) -> None:
    run = cli("duplicate", *argv, "--hub-url", hub.url)
    assert run.code == EXIT_USAGE, run.err
    assert message in run.err
    assert hub.requests == []


@pytest.mark.usefixtures("logged_in")
def test_zerogpu_copy_says_the_quota_is_the_callers(hub: HubStandIn) -> None:
    refused = cli("duplicate", "--hardware", "zero-a10g", "--hub-url", hub.url)
    assert refused.code == EXIT_USAGE and "needs a PRO subscription" in refused.err
    hub.users[TOKEN]["isPro"] = True
    run = cli("duplicate", "--hardware", "zero-a10g", "--hub-url", hub.url, "-q")
    assert run.code == EXIT_OK, run.err
    assert "own daily ZeroGPU quota" in run.err and "paid hardware" not in run.err


def test_a_refused_token_exits_7(hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_notknownnotknownnotknown")
    run = cli("duplicate", "--to", "x", "--hub-url", hub.url)
    assert run.code == EXIT_ACCESS
    assert "the token was refused" in run.err and "hf_notknown" not in run.err


def test_the_hub_url_comes_from_hf_endpoint(
    hub: HubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    run = cli("status", PUBLIC)
    assert run.code == EXIT_OK, run.err
    assert hub.calls() == [("GET", f"/api/spaces/{PUBLIC}/runtime")]


# -- status ------------------------------------------------------------------------------


def test_status_shows_stage_hardware_sleep_and_quota_memory(hub: HubStandIn) -> None:
    hub.spaces["tester/copy"] = ScriptedSpace(["SLEEPING"], hardware="a10g-large", sleep_time=900)
    run = cli("status", PUBLIC, "tester/copy", "http://127.0.0.1:7860", "--hub-url", hub.url)
    assert run.code == EXIT_OK, run.err
    public, copy, local = run.out.split("\n\n")
    assert public.splitlines()[:3] == [
        PUBLIC,
        "  stage:     RUNNING (answers now)",
        "  hardware:  zero-a10g (ZeroGPU: a GPU lent per call (hosting needs PRO or a "
        "Team/Enterprise org; each caller spends their own daily ZeroGPU quota, as on the "
        "public Space))",
    ]
    assert "the small anonymous one (no token)" in public
    assert "no refusal remembered: this is a new process" in public
    assert "stage:     SLEEPING (asleep: the first call wakes it" in copy
    assert "sleeps:    after 15m idle" in copy and "not ZeroGPU" in copy
    assert "not a Hub Space" in local
    assert hub.calls() == [
        ("GET", f"/api/spaces/{PUBLIC}/runtime"),
        ("GET", "/api/spaces/tester/copy/runtime"),
    ]


def test_status_json_and_exit_4_when_one_cannot_answer(hub: HubStandIn) -> None:
    hub.spaces["tester/broken"] = ScriptedSpace(
        ["RUNTIME_ERROR"], hardware="cpu-basic", error_message="Exit code: 1"
    )
    run = cli("--json", "status", "tester/broken", "nobody/nothing", PUBLIC, "--hub-url", hub.url)
    assert run.code == EXIT_UNAVAILABLE
    broken, missing, public = (json.loads(line) for line in run.out.splitlines())
    assert (broken["stage"], broken["usable"], broken["error_message"]) == (
        "RUNTIME_ERROR",
        False,
        "Exit code: 1",
    )
    assert (
        missing["error"]["type"] == "HubError"
        and "no token was sent" in missing["error"]["message"]
    )
    assert (public["zerogpu"], public["usable"], public["quota_refused"]) == (True, True, False)


def test_status_without_arguments_reads_the_endpoints_given(hub: HubStandIn) -> None:
    hub.spaces["tester/copy"] = ScriptedSpace(["RUNNING"], hardware="l4x1")
    run = cli(
        "--endpoint", "tester/copy", "--endpoint", PUBLIC, "status", "--hub-url", hub.url, "-q"
    )
    assert run.code == EXIT_OK, run.err
    assert [line for line in run.out.splitlines() if "/" in line and ":" not in line] == [
        "tester/copy",
        PUBLIC,
    ]


def test_status_refuses_a_bad_id_before_any_request(hub: HubStandIn) -> None:
    run = cli("status", PUBLIC, "not-an-id", "--hub-url", hub.url)
    assert run.code == EXIT_USAGE and "--endpoint takes a Space id" in run.err
    assert hub.requests == []


# -- --proxy -----------------------------------------------------------------------------


def test_hub_requests_go_through_the_proxy_and_the_environment_is_restored(
    hub: HubStandIn,
) -> None:
    with running_proxy() as proxy:
        run = cli("status", PUBLIC, "--hub-url", hub.url, "--proxy", proxy.url)
    assert run.code == EXIT_OK, run.err
    assert [(r.method, r.url) for r in proxy.requests] == [
        ("GET", f"{hub.url}/api/spaces/{PUBLIC}/runtime")
    ]
    assert hub.calls() == [("GET", f"/api/spaces/{PUBLIC}/runtime")]
    assert not any(os.environ.get(name) for name in ("HTTPS_PROXY", "HTTP_PROXY", "http_proxy"))


def test_space_traffic_goes_through_the_proxy_without_proxy_credentials(
    replica_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with running_proxy() as proxy:
        run = cli(
            "--json", "ask", "Hello via proxy", "--base-url", replica_url, "--proxy", proxy.url
        )
    assert run.code == EXIT_OK, run.err
    assert json.loads(run.out)["answer"].startswith("[replica]")
    urls = [r.url for r in proxy.requests]
    assert f"{replica_url}/config" in urls
    assert any(u.startswith(f"{replica_url}/gradio_api/queue/join") for u in urls)
    assert any("/gradio_api/queue/data" in u for u in urls)
    assert not any(r.proxy_authorization for r in proxy.requests)  # the token is no proxy cred
    # a custom host is not Hugging Face's: the token goes to neither the proxy nor the copy
    assert not any(r.authorization or r.x_hf_authorization for r in proxy.requests)
