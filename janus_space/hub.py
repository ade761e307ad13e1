"""What the Hub owns, through ``huggingface_hub``: the token, a Space's runtime, duplicating it.

``huggingface_hub`` is imported inside the functions that use it, so ``import janus_space``
stays fast; the Space's own protocol (config, queue, events) stays on aiohttp. Every Hub call
runs in a daemon thread under a wall-clock timeout, because ``huggingface_hub``'s shared HTTP
client has none and a hung Hub must not hang the caller (nor keep the interpreter from exiting).
The Hub has no API for a Space's ZeroGPU token (``/api/spaces/{id}/jwt``) in ``huggingface_hub``,
so the connection keeps fetching that one over aiohttp.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .auth import Secret, resolve_hf_token
from .errors import (
    AccessDeniedError,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    RateLimitedError,
    SpaceUnavailableError,
)

__all__ = [
    "DEFAULT_SPACE",
    "FAILED_STAGES",
    "HARDWARE",
    "HUB_URL",
    "RECOMMENDED_HARDWARE",
    "RUNNING_STAGES",
    "STARTING_STAGES",
    "Hardware",
    "HubError",
    "SpaceStatus",
    "aspace_status",
    "await_space_running",
    "check_hardware",
    "describe_hardware",
    "discover_token",
    "duplicate_space",
    "is_zerogpu",
    "space_status",
    "wait_until_running",
]

T = TypeVar("T")

HUB_URL = "https://huggingface.co"
DEFAULT_SPACE = "deepseek-ai/Janus-Pro-7B"
HUB_TIMEOUT = 30.0
"""Seconds one Hub request may take before it counts as a timeout."""
WAIT_TIMEOUT = 1800.0
"""Seconds ``wait=True`` follows a new copy: building it and loading 15 GB of weights is slow."""
WAIT_POLL_SECONDS = 5.0
"""Seconds between two runtime reads while waiting for a Space to start."""

RUNNING_STAGES = frozenset({"RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING"})
"""Stages in which the Space's app answers (a rebuild may be under way)."""
STARTING_STAGES = frozenset({"BUILDING", "APP_STARTING"})
"""Stages that end, by themselves, in RUNNING or in an error."""
FAILED_STAGES = frozenset(
    {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "PAUSED", "STOPPED", "DELETING"}
)
"""Stages in which the Space cannot answer until someone acts (fixes, restarts, unpauses it)."""
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's ENV_VARS_TRUE_VALUES


class HubError(JanusError):
    """The Hub refused a request: no such Space, a name taken, payment needed, a Hub failure.

    A refused or missing token is ``AccessDeniedError`` instead, as it is for a Space.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = status is not None and status >= 500


# -- hardware ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hardware:
    """One Space hardware flavour and whether Janus-Pro-7B in bf16 fits it."""

    name: str
    description: str
    paid: bool
    """Billed by the minute while the Space runs (ZeroGPU is not billed but needs PRO to host)."""
    fits_7b: bool
    """GPU memory for the bf16 weights (~15 GB) plus five-image generation: 24 GB or more."""


def _flavours() -> dict[str, Hardware]:
    table = [
        ("cpu-basic", "2 vCPU, 16 GB RAM, no GPU (free)", False, False),
        ("cpu-upgrade", "8 vCPU, 32 GB RAM, no GPU", True, False),
        (
            "zero-a10g",
            "ZeroGPU: a GPU lent per call (hosting needs PRO or a Team/Enterprise org; each "
            "caller spends their own daily ZeroGPU quota, as on the public Space)",
            False,
            True,
        ),
        ("t4-small", "Nvidia T4, 16 GB: too small for the 7B model", True, False),
        ("t4-medium", "Nvidia T4, 16 GB: too small for the 7B model", True, False),
        ("a10g-small", "Nvidia A10G, 24 GB (15 GB RAM: loading may be tight)", True, True),
        ("a10g-large", "Nvidia A10G, 24 GB, 46 GB RAM", True, True),
        ("a10g-largex2", "2x Nvidia A10G, 48 GB", True, True),
        ("a10g-largex4", "4x Nvidia A10G, 96 GB", True, True),
        ("l4x1", "Nvidia L4, 24 GB, 30 GB RAM", True, True),
        ("l4x4", "4x Nvidia L4, 96 GB", True, True),
        ("l40sx1", "Nvidia L40S, 48 GB", True, True),
        ("l40sx4", "4x Nvidia L40S, 192 GB", True, True),
        ("l40sx8", "8x Nvidia L40S, 384 GB", True, True),
        ("a100-large", "Nvidia A100, 80 GB", True, True),
        ("a100x4", "4x Nvidia A100, 320 GB", True, True),
        ("a100x8", "8x Nvidia A100, 640 GB", True, True),
    ]
    return {name: Hardware(name, text, paid, fits) for name, text, paid, fits in table}


HARDWARE: dict[str, Hardware] = _flavours()
"""The flavours this client knows; others that the installed huggingface_hub knows are accepted."""
RECOMMENDED_HARDWARE = ("l4x1", "a10g-large", "l40sx1", "a100-large")


def is_zerogpu(hardware: str | None) -> bool:
    """True for ZeroGPU hardware (``zero-a10g``; any ``zero-*`` flavour the Hub adds)."""
    return bool(hardware) and str(hardware).startswith("zero-")


def _known_hardware() -> set[str]:
    names = set(HARDWARE)
    try:
        from huggingface_hub import SpaceHardware
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return names
    return names | {str(item.value) for item in SpaceHardware}


def check_hardware(name: str) -> str:
    """A hardware flavour the Hub knows, else ``InvalidInputError`` listing the choices."""
    if not isinstance(name, str) or name.strip() not in _known_hardware():
        raise InvalidInputError(
            f"unknown Space hardware {name!r}; choose one of {sorted(_known_hardware())} "
            "(Janus-Pro-7B in bf16 needs a 24 GB GPU or more, e.g. "
            f"{', '.join(RECOMMENDED_HARDWARE)})"
        )
    return name.strip()


def describe_hardware(name: str | None) -> str:
    """``l4x1 (Nvidia L4, 24 GB, 30 GB RAM)``; the bare name for a flavour this client lacks."""
    if not name:
        return "not assigned yet"
    known = HARDWARE.get(str(name))
    return f"{name} ({known.description})" if known else str(name)


# -- the token ---------------------------------------------------------------------------


def _implicit_token_disabled() -> bool:
    return os.environ.get("HF_HUB_DISABLE_IMPLICIT_TOKEN", "").strip().upper() in _TRUE


def token_without_import() -> tuple[bool, Secret | None]:
    """``(found, token)`` when the implicit token is known without loading huggingface_hub.

    ``found`` is True when discovery is turned off (token None) or ``HF_TOKEN`` decides;
    otherwise only ``discover_token`` (which imports huggingface_hub) can tell.
    """
    if _implicit_token_disabled():
        return True, None
    if not os.environ.get("HF_OIDC_RESOURCE"):
        env = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or ""
        env = env.replace("\r", "").replace("\n", "").strip()
        if env:
            return True, Secret(env)
    return False, None


def discover_token() -> Secret | None:
    """The token Hugging Face tools would use implicitly, or None (anonymous).

    ``huggingface_hub.get_token()`` decides: ``HF_TOKEN`` (or the legacy
    ``HUGGING_FACE_HUB_TOKEN``), the file ``hf auth login`` wrote under ``HF_HOME``, Colab's
    secret, a CI's OIDC exchange. ``HF_HUB_DISABLE_IMPLICIT_TOKEN`` turns all of that off, as
    it does in ``huggingface_hub`` (an explicit token still works). When ``HF_TOKEN`` is set
    and no OIDC exchange is configured, ``get_token()`` would return it first, so it is read
    here directly and ``huggingface_hub`` (~0.2 s to import) is not loaded at all.
    """
    found, token = token_without_import()
    if found:
        return token
    try:
        from huggingface_hub import get_token
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return None
    value = get_token()
    return Secret(value) if value else None


def _token_argument(token: Secret | str | None) -> tuple[str | bool, bool]:
    """What to pass as huggingface_hub's ``token=`` (a string, or False: send none) and whether
    one is sent. None means "discover it", so huggingface_hub never looks a second time."""
    secret = resolve_hf_token(token)
    return (secret.get(), True) if secret else (False, False)


# -- running Hub calls -------------------------------------------------------------------


def _start(call: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Run ``call`` in a daemon thread: a hung Hub request is abandoned, never waited for."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="janus-space-hub", daemon=True).start()
    return future


def _timed_out(what: str, timeout: float) -> JanusTimeoutError:
    return JanusTimeoutError(f"the Hub did not answer {what} within {timeout:g}s")


def _call(call: Callable[[], T], what: str, timeout: float, token_sent: bool) -> T:
    future = _start(call)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        raise _timed_out(what, timeout) from None
    except JanusError:
        raise
    except Exception as exc:
        raise _translate(exc, what, token_sent) from None


async def _acall(call: Callable[[], T], what: str, timeout: float, token_sent: bool) -> T:
    future = asyncio.wrap_future(_start(call))
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        raise _timed_out(what, timeout) from None
    except JanusError:
        raise
    except Exception as exc:
        raise _translate(exc, what, token_sent) from None


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, connection failures) of the HTTP library the installed huggingface_hub uses."""
    timeouts: list[type[BaseException]] = [TimeoutError]
    failures: list[type[BaseException]] = [OSError]
    for name in ("httpx", "httpx2"):  # huggingface_hub 1.x uses httpx, 2.x httpx2
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        failures.append(module.TransportError)
    try:
        import requests

        timeouts.append(requests.Timeout)
        failures.append(requests.ConnectionError)
    except ImportError:
        pass
    return tuple(timeouts), tuple(failures)


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError, AttributeError):
        return None


def _translate(exc: Exception, what: str, token_sent: bool) -> JanusError:
    """A ``huggingface_hub`` / HTTP failure as the ``janus_space`` error a caller can act on."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return JanusConnectionError(
            f"cannot ask the Hub {what}: HF_HUB_OFFLINE is set (unset it to reach the Hub)"
        )
    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        server = " ".join(str(getattr(exc, "server_message", None) or "").split())[:300]
        detail = f": {server}" if server else ""
        token = "a token was sent" if token_sent else "no token was sent"
        if status == 429:
            return RateLimitedError(
                f"the Hub rate-limited {what}{detail}",
                retry_after=_retry_after(getattr(response, "headers", None)),
            )
        if status == 401:
            hint = (
                "the token was refused: check it, or log in again with `hf auth login`"
                if token_sent
                else "a token is needed: set HF_TOKEN or run `hf auth login`"
            )
            return AccessDeniedError(
                f"the Hub refused {what} (HTTP 401; {hint}){detail}",
                status=401,
                token_sent=token_sent,
            )
        if status == 403:
            return AccessDeniedError(
                f"the Hub forbade {what} (HTTP 403; {token}; a write token may be needed){detail}",
                status=403,
                token_sent=token_sent,
            )
        if status == 404:
            return HubError(
                f"the Hub found nothing for {what} (HTTP 404; {token}: a private Space is "
                f"invisible without a token that can read it){detail}",
                status=404,
            )
        return HubError(f"the Hub refused {what} (HTTP {status}){detail}", status=status)
    timeouts, failures = _transport_errors()
    if isinstance(exc, timeouts):
        return JanusTimeoutError(f"the Hub did not answer {what}: {type(exc).__name__}")
    if isinstance(exc, failures):
        return JanusConnectionError(
            f"cannot reach the Hub for {what}: {' '.join(str(exc).split())[:200]}"
        )
    return HubError(f"the Hub call for {what} failed: {type(exc).__name__}: {exc}")


def _api(hub_url: str) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_url)


def _check_hub_url(hub_url: str) -> str:
    if not isinstance(hub_url, str) or not hub_url.lower().startswith(("http://", "https://")):
        raise InvalidInputError(f"hub_url must be an http(s) URL, not {hub_url!r}")
    return hub_url.rstrip("/")


def _check_space_id(space_id: Any, name: str = "space_id") -> str:
    if not isinstance(space_id, str) or space_id.count("/") != 1 or not all(space_id.split("/")):
        raise InvalidInputError(f"{name}: a Space id looks like 'owner/name', not {space_id!r}")
    return space_id.strip()


# -- status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceStatus:
    """A Space's runtime as the Hub reports it (``GET /api/spaces/{id}/runtime``)."""

    space_id: str
    stage: str
    """RUNNING, SLEEPING, BUILDING, APP_STARTING, RUNTIME_ERROR, PAUSED, … (the Hub's words)."""
    hardware: str | None
    """The hardware it runs on now (None while a first build has none)."""
    requested_hardware: str | None
    """The hardware asked for; differs from ``hardware`` while a change is under way."""
    sleep_time: int | None
    """Idle seconds before it sleeps; -1 never; None the Hub's default (48 h on cpu-basic)."""
    error_message: str | None = None
    """What the Hub says went wrong, in an error stage."""

    @property
    def zerogpu(self) -> bool:
        """True when calls run on ZeroGPU and so spend the caller's daily ZeroGPU quota."""
        return is_zerogpu(self.hardware or self.requested_hardware)

    @property
    def running(self) -> bool:
        """True when the app answers now."""
        return self.stage in RUNNING_STAGES

    @property
    def usable(self) -> bool:
        """True when a call can be served: running, or asleep (the first call wakes it)."""
        return self.running or self.stage == "SLEEPING"

    @property
    def failed(self) -> bool:
        """True when it cannot answer until someone acts (an error stage, paused, stopped)."""
        return self.stage in FAILED_STAGES

    @classmethod
    def from_runtime(cls, space_id: str, runtime: Any) -> SpaceStatus:
        """From ``huggingface_hub``'s ``SpaceRuntime`` (any version)."""
        raw = getattr(runtime, "raw", None) or {}
        message = raw.get("errorMessage") if isinstance(raw, dict) else None

        def text(value: Any) -> str | None:
            value = getattr(value, "value", value)  # SpaceStage / SpaceHardware enums
            return None if value is None else str(value)

        sleep = getattr(runtime, "sleep_time", None)
        return cls(
            space_id=space_id,
            stage=text(runtime.stage) or "UNKNOWN",
            hardware=text(getattr(runtime, "hardware", None)),
            requested_hardware=text(getattr(runtime, "requested_hardware", None)),
            sleep_time=int(sleep) if isinstance(sleep, (int, float)) else None,
            error_message=" ".join(str(message).split()) if message else None,
        )


def _runtime_call(space_id: str, token: str | bool, hub_url: str) -> Callable[[], SpaceStatus]:
    api = _api(hub_url)

    def call() -> SpaceStatus:
        return SpaceStatus.from_runtime(space_id, api.get_space_runtime(space_id, token=token))

    return call


def space_status(
    space_id: str,
    *,
    token: Secret | str | None = None,
    hub_url: str = HUB_URL,
    timeout: float = HUB_TIMEOUT,
) -> SpaceStatus:
    """The Space's stage, hardware and sleep time from the Hub (one ``GET .../runtime``).

    ``token`` None uses the discovered token (``discover_token``). Raises ``HubError`` (no
    such Space, access refused), ``JanusConnectionError``, ``JanusTimeoutError``.
    """
    space_id, hub_url = _check_space_id(space_id), _check_hub_url(hub_url)
    value, sent = _token_argument(token)
    read = _runtime_call(space_id, value, hub_url)
    return _call(read, f"the runtime of {space_id}", timeout, sent)


async def aspace_status(
    space_id: str,
    *,
    token: Secret | None = None,
    hub_url: str = HUB_URL,
    timeout: float = HUB_TIMEOUT,
) -> SpaceStatus:
    """``space_status`` without blocking the event loop (the request runs in a thread)."""
    space_id, hub_url = _check_space_id(space_id), _check_hub_url(hub_url)
    value, sent = _token_argument(token)
    return await _acall(
        _runtime_call(space_id, value, hub_url), f"the runtime of {space_id}", timeout, sent
    )


# -- waiting for a Space -----------------------------------------------------------------


def _stage_error(status: SpaceStatus) -> SpaceUnavailableError:
    why = f": {status.error_message}" if status.error_message else ""
    hint = ""
    if status.stage in ("RUNTIME_ERROR", "BUILD_ERROR") and not _fits(status):
        hint = (
            f" (it runs on {status.hardware or status.requested_hardware or 'no hardware'}, "
            f"where Janus-Pro-7B cannot run: give it a 24 GB GPU or more, e.g. "
            f"{', '.join(RECOMMENDED_HARDWARE)}, in its Settings)"
        )
    elif status.stage == "PAUSED":
        hint = " (restart it from its Settings page)"
    return SpaceUnavailableError(
        f"the Space {status.space_id} is {status.stage}{why}{hint}", stage=status.stage
    )


def _fits(status: SpaceStatus) -> bool:
    hardware = status.hardware or status.requested_hardware
    known = HARDWARE.get(hardware or "")
    return known.fits_7b if known else hardware is not None


_TRANSIENT_POLLS = 3  # consecutive failed runtime reads tolerated while waiting


def wait_until_running(
    space_id: str,
    *,
    token: Secret | str | None = None,
    hub_url: str = HUB_URL,
    timeout: float = WAIT_TIMEOUT,
    poll_interval: float | None = None,
    on_progress: Callable[[SpaceStatus], None] | None = None,
) -> SpaceStatus:
    """Read the runtime until the Space is usable; ``on_progress`` sees every reading.

    Returns the first RUNNING (or SLEEPING: a call wakes it) status. Raises
    ``SpaceUnavailableError`` naming the stage and the Hub's message when it fails (build or
    runtime error, paused, …) and ``JanusTimeoutError`` if it is still starting at ``timeout``.
    """
    space_id, hub_url = _check_space_id(space_id), _check_hub_url(hub_url)
    value, sent = _token_argument(token)
    read = _runtime_call(space_id, value, hub_url)
    interval = WAIT_POLL_SECONDS if poll_interval is None else poll_interval
    deadline = time.monotonic() + timeout
    failures = 0
    while True:
        try:
            status = _call(read, f"the runtime of {space_id}", HUB_TIMEOUT, sent)
        except JanusError as exc:
            failures += 1
            if not exc.retryable or failures >= _TRANSIENT_POLLS:
                raise
        else:
            failures = 0
            if on_progress is not None:
                on_progress(status)
            if status.usable:
                return status
            if status.failed:
                raise _stage_error(status)
        if time.monotonic() + interval > deadline:
            raise JanusTimeoutError(
                f"the Space {space_id} was still not running after {timeout:g}s "
                "(it may still be building: `janus-space status` shows where it is)"
            )
        time.sleep(interval)


async def await_space_running(
    space_id: str,
    *,
    token: Secret | None = None,
    hub_url: str = HUB_URL,
    timeout: float = WAIT_TIMEOUT,
    poll_interval: float | None = None,
    on_progress: Callable[[SpaceStatus], None] | None = None,
) -> SpaceStatus:
    """``wait_until_running`` without blocking the event loop."""
    space_id, hub_url = _check_space_id(space_id), _check_hub_url(hub_url)
    interval = WAIT_POLL_SECONDS if poll_interval is None else poll_interval
    deadline = time.monotonic() + timeout
    failures = 0
    while True:
        try:
            status = await aspace_status(space_id, token=token, hub_url=hub_url)
        except JanusError as exc:
            failures += 1
            if not exc.retryable or failures >= _TRANSIENT_POLLS:
                raise
        else:
            failures = 0
            if on_progress is not None:
                on_progress(status)
            if status.usable:
                return status
            if status.failed:
                raise _stage_error(status)
        if time.monotonic() + interval > deadline:
            raise JanusTimeoutError(
                f"the Space {space_id} was still not running after {timeout:g}s"
            )
        await asyncio.sleep(interval)


# -- duplicating -------------------------------------------------------------------------


def _check_sleep_time(sleep_time: Any, hardware: str | None) -> int | None:
    if sleep_time is None:
        return None
    if (
        isinstance(sleep_time, bool)
        or not isinstance(sleep_time, int)
        or not (sleep_time == -1 or sleep_time > 0)
    ):
        raise InvalidInputError(
            f"sleep_time must be a number of seconds, or -1 for never, not {sleep_time!r}"
        )
    if hardware is None or hardware == "cpu-basic":
        raise InvalidInputError(
            "sleep_time needs upgraded hardware: on the free cpu-basic (the default) the Hub "
            "always puts a Space to sleep after 48 hours idle; name the hardware too"
        )
    return sleep_time


def _check_target(to_id: Any) -> str | None:
    if to_id is None:
        return None
    if not isinstance(to_id, str) or not to_id.strip() or to_id.count("/") > 1:
        raise InvalidInputError(f"to_id must be 'name' or 'owner/name', not {to_id!r}")
    parts = to_id.strip().split("/")
    if not all(parts):
        raise InvalidInputError(f"to_id must be 'name' or 'owner/name', not {to_id!r}")
    return to_id.strip()


def duplicate_space(
    from_id: str = DEFAULT_SPACE,
    to_id: str | None = None,
    *,
    hardware: str | None = None,
    private: bool | None = None,
    sleep_time: int | None = None,
    token: Secret | str | None = None,
    hub_url: str = HUB_URL,
    wait: bool = False,
    wait_timeout: float = WAIT_TIMEOUT,
    poll_interval: float | None = None,
    on_progress: Callable[[SpaceStatus], None] | None = None,
) -> SpaceStatus:
    """Copy a Space into your account (default: the public Janus-Pro-7B) and return its status.

    ``to_id`` ``"name"`` or ``"owner/name"`` (default: the same name under your account).
    ``hardware`` is sent only when given: this function never picks paid hardware itself, so
    without it the copy gets the Hub's default (free ``cpu-basic``, where the 7B model cannot
    run). Janus-Pro-7B in bf16 needs a 24 GB GPU or more (``HARDWARE`` says which fit);
    ZeroGPU (``zero-a10g``) on a personal account needs PRO, and its callers still spend their
    own ZeroGPU quota. ``wait`` follows the build until the copy runs (``on_progress`` sees each
    reading) and raises ``SpaceUnavailableError`` saying why if it fails.

    Uses ``HfApi.duplicate_repo(..., repo_type="space")`` where the installed huggingface_hub
    has it, else the older ``HfApi.duplicate_space``. Needs a token that may write.
    """
    from_id = _check_space_id(from_id, "from_id")
    to_id = _check_target(to_id)
    hub_url = _check_hub_url(hub_url)
    if hardware is not None:
        hardware = check_hardware(hardware)
    sleep_time = _check_sleep_time(sleep_time, hardware)
    if private is not None and not isinstance(private, bool):
        raise InvalidInputError(f"private must be True, False or None, not {private!r}")
    value, sent = _token_argument(token)
    if not sent:
        raise InvalidInputError(
            "duplicating a Space needs a Hugging Face token that may write: run `hf auth login` "
            "or set HF_TOKEN (https://huggingface.co/settings/tokens)"
        )
    api = _api(hub_url)
    if is_zerogpu(hardware):
        _check_zerogpu_host(api, value, to_id, hub_url)
    repo_url = _call(
        lambda: _duplicate(api, from_id, to_id, value, hardware, private, sleep_time),
        f"a copy of {from_id}",
        HUB_TIMEOUT * 2,
        sent,
    )
    new_id = _check_space_id(getattr(repo_url, "repo_id", None) or _id_from_url(str(repo_url)))
    if wait:
        return wait_until_running(
            new_id,
            token=Secret(str(value)),
            hub_url=hub_url,
            timeout=wait_timeout,
            poll_interval=poll_interval,
            on_progress=on_progress,
        )
    try:
        status = _call(_runtime_call(new_id, value, hub_url), f"the runtime of {new_id}", 30, sent)
    except JanusError as exc:  # the copy exists: say so rather than fail
        return SpaceStatus(new_id, "UNKNOWN", None, hardware, sleep_time, f"not readable: {exc}")
    if on_progress is not None:
        on_progress(status)
    return status


def _id_from_url(url: str) -> str:
    """``https://huggingface.co/spaces/you/name`` → ``you/name``."""
    return "/".join(url.rstrip("/").split("/")[-2:])


def _duplicate(
    api: Any,
    from_id: str,
    to_id: str | None,
    token: str | bool,
    hardware: str | None,
    private: bool | None,
    sleep_time: int | None,
) -> Any:
    """One ``POST /api/spaces/{from_id}/duplicate``, through whichever method this version has."""
    target = {} if to_id is None else {"to_id": to_id}
    if callable(getattr(api, "duplicate_repo", None)):  # huggingface_hub >= 1.x, 2.x
        return api.duplicate_repo(
            from_id,
            repo_type="space",
            private=private,
            token=token,
            space_hardware=hardware,
            space_sleep_time=sleep_time,
            **target,
        )
    with warnings.catch_warnings():  # deprecated where duplicate_repo exists; not taken there
        warnings.simplefilter("ignore", FutureWarning)
        return api.duplicate_space(
            from_id,
            private=private,
            token=token,
            hardware=hardware,
            sleep_time=sleep_time,
            **target,
        )


def _check_zerogpu_host(api: Any, token: str | bool, to_id: str | None, hub_url: str) -> None:
    """ZeroGPU hardware on a personal account needs PRO: say so before creating anything."""
    me = _call(lambda: api.whoami(token=token), "who the token belongs to", HUB_TIMEOUT, True)
    owner = to_id.split("/")[0] if to_id and "/" in to_id else me.get("name")
    if owner == me.get("name") and not me.get("isPro", False):
        raise InvalidInputError(
            "ZeroGPU hardware (zero-a10g) on a personal account needs a PRO subscription "
            f"({hub_url}/pricing); choose a GPU flavour such as "
            f"{', '.join(RECOMMENDED_HARDWARE)}, or copy into an organisation that has ZeroGPU"
        )
