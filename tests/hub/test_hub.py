"""``janus_space.hub`` against the stand-in Hub: what ``huggingface_hub`` sends for a status, a
duplicate (through ``duplicate_repo`` and through the older ``duplicate_space``), a wait that
ends running or failed; token discovery as Hugging Face tools do it. Nothing here reaches the
real Hub: these calls were never made against it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hub_server import TOKEN, HubStandIn, ScriptedSpace
from huggingface_hub import HfApi, constants

import janus_space.hub as hub_module
from janus_space import (
    AccessDeniedError,
    InvalidInputError,
    JanusConnectionError,
    JanusTimeoutError,
    Secret,
)
from janus_space import SpaceUnavailableError as Unavailable
from janus_space.auth import resolve_hf_token
from janus_space.hub import (
    HARDWARE,
    HubError,
    SpaceStatus,
    aspace_status,
    await_space_running,
    discover_token,
    duplicate_space,
    space_status,
)

PUBLIC = "deepseek-ai/Janus-Pro-7B"
DUPLICATE_PATH = f"/api/spaces/{PUBLIC}/duplicate"


def runtime_path(space_id: str) -> str:
    return f"/api/spaces/{space_id}/runtime"


# -- status ------------------------------------------------------------------------------


def test_status_reads_the_runtime_once_without_a_token(hub: HubStandIn) -> None:
    status = space_status(PUBLIC, hub_url=hub.url)
    assert status == SpaceStatus(PUBLIC, "RUNNING", "zero-a10g", "zero-a10g", None)
    assert status.zerogpu and status.running and status.usable and not status.failed
    assert hub.calls() == [("GET", runtime_path(PUBLIC))]
    assert hub.requests[0].auth is None  # nothing discovered: anonymous, as huggingface_hub


def test_status_sends_the_discovered_token(
    hub: HubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.spaces["tester/private-copy"] = ScriptedSpace(
        ["SLEEPING"], hardware="l4x1", sleep_time=3600, private=True
    )
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    status = space_status("tester/private-copy", hub_url=hub.url)
    assert (status.stage, status.hardware, status.sleep_time) == ("SLEEPING", "l4x1", 3600)
    assert status.usable and not status.running and not status.zerogpu
    assert [r.auth for r in hub.requests] == ["known"]


async def test_aspace_status_does_not_block_the_loop(hub: HubStandIn) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    hub.spaces["tester/a"] = ScriptedSpace(["BUILDING"], hardware=None)
    try:
        statuses = await asyncio.gather(
            aspace_status(PUBLIC, hub_url=hub.url),
            aspace_status("tester/a", hub_url=hub.url, token=Secret(TOKEN)),
        )
    finally:
        ticker.cancel()
    assert [s.stage for s in statuses] == ["RUNNING", "BUILDING"]
    assert statuses[1].hardware is None and not statuses[1].usable
    assert ticks > 0
    assert sorted(r.auth or "none" for r in hub.requests) == ["known", "none"]


def test_an_unknown_or_private_space_is_a_hub_error_that_says_whether_a_token_went(
    hub: HubStandIn,
) -> None:
    hub.spaces["tester/secret"] = ScriptedSpace(["RUNNING"], private=True)
    for space_id in ("nobody/nothing", "tester/secret"):
        with pytest.raises(HubError) as caught:
            space_status(space_id, hub_url=hub.url)
        assert caught.value.status == 404
        assert "no token was sent" in str(caught.value)
        assert space_id in str(caught.value)
    with pytest.raises(HubError, match="a token was sent"):
        space_status("nobody/nothing", hub_url=hub.url, token=TOKEN)


def test_bad_ids_fail_before_any_request(hub: HubStandIn) -> None:
    for bad in ("Janus-Pro-7B", "a/b/c", "/x", "", 7):
        with pytest.raises(InvalidInputError, match="owner/name"):
            space_status(bad, hub_url=hub.url)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="hub_url"):
        space_status(PUBLIC, hub_url="huggingface.co")
    assert hub.requests == []


def test_a_hub_that_does_not_answer_is_a_timeout(hub: HubStandIn) -> None:
    hub.hang = True
    with pytest.raises(JanusTimeoutError, match="did not answer"):
        space_status(PUBLIC, hub_url=hub.url, timeout=0.3)
    assert hub.calls() == [("GET", runtime_path(PUBLIC))]


async def test_async_status_times_out_too(hub: HubStandIn) -> None:
    hub.hang = True
    with pytest.raises(JanusTimeoutError):
        await aspace_status(PUBLIC, hub_url=hub.url, timeout=0.3)


def test_offline_mode_is_named_and_nothing_is_sent(
    hub: HubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(JanusConnectionError, match="HF_HUB_OFFLINE"):
        space_status(PUBLIC, hub_url=hub.url)
    assert hub.requests == []


def test_a_closed_port_is_a_connection_error() -> None:
    from cassette_support import free_port

    with pytest.raises(JanusConnectionError, match="cannot reach the Hub"):
        space_status(PUBLIC, hub_url=f"http://127.0.0.1:{free_port()}")


# -- duplicate ---------------------------------------------------------------------------


def test_duplicate_through_duplicate_repo(hub: HubStandIn) -> None:
    seen: list[str] = []
    status = duplicate_space(
        hardware="l4x1",
        sleep_time=3600,
        private=True,
        token=TOKEN,
        hub_url=hub.url,
        on_progress=lambda s: seen.append(s.stage),
    )
    assert status.space_id == "tester/Janus-Pro-7B"
    assert (status.stage, status.hardware, status.sleep_time) == ("BUILDING", "l4x1", 3600)
    assert seen == ["BUILDING"]
    assert hub.calls() == [
        ("GET", "/api/whoami-v2"),  # no --to: the copy goes under the token's user
        ("POST", DUPLICATE_PATH),
        ("GET", runtime_path("tester/Janus-Pro-7B")),
    ]
    assert hub.requests[1].body == {
        "repository": "tester/Janus-Pro-7B",
        "visibility": "private",
        "hardware": "l4x1",
        "sleepTimeSeconds": 3600,
    }
    assert {r.auth for r in hub.requests} == {"known"}


class LegacyApi:
    """An ``HfApi`` as huggingface_hub < 1.x has it: ``duplicate_space``, no ``duplicate_repo``."""

    def __init__(self, endpoint: str) -> None:
        self._api = HfApi(endpoint=endpoint)

    def duplicate_space(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.duplicate_space(*args, **kwargs)

    def get_space_runtime(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.get_space_runtime(*args, **kwargs)

    def whoami(self, *args: Any, **kwargs: Any) -> Any:
        return self._api.whoami(*args, **kwargs)


def test_duplicate_through_the_deprecated_duplicate_space(
    hub: HubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "_api", LegacyApi)
    assert not hasattr(LegacyApi(hub.url), "duplicate_repo")
    status = duplicate_space(
        PUBLIC, "my-janus", hardware="a10g-large", token=TOKEN, hub_url=hub.url
    )
    assert (status.space_id, status.hardware) == ("tester/my-janus", "a10g-large")
    assert hub.calls() == [
        ("GET", "/api/whoami-v2"),
        ("POST", DUPLICATE_PATH),
        ("GET", runtime_path("tester/my-janus")),
    ]
    assert hub.requests[1].body == {"repository": "tester/my-janus", "hardware": "a10g-large"}


def test_duplicate_into_a_named_owner_skips_whoami_and_sends_no_hardware_unasked(
    hub: HubStandIn,
) -> None:
    status = duplicate_space(to_id="tester/copy", token=TOKEN, hub_url=hub.url)
    assert hub.calls() == [("POST", DUPLICATE_PATH), ("GET", runtime_path("tester/copy"))]
    assert hub.requests[0].body == {"repository": "tester/copy"}  # no hardware, no visibility
    assert status.hardware == "cpu-basic"  # the stand-in's default, as the Hub's


def test_duplicate_needs_a_token_and_valid_settings_before_any_request(hub: HubStandIn) -> None:
    with pytest.raises(InvalidInputError, match="hf auth login"):
        duplicate_space(hub_url=hub.url)
    with pytest.raises(InvalidInputError, match="upgraded hardware"):
        duplicate_space(sleep_time=600, token=TOKEN, hub_url=hub.url)
    with pytest.raises(InvalidInputError, match="upgraded hardware"):
        duplicate_space(hardware="cpu-basic", sleep_time=600, token=TOKEN, hub_url=hub.url)
    with pytest.raises(InvalidInputError, match=r"unknown Space hardware 'l4'.*l4x1"):
        duplicate_space(hardware="l4", token=TOKEN, hub_url=hub.url)
    for bad in (0, -5, 1.5, True, "1h"):
        with pytest.raises(InvalidInputError, match="sleep_time"):
            duplicate_space(hardware="l4x1", sleep_time=bad, token=TOKEN, hub_url=hub.url)  # type: ignore[arg-type]
    for target in ("a/b/c", "", "/x", "x/"):
        with pytest.raises(InvalidInputError, match="to_id"):
            duplicate_space(to_id=target, token=TOKEN, hub_url=hub.url)
    assert hub.requests == []


def test_zerogpu_on_a_personal_account_needs_pro(hub: HubStandIn) -> None:
    with pytest.raises(InvalidInputError, match="needs a PRO subscription"):
        duplicate_space(hardware="zero-a10g", token=TOKEN, hub_url=hub.url)
    assert hub.calls() == [("GET", "/api/whoami-v2")]  # nothing was created
    hub.users[TOKEN]["isPro"] = True
    status = duplicate_space(hardware="zero-a10g", token=TOKEN, hub_url=hub.url)
    assert status.zerogpu
    assert hub.requests[-2].body == {"repository": "tester/Janus-Pro-7B", "hardware": "zero-a10g"}


def test_a_name_already_taken_and_a_refused_token_are_explained(hub: HubStandIn) -> None:
    hub.spaces["tester/taken"] = ScriptedSpace(["RUNNING"])
    with pytest.raises(HubError) as caught:
        duplicate_space(to_id="tester/taken", token=TOKEN, hub_url=hub.url)
    assert caught.value.status == 409 and "already created" in str(caught.value)
    with pytest.raises(AccessDeniedError) as refused:
        duplicate_space(to_id="tester/x", token="hf_wrongwrongwrongwrong", hub_url=hub.url)
    assert refused.value.status == 401 and refused.value.token_sent is True
    assert "the token was refused" in str(refused.value)
    assert "hf_wrong" not in str(refused.value)
    assert [r.auth for r in hub.requests] == ["known", "unknown"]


# -- waiting -----------------------------------------------------------------------------


def test_wait_follows_the_build_until_running(hub: HubStandIn) -> None:
    hub.build_stages = ["BUILDING", "BUILDING", "APP_STARTING", "RUNNING_APP_STARTING"]
    seen: list[str] = []
    status = duplicate_space(
        to_id="tester/waited",
        hardware="l40sx1",
        token=TOKEN,
        hub_url=hub.url,
        wait=True,
        poll_interval=0.01,
        on_progress=lambda s: seen.append(s.stage),
    )
    assert seen == ["BUILDING", "BUILDING", "APP_STARTING", "RUNNING_APP_STARTING"]
    assert status.running and status.hardware == "l40sx1"
    assert hub.calls()[1:] == [("GET", runtime_path("tester/waited"))] * 4


def test_wait_ends_with_the_hubs_reason_when_the_copy_fails(hub: HubStandIn) -> None:
    hub.build_stages = ["BUILDING", "RUNTIME_ERROR"]
    hub.build_error = "Exit code: 1. Reason: AssertionError: Torch not compiled with CUDA enabled"
    seen: list[str] = []
    with pytest.raises(Unavailable) as caught:
        duplicate_space(
            to_id="tester/cpu-copy",
            token=TOKEN,
            hub_url=hub.url,
            wait=True,
            poll_interval=0.01,
            on_progress=lambda s: seen.append(s.stage),
        )
    message = str(caught.value)
    assert caught.value.stage == "RUNTIME_ERROR"
    assert "Torch not compiled with CUDA enabled" in message
    assert "cpu-basic" in message and "l4x1" in message  # why, and what to choose
    assert seen == ["BUILDING", "RUNTIME_ERROR"]


def test_wait_gives_up_at_its_timeout_and_says_where_to_look(hub: HubStandIn) -> None:
    hub.spaces["tester/slow"] = ScriptedSpace(["BUILDING"])
    with pytest.raises(JanusTimeoutError, match="janus-space status"):
        hub_module.wait_until_running(
            "tester/slow", hub_url=hub.url, token=TOKEN, timeout=0.2, poll_interval=0.05
        )
    assert hub.calls() and set(hub.calls()) == {("GET", runtime_path("tester/slow"))}


async def test_async_wait_reports_each_stage(hub: HubStandIn) -> None:
    hub.spaces["tester/paused"] = ScriptedSpace(["APP_STARTING", "PAUSED"], hardware="l4x1")
    seen: list[str] = []
    with pytest.raises(Unavailable, match=r"PAUSED.*Settings"):
        await await_space_running(
            "tester/paused",
            hub_url=hub.url,
            token=Secret(TOKEN),
            poll_interval=0.01,
            on_progress=lambda s: seen.append(s.stage),
        )
    assert seen == ["APP_STARTING", "PAUSED"]


def test_the_hardware_table_agrees_with_huggingface_hub() -> None:
    from huggingface_hub import SpaceHardware

    assert set(HARDWARE) <= {str(h.value) for h in SpaceHardware}
    fitting = {name for name, h in HARDWARE.items() if h.fits_7b}
    assert "cpu-basic" not in fitting and "t4-medium" not in fitting
    assert {"l4x1", "a10g-large", "a100-large", "zero-a10g"} <= fitting
    assert [name for name, h in HARDWARE.items() if not h.paid] == ["cpu-basic", "zero-a10g"]


# -- token discovery ---------------------------------------------------------------------


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert discover_token() is None and resolve_hf_token(None) is None
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacylegacylegacy")
    assert resolve_hf_token(None) == Secret("hf_legacylegacylegacy")
    monkeypatch.setenv("HF_TOKEN", " hf_envenvenvenvenv\n")
    assert resolve_hf_token(None) == Secret("hf_envenvenvenvenv")  # HF_TOKEN first, cleaned
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    assert resolve_hf_token(None) is None
    assert resolve_hf_token("hf_explicitexplicit") == Secret("hf_explicitexplicit")


def test_token_from_the_login_file(no_user_environment: Path) -> None:
    no_user_environment.parent.mkdir(parents=True)
    no_user_environment.write_text("hf_fromfilefromfilefromfile\n")
    assert resolve_hf_token(None) == Secret("hf_fromfilefromfilefromfile")


def test_the_login_file_token_is_what_reaches_the_hub(
    hub: HubStandIn, no_user_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_user_environment.parent.mkdir(parents=True)
    no_user_environment.write_text(TOKEN)
    space_status(PUBLIC, hub_url=hub.url)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "true")
    space_status(PUBLIC, hub_url=hub.url)
    space_status(PUBLIC, hub_url=hub.url, token=TOKEN)  # explicit still goes
    assert [r.auth for r in hub.requests] == ["known", None, "known"]


_PROBE = """
from janus_space.auth import resolve_hf_token
import sys
found = resolve_hf_token(None)
print("none" if found is None else ("match" if found.get() == sys.argv[1] else "other"))
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, "match"), ({"HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}, "none")],
    ids=["login-file", "implicit-disabled"],
)
def test_a_fresh_process_finds_the_file_hf_auth_login_wrote_under_hf_home(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("hf_subprocesssubprocess")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_OIDC_RESOURCE")
        and not k.startswith("HF_HUB_")
    }
    env.update({"HF_HOME": str(home), **extra})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "hf_subprocesssubprocess"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
