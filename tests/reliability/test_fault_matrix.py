"""The fault matrix: each way the Space or the network fails → a typed error or a bounded retry.

Transport faults come from the fault server (a real aiohttp server on 127.0.0.1 speaking the
Space's protocol), application faults from the replica (a real Gradio app) where it can make
them, else from the fault server's markers. Every test bounds its call with ``bounded`` so a
hang fails the test instead of stalling the suite, and counts the requests the server got to
pin down how often each fault is retried. Client settings: ``timeout=3, connect_timeout=1,
idle_timeout=1, max_retries=1`` unless a test says otherwise; the backoff is the client's own
(exponential with full jitter: 0.25-0.5 s before the first retry, 0.5-1 s before the second).
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import janus_space.client
import janus_space.connection
from janus_space import (
    AppError,
    GPUUnavailableError,
    Heartbeat,
    JanusClient,
    JanusConnectionError,
    JanusTimeoutError,
    MissingImageError,
    Progress,
    ProtocolError,
    QueueFullError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    SpaceUnavailableError,
    UnderstandingResult,
)

from .conftest import bounded
from .fault_server import FaultServer, HttpFault, StreamFault, running_fault_server, tiny_png

MakeClient = Callable[..., JanusClient]

SLEEPING_PAGE = "<!doctype html><html><body><h1>This Space is sleeping</h1></body></html>"


def gaps(server: FaultServer, endpoint: str) -> list[float]:
    """Seconds between consecutive requests to ``endpoint``."""
    times = [r.at for r in server.of(endpoint)]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.fixture
def hf_space_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make ``JanusClient(space=...)`` (no base_url) reach a local server as the Space's host.

    The core derives the host from the Space id with ``space_host_url``; this swaps that one
    function, so the Hub paths (stage, ZeroGPU token) run as for the public Space.
    """

    def point(url: str) -> None:
        monkeypatch.setattr(janus_space.connection, "space_host_url", lambda space: url)

    return point


# --- Space sleeping / building -------------------------------------------------------------


async def test_sleeping_space_html_503_on_host_and_config(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    page = HttpFault(503, SLEEPING_PAGE, "text/html")
    fault_server.fail("root", page)
    fault_server.fail("config", page)
    async with make_client(fault_server.url, max_retries=2) as client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello"), 8)
    assert caught.value.status == 503
    assert "sleeping, building or broken" in str(caught.value)
    assert fault_server.count("config") == 3  # 1 + max_retries
    assert fault_server.count("join") == 0
    first, second = gaps(fault_server, "config")
    # Exponential backoff with full jitter: 0.25-0.5 s, then 0.5-1 s (upper bounds loosened
    # for a loaded machine).
    assert 0.2 <= first <= 1.0 and 0.45 <= second <= 1.6


async def test_config_answers_an_html_page_with_200(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("config", HttpFault(200, SLEEPING_PAGE, "text/html"))
    async with make_client(fault_server.url) as client:
        with pytest.raises(SpaceUnavailableError, match="not JSON"):
            await bounded(client.understand("hello"), 5)
    assert fault_server.count("config") == 2


async def test_config_404_html_is_no_app(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("config", HttpFault(404, "<html>404</html>", "text/html"))
    async with make_client(fault_server.url) as client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello"), 5)
    assert caught.value.status == 404


async def test_building_space_recovers_within_the_retries(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("config", HttpFault(503, SLEEPING_PAGE, "text/html", times=1))
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand("hello"), 5)
    assert result.text == "answer: hello"
    assert fault_server.count("config") == 2


@pytest.mark.parametrize("stage", ["PAUSED", "RUNTIME_ERROR", "BUILD_ERROR"])
async def test_broken_space_stage_from_the_hub_fails_at_once(
    fault_server: FaultServer,
    other_server: FaultServer,
    hf_space_at: Callable[[str], None],
    stage: str,
) -> None:
    hf_space_at(fault_server.url)
    fault_server.fail("config", HttpFault(503, SLEEPING_PAGE, "text/html"))
    other_server.hub_stage = stage
    client = JanusClient(
        "owner/space", hub_url=other_server.url, timeout=3, connect_timeout=1, max_retries=1
    )
    async with client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello"), 5)
    assert caught.value.stage == stage
    assert stage in str(caught.value)
    assert fault_server.count("config") == 2 and other_server.count("hub") == 1


async def test_sleeping_space_past_the_cold_start_timeout(
    fault_server: FaultServer, other_server: FaultServer, hf_space_at: Callable[[str], None]
) -> None:
    hf_space_at(fault_server.url)
    fault_server.fail("config", HttpFault(503, SLEEPING_PAGE, "text/html"))
    other_server.hub_stage = "SLEEPING"
    other_server.hub_delay = 0.05  # the cold-start deadline (1 ms) has surely passed by then
    client = JanusClient(
        "owner/space",
        hub_url=other_server.url,
        timeout=3,
        connect_timeout=1,
        max_retries=0,
        cold_start_timeout=0.001,
    )
    async with client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello"), 5)
    assert caught.value.stage == "SLEEPING"


# --- Quota, GPU, queue, rate limits ---------------------------------------------------------


async def test_quota_from_the_replica_is_typed_and_parsed(replica_url: str) -> None:
    async with JanusClient(base_url=replica_url, timeout=10, max_retries=1) as client:
        with pytest.raises(QuotaExceededError) as caught:
            await bounded(client.understand("[quota] hello"), 10)
        error = caught.value
        assert error.retry_after == 7.0
        assert (error.requested, error.left) == (60.0, 42.0)
        assert "<a" not in str(error) and "exceeded your GPU quota" in str(error)
        # Further calls through the same client fail fast until the retry-after passes.
        started = time.monotonic()
        with pytest.raises(QuotaExceededError) as again:
            await bounded(client.understand("a harmless question"), 2)
        assert time.monotonic() - started < 0.5
        assert again.value.retry_after is not None and 0 < again.value.retry_after <= 7.0


async def test_quota_is_never_retried_and_later_calls_send_nothing(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, max_retries=3) as client:
        with pytest.raises(QuotaExceededError):
            await bounded(client.understand("[quota] q"), 5)
        assert fault_server.count("join") == 1
        before = len(fault_server.requests)
        for _ in range(3):
            with pytest.raises(QuotaExceededError):
                await bounded(client.generate("an image"), 2)
        assert len(fault_server.requests) == before  # failed fast: no request at all


async def test_quota_without_a_retry_time_does_not_block_the_client(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url) as client:
        with pytest.raises(QuotaExceededError) as caught:
            await bounded(client.understand("[quota0] q"), 5)
        assert caught.value.retry_after is None
        assert (await bounded(client.understand("next"), 5)).text == "answer: next"


async def test_no_gpu_from_the_replica_is_typed(replica_url: str) -> None:
    async with JanusClient(base_url=replica_url, timeout=10, max_retries=1) as client:
        with pytest.raises(GPUUnavailableError, match="No GPU was available"):
            await bounded(client.understand("[nogpu] hello"), 10)


async def test_no_gpu_is_retried_max_retries_times(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, max_retries=2) as client:
        with pytest.raises(GPUUnavailableError):
            await bounded(client.understand("[nogpu] q"), 8)
        assert fault_server.count("join") == 3
        result = await bounded(client.understand("[nogpu:1] again"), 5)
    assert result.text == "answer: [nogpu:1] again"
    assert fault_server.count("join") == 5


async def test_queue_full_is_retried_then_typed(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url) as client:
        with pytest.raises(QueueFullError, match="queue is full"):
            await bounded(client.understand("[full] q"), 5)
        assert fault_server.count("join") == 2
        result = await bounded(client.understand("[full:1] r"), 5)
    assert result.text == "answer: [full:1] r"
    assert fault_server.count("join") == 4


async def test_429_waits_for_retry_after_then_succeeds(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(429, "slow down", headers={"Retry-After": "1"}, times=1))
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand("hello"), 5)
    assert result.text == "answer: hello"
    assert fault_server.count("join") == 2
    assert gaps(fault_server, "join")[0] >= 1.0


async def test_429_with_a_long_retry_after_is_not_retried(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(429, "slow down", headers={"Retry-After": "3600"}))
    async with make_client(fault_server.url, max_retries=3) as client:
        with pytest.raises(RateLimitedError) as caught:
            await bounded(client.understand("hello"), 3)
    assert caught.value.retry_after == 3600.0
    assert fault_server.count("join") == 1


async def test_429_retry_after_as_http_date_on_config(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    fault_server.fail("config", HttpFault(429, "slow down", headers={"Retry-After": when}))
    async with make_client(fault_server.url) as client:
        with pytest.raises(RateLimitedError) as caught:
            await bounded(client.understand("hello"), 3)
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 121
    assert fault_server.count("config") == 1


async def test_429_without_retry_after_uses_backoff(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(429, "slow down"))
    async with make_client(fault_server.url) as client:
        with pytest.raises(RateLimitedError) as caught:
            await bounded(client.understand("hello"), 4)
    assert caught.value.retry_after is None
    assert fault_server.count("join") == 2
    assert 0.2 <= gaps(fault_server, "join")[0] <= 1.0


# --- 5xx on upload, join and the event stream ----------------------------------------------


async def test_5xx_on_upload_is_retried_then_typed(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("upload", HttpFault(500, "upload broke"))
    async with make_client(fault_server.url, image_transport="upload") as client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello", tiny_png()), 5)
    assert caught.value.status == 500
    assert fault_server.count("upload") == 2 and fault_server.count("join") == 0


async def test_transient_5xx_on_upload_recovers(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("upload", HttpFault(502, "bad gateway", times=1))
    async with make_client(fault_server.url, image_transport="upload") as client:
        result = await bounded(client.understand("hello", tiny_png()), 5)
    assert result.text == "answer: hello"
    assert fault_server.count("upload") == 2
    sent = json.loads(fault_server.of("join")[0].body)["data"][0]
    assert sent["path"] in fault_server.files  # the join names the uploaded file


async def test_500_on_join_is_not_retried(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, max_retries=3) as client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("[join:500] q"), 3)
    assert caught.value.status == 500
    assert fault_server.count("join") == 1  # a 500 may have queued the job: never resubmit


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_on_join_are_retried(
    fault_server: FaultServer, make_client: MakeClient, status: int
) -> None:
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand(f"[join:{status}:1] q"), 5)
        assert result.text == f"answer: [join:{status}:1] q"
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand(f"[join:{status}] r"), 5)
    assert caught.value.status == status
    assert fault_server.count("join") == 4  # 2 for the first call, 1 + max_retries for the second


async def test_413_on_an_inline_join_falls_back_to_upload(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand("[inline413] q", tiny_png()), 5)
        assert result.text == "answer: [inline413] q"
        assert fault_server.count("upload") == 1
        assert fault_server.count("join") <= 3  # 1 (+1 while 4xx are retried: core bug 3) + 1
        # Later calls upload straight away.
        await bounded(client.understand("[inline413] again", tiny_png()), 5)
    assert fault_server.count("upload") == 2
    joins = fault_server.of("join")
    assert json.loads(joins[-1].body)["data"][0]["path"] in fault_server.files


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_client_errors_on_join_are_not_resent_unchanged(
    fault_server: FaultServer, make_client: MakeClient, status: int
) -> None:
    async with make_client(fault_server.url, image_transport="upload") as client:
        with pytest.raises(ProtocolError):
            await bounded(client.understand(f"[join:{status}] q"), 5)
    assert fault_server.count("join") == 1


async def test_5xx_on_the_event_stream_fails_the_call_typed(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("data", HttpFault(502, "bad gateway"))
    async with make_client(fault_server.url) as client:
        with pytest.raises(SpaceUnavailableError) as caught:
            await bounded(client.understand("hello"), 5)
    assert caught.value.status == 502
    # Not retried: the stream is read once; the call fails with the stream's error. One more
    # stream is opened only to drop the job from the Space's queue (what Gradio 5 drops a queued
    # job on), and /cancel is posted in case it runs.
    assert fault_server.count("data") == 2
    assert len(fault_server.cancels) == 1


# --- The connection ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retried_then_typed(make_client: MakeClient) -> None:
    started = time.monotonic()
    async with make_client(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(JanusConnectionError, match="cannot connect"):
            await bounded(client.understand("hello"), 5)
    assert 0.2 <= time.monotonic() - started < 2.5  # one backoff wait, then the error


async def test_connection_reset_on_join_is_retried(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(action="reset", times=1))
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand("hello"), 5)
    assert result.text == "answer: hello"
    assert fault_server.count("join") == 2


async def test_connection_reset_mid_stream_fails_only_that_call(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail_stream(StreamFault("reset", times=1, after=2))
    async with make_client(fault_server.url) as client:
        outcomes = await bounded(
            asyncio.gather(
                client.understand("[slow:10] one"),
                client.understand("[slow:10] two"),
                return_exceptions=True,
            ),
            6,
        )
        # Each job has its own session and stream: the reset breaks one call, not its neighbour.
        failed = [o for o in outcomes if isinstance(o, ProtocolError)]
        assert len(failed) == 1 and "broke off" in str(failed[0]), outcomes
        answers = {o.text for o in outcomes if isinstance(o, UnderstandingResult)}
        assert len(answers) == 1 and answers <= {"answer: [slow:10] one", "answer: [slow:10] two"}
        # The client is still usable afterwards.
        assert (await bounded(client.understand("three"), 5)).text == "answer: three"


async def test_stream_that_ends_without_completion_once_is_reopened(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail_stream(StreamFault("end_early", times=1))
    async with make_client(fault_server.url) as client:
        result = await bounded(client.understand("hello"), 5)
    assert result.text == "answer: hello"
    assert fault_server.count("data") == 2


async def test_stream_that_never_completes_the_job_is_a_protocol_error(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail_stream(StreamFault("end_early", times=None))
    async with make_client(fault_server.url) as client:
        with pytest.raises(ProtocolError, match="ended without completing"):
            await bounded(client.understand("hello"), 5)
    assert 2 <= fault_server.count("data") <= 4  # a bounded number of reopened streams


async def test_config_that_says_nothing_times_out(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("config", HttpFault(action="hang"))
    started = time.monotonic()
    async with make_client(fault_server.url, connect_timeout=0.5) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello"), 5)
    assert time.monotonic() - started < 2.0  # 2 x connect_timeout, not retried
    assert fault_server.count("config") == 1


@pytest.fixture
async def silent_tcp_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never sends a byte."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_tcp_server_that_says_nothing_times_out(
    silent_tcp_server: str, make_client: MakeClient
) -> None:
    async with make_client(silent_tcp_server, connect_timeout=0.5) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello"), 5)


async def test_join_that_says_nothing_times_out(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(action="hang"))
    async with make_client(fault_server.url, timeout=1.5) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello"), 4)


async def test_upload_that_says_nothing_times_out(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("upload", HttpFault(action="hang"))
    async with make_client(fault_server.url, timeout=1.5, image_transport="upload") as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello", tiny_png()), 4)


async def test_silent_event_stream_hits_the_idle_timeout(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail_stream(StreamFault("silent", times=1))
    started = time.monotonic()
    async with make_client(fault_server.url, idle_timeout=0.5, timeout=5) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello"), 4)
        assert time.monotonic() - started < 2.0  # the idle timeout, not the call's timeout
        assert (await bounded(client.understand("next"), 5)).text == "answer: next"


async def test_silent_event_stream_cancels_the_job_on_the_space(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail_stream(StreamFault("silent", times=1))
    async with make_client(fault_server.url, idle_timeout=0.5, timeout=5) as client:
        with pytest.raises(JanusTimeoutError):
            await bounded(client.understand("hello"), 4)
    assert [c["event_id"] for c in fault_server.cancels] == list(fault_server.jobs)


async def test_heartbeats_keep_a_long_job_alive_past_the_idle_timeout(
    make_client: MakeClient,
) -> None:
    async with (
        running_fault_server(heartbeat=0.2, step_delay=0.8) as server,
        make_client(server.url, idle_timeout=0.6, timeout=8) as client,
    ):
        events = [e async for e in client.stream_understand("[slow:3] long job")]
    assert isinstance(events[-1], UnderstandingResult)
    assert events[-1].text == "answer: [slow:3] long job"
    assert sum(isinstance(e, Heartbeat) for e in events) >= 3
    assert sum(isinstance(e, Progress) for e in events) == 3


# --- Malformed answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("malformed", "malformed JSON"),
        ("non_object", "non-object"),
        ("oversized", "longer than"),
        ("unexpected_error", "Session not found"),
    ],
)
async def test_malformed_event_streams_are_protocol_errors(
    fault_server: FaultServer, make_client: MakeClient, kind: Any, message: str
) -> None:
    fault_server.fail_stream(StreamFault(kind, times=1))
    async with make_client(fault_server.url, timeout=8) as client:
        with pytest.raises(ProtocolError, match=message):
            await bounded(client.understand("hello"), 8)
        assert (await bounded(client.understand("next"), 5)).text == "answer: next"


async def test_join_without_event_id_is_a_protocol_error(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.fail("join", HttpFault(200, '{"detail": "ok"}', "application/json"))
    async with make_client(fault_server.url) as client:
        with pytest.raises(ProtocolError, match="no event_id"):
            await bounded(client.understand("hello"), 5)


async def test_config_without_the_janus_functions_is_a_protocol_error(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    fault_server.config_body = json.dumps(
        {"dependencies": [], "api_prefix": "/gradio_api"}
    ).encode()
    async with make_client(fault_server.url) as client:
        with pytest.raises(ProtocolError, match="multimodal_understanding"):
            await bounded(client.understand("hello"), 5)


# --- Failed jobs -----------------------------------------------------------------------------


async def test_error_null_from_the_replica_is_an_app_error(replica_url: str) -> None:
    async with JanusClient(base_url=replica_url, timeout=10, max_retries=1) as client:
        with pytest.raises(AppError, match="failed without a message") as caught:
            await bounded(client.understand("[crash] hello"), 10)
    assert not isinstance(caught.value, MissingImageError)  # an image was sent


async def test_app_error_from_the_replica_keeps_the_message_without_html(replica_url: str) -> None:
    async with JanusClient(base_url=replica_url, timeout=10, max_retries=1) as client:
        with pytest.raises(AppError) as caught:
            await bounded(client.generate("[apperror] a cat"), 10)
    assert not isinstance(caught.value, MissingImageError)
    assert str(caught.value) == "Something bad happened"


async def test_failed_jobs_are_not_retried(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, max_retries=3) as client:
        with pytest.raises(AppError) as understanding:
            await bounded(client.understand("[errnull] q"), 5)
        with pytest.raises(AppError) as generation:
            await bounded(client.generate("[errnull] a cat"), 5)
        with pytest.raises(AppError, match="Something bad happened"):
            await bounded(client.understand("[apperror] q"), 5)
    assert type(understanding.value) is AppError  # the client always sends an image
    assert type(generation.value) is AppError
    assert fault_server.count("join") == 3


async def test_result_files_that_vanish_are_result_unavailable(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url, max_retries=2) as client:
        with pytest.raises(ResultUnavailableError, match="no longer serves"):
            await bounded(client.generate("[vanish] a cat"), 5)
        await asyncio.sleep(0.1)  # let the sibling downloads of the gallery finish
    assert fault_server.count("file") == 5  # one request per image, none retried


async def test_generation_downloads_every_image_of_its_own_job(
    fault_server: FaultServer, make_client: MakeClient
) -> None:
    async with make_client(fault_server.url) as client:
        results = await bounded(
            asyncio.gather(*(client.generate(f"prompt {i}") for i in range(4))), 8
        )
    for i, result in enumerate(results):
        assert len(result.images) == 5
        for index, image in enumerate(result.images):
            assert f"prompt {i}#{index}".encode() in image.data


def test_fault_server_markers_are_read_like_the_replica() -> None:
    from .fault_server import parse_markers

    markers = parse_markers("x [nogpu:2] [join:503:1] [slow:4] [hang] [unknown]")
    assert (markers.no_gpu, markers.join_status, markers.join_times) == (2, 503, 1)
    assert markers.slow == 4 and markers.hang and not markers.quota
