"""The replica speaks the Space's protocol, over plain aiohttp (no janus_space client).

Most tests are live-only (they need the replica's timing and failures); the ``space_url``
ones also run from cassettes of raw protocol traffic, which exercises the replay tier itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from cassette_support import running_replica
from PIL import Image

from janus_space.replica import (
    APP_ERROR_MESSAGE,
    HEARTBEAT_SECONDS,
    IMAGE_SIDE,
    IMAGES_PER_PROMPT,
    NO_GPU_MESSAGE,
    QUOTA_MESSAGE,
    parse_understanding_report,
    prompt_checksum,
    read_generation_report,
)

UNDERSTAND, GENERATE = 2, 3
API = "/gradio_api"


# --- Raw protocol helpers ---------------------------------------------------------------------


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(session: aiohttp.ClientSession, base: str, data: bytes) -> dict[str, Any]:
    """Upload one PNG (multipart, random boundary) and return the FileData for the join."""
    form = aiohttp.FormData()
    form.add_field("files", data, filename="photo.png", content_type="image/png")
    params = {"upload_id": uuid.uuid4().hex[:11]}
    async with session.post(f"{base}{API}/upload", params=params, data=form) as response:
        assert response.status == 200, await response.text()
        (path,) = await response.json()
    return {"path": path, "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}


async def join(
    session: aiohttp.ClientSession, base: str, fn_index: int, data: list[Any], session_hash: str
) -> str:
    body = {
        "data": data,
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": {UNDERSTAND: 10, GENERATE: 20}[fn_index],
        "session_hash": session_hash,
    }
    async with session.post(f"{base}{API}/queue/join", json=body) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["event_id"])


def open_stream(
    session: aiohttp.ClientSession, base: str, session_hash: str
) -> aiohttp.client._RequestContextManager:
    return session.get(
        f"{base}{API}/queue/data",
        params={"session_hash": session_hash},
        headers={"accept": "text/event-stream"},
    )


async def messages(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The ``data:`` messages of an event stream, read line by line as they arrive."""
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data:"):
            yield json.loads(line[len("data:") :])


async def read_all(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    found = []
    async for message in messages(response):
        found.append(message)
        if message["msg"] == "close_stream":
            break
    return found


async def call(
    session: aiohttp.ClientSession, base: str, fn_index: int, data: list[Any]
) -> list[dict[str, Any]]:
    """One job: join, then read its session's stream to the end."""
    session_hash = uuid.uuid4().hex[:11]
    event_id = await join(session, base, fn_index, data, session_hash)
    async with open_stream(session, base, session_hash) as response:
        found = await read_all(response)
    assert all(m.get("event_id") in (event_id, None) for m in found)
    return found


def completed(found: list[dict[str, Any]]) -> dict[str, Any]:
    (message,) = [m for m in found if m["msg"] == "process_completed"]
    return message


async def understand(
    session: aiohttp.ClientSession, base: str, question: str, image: dict[str, Any] | None
) -> list[dict[str, Any]]:
    return await call(session, base, UNDERSTAND, [image, question, 42, 0.95, 0.1])


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- /config ----------------------------------------------------------------------------------


async def test_config_has_the_space_ids(http: aiohttp.ClientSession, replica_url: str) -> None:
    async with http.get(f"{replica_url}/config") as response:
        config = await response.json()
    assert config["protocol"] == "sse_v3"
    assert config["api_prefix"] == API
    assert config["version"].startswith("5.")
    deps = {d["id"]: d for d in config["dependencies"]}
    for fn_index, trigger in ((0, 12), (1, 22)):
        assert deps[fn_index]["targets"] == [[trigger, "click"]]
        assert deps[fn_index]["queue"] is False
        assert deps[fn_index]["show_api"] is False
    expected = {
        UNDERSTAND: ("multimodal_understanding", 10, [3, 5, 6, 7, 8], [11]),
        GENERATE: ("generate_image", 20, [18, 19, 15, 16], [21]),
    }
    for fn_index, (api_name, trigger, inputs, outputs) in expected.items():
        dep = deps[fn_index]
        assert dep["api_name"] == api_name
        assert dep["targets"] == [[trigger, "click"]]
        assert (dep["inputs"], dep["outputs"]) == (inputs, outputs)
        assert dep["queue"] is not False
    async with http.get(f"{replica_url}{API}/info") as response:
        info = await response.json()
    assert sorted(info["named_endpoints"]) == ["/generate_image", "/multimodal_understanding"]


# --- One call of each function ----------------------------------------------------------------


async def test_understanding_reports_its_inputs(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    image = await upload(http, replica_url, png_bytes(40, 30))
    found = await understand(http, replica_url, "What is in 'this' image?\nTell me.", image)
    assert [m["msg"] for m in found] == [
        "estimation",
        "process_starts",
        "process_completed",
        "close_stream",
    ]
    done = completed(found)
    assert done["success"] is True
    report = parse_understanding_report(done["output"]["data"][0])
    assert (report.width, report.height) == (40, 30)
    assert report.question == "What is in 'this' image?\nTell me."
    assert (report.seed, report.top_p, report.temperature) == ("42", "0.95", "0.1")


async def test_generation_returns_five_webp_images(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    prompt = "a red fox in the snow"
    done = completed(await call(http, replica_url, GENERATE, [prompt, 7, 6.5, 0.75]))
    assert done["success"] is True
    (gallery,) = done["output"]["data"]
    assert len(gallery) == IMAGES_PER_PROMPT
    for index, item in enumerate(gallery):
        assert item["caption"] is None
        url = item["image"]["url"]
        assert url.startswith(f"{replica_url}{API}/file=") and url.endswith(".webp")
        async with http.get(url) as response:
            assert response.status == 200
            data = await response.read()
        picture = Image.open(io.BytesIO(data))
        assert (picture.format, picture.size) == ("WEBP", (IMAGE_SIDE, IMAGE_SIDE))
        report = read_generation_report(data)
        assert (report.index, report.seed, report.guidance, report.temperature) == (
            index,
            7,
            6.5,
            0.75,
        )
        assert report.prompt_crc32 == prompt_checksum(prompt)


async def test_generation_without_seed(http: aiohttp.ClientSession, replica_url: str) -> None:
    done = completed(await call(http, replica_url, GENERATE, ["x", None, 5, 1.0]))
    first = done["output"]["data"][0][0]["image"]["url"]
    async with http.get(first) as response:
        assert read_generation_report(await response.read()).seed is None


# --- Failures ---------------------------------------------------------------------------------


async def test_missing_image_fails_without_text(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    done = completed(await understand(http, replica_url, "what is this?", None))
    assert done["success"] is False
    assert done["output"]["error"] is None


@pytest.mark.parametrize(
    ("marker", "error"),
    [
        ("[quota]", QUOTA_MESSAGE),
        ("[nogpu]", NO_GPU_MESSAGE),
        ("[apperror]", APP_ERROR_MESSAGE),
        ("[crash]", None),
    ],
)
@pytest.mark.parametrize("fn_index", [UNDERSTAND, GENERATE])
async def test_fault_markers(
    http: aiohttp.ClientSession, replica_url: str, marker: str, error: str | None, fn_index: int
) -> None:
    text = f"please {marker} now"
    if fn_index == UNDERSTAND:
        image = await upload(http, replica_url, png_bytes(8, 8))
        found = await understand(http, replica_url, text, image)
    else:
        found = await call(http, replica_url, GENERATE, [text, 1, 5, 1.0])
    done = completed(found)
    assert done["success"] is False
    assert done["output"]["error"] == error


async def test_quota_text_matches_zerogpu(http: aiohttp.ClientSession, replica_url: str) -> None:
    image = await upload(http, replica_url, png_bytes(8, 8))
    error = completed(await understand(http, replica_url, "[quota]", image))["output"]["error"]
    assert error.startswith("You have exceeded your GPU quota (60s requested vs. 42s left).")
    assert "Try again in 0:00:07." in error and ' <a href="' in error


# --- Status messages --------------------------------------------------------------------------


async def test_slow_marker_sends_progress_and_logs(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    image = await upload(http, replica_url, png_bytes(8, 8))
    found = await understand(http, replica_url, "think [slow:4]", image)
    progress = [m["progress_data"][0] for m in found if m["msg"] == "progress"]
    # Gradio sends only the latest progress per 0.1 s: steps may be coalesced, never reordered.
    indices = [p["index"] for p in progress]
    assert progress and indices == sorted(set(indices)) and set(indices) <= set(range(4))
    assert {(p["length"], p["unit"]) for p in progress} == {(4, "steps")}
    assert {p["desc"] for p in progress} == {"replica working"}
    logs = [(m["level"], m["log"]) for m in found if m["msg"] == "log"]
    assert [level for level, _ in logs] == ["info", "warning"]
    assert completed(found)["success"] is True


async def test_progress_arrives_while_the_job_runs(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    image = await upload(http, replica_url, png_bytes(8, 8))
    session_hash = uuid.uuid4().hex[:11]
    loop = asyncio.get_running_loop()
    await join(http, replica_url, UNDERSTAND, [image, "[slow:10]", 1, 0.5, 0.5], session_hash)
    seen: dict[str, float] = {}
    async with open_stream(http, replica_url, session_hash) as response:
        async for message in messages(response):
            seen.setdefault(message["msg"], loop.time())
            if message["msg"] == "close_stream":
                break
    assert seen["process_completed"] - seen["progress"] > 0.5  # ten steps of 0.1 s


async def test_heartbeat_marker_gets_a_heartbeat(
    http: aiohttp.ClientSession, replica_url: str
) -> None:
    image = await upload(http, replica_url, png_bytes(8, 8))
    found = await understand(http, replica_url, "wait [heartbeat]", image)
    kinds = [m["msg"] for m in found]
    assert "heartbeat" in kinds
    assert kinds.index("heartbeat") < kinds.index("process_completed")
    assert completed(found)["output"]["duration"] >= HEARTBEAT_SECONDS


# --- Queue ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_queue_url() -> Iterator[str]:
    """A second replica whose queue holds one waiting job."""
    with running_replica("--max-queue-size", "1") as url:
        yield url


async def test_full_queue_answers_503(http: aiohttp.ClientSession, tiny_queue_url: str) -> None:
    image = await upload(http, tiny_queue_url, png_bytes(8, 8))
    data = [image, "[slow:5]", 1, 0.5, 0.5]
    sessions = [uuid.uuid4().hex[:11] for _ in range(3)]
    await join(http, tiny_queue_url, UNDERSTAND, data, sessions[0])
    await asyncio.sleep(0.3)  # the first job is running, so the next one waits
    await join(http, tiny_queue_url, UNDERSTAND, data, sessions[1])
    body = {"data": data, "fn_index": UNDERSTAND, "session_hash": sessions[2]}
    async with http.post(f"{tiny_queue_url}{API}/queue/join", json=body) as response:
        assert response.status == 503
        assert "Queue is full" in (await response.json())["detail"]
    async with open_stream(http, tiny_queue_url, sessions[1]) as response:
        found = await read_all(response)  # the waiting job was ranked, then ran
    assert found[0]["msg"] == "estimation" and found[0]["rank"] == 0
    assert completed(found)["success"] is True


# --- Through the replay/live tiers (raw traffic cassettes) ------------------------------------


async def test_raw_understanding(http: aiohttp.ClientSession, space_url: str) -> None:
    image = await upload(http, space_url, png_bytes(40, 30))
    found = await understand(http, space_url, "raw [slow:2]", image)
    assert [m["msg"] for m in found].count("progress") == 2
    report = parse_understanding_report(completed(found)["output"]["data"][0])
    assert (report.width, report.height, report.question) == (40, 30, "raw [slow:2]")


async def test_raw_generation_with_downloads(http: aiohttp.ClientSession, space_url: str) -> None:
    done = completed(await call(http, space_url, GENERATE, ["tiered", 3, 2.5, 0.5]))
    urls = [item["image"]["url"] for item in done["output"]["data"][0]]
    assert all(url.startswith(f"{space_url}{API}/file=") for url in urls)
    for index, url in enumerate(urls):
        async with http.get(url) as response:
            report = read_generation_report(await response.read())
        assert (report.index, report.seed, report.guidance) == (index, 3, 2.5)


async def test_raw_concurrent_calls(http: aiohttp.ClientSession, space_url: str) -> None:
    image = await upload(http, space_url, png_bytes(16, 16))
    questions = [f"question {n} [slow:{n}]" for n in (3, 1, 2)]
    results = await asyncio.gather(*(understand(http, space_url, q, image) for q in questions))
    for question, found in zip(questions, results, strict=True):
        report = parse_understanding_report(completed(found)["output"]["data"][0])
        assert report.question == question


async def test_raw_stream_opened_before_join(http: aiohttp.ClientSession, space_url: str) -> None:
    """A known session's stream waits for its next job (vcrpy's stub would deadlock here)."""
    session_hash = uuid.uuid4().hex[:11]
    image = await upload(http, space_url, png_bytes(8, 8))
    await join(http, space_url, UNDERSTAND, [image, "first", 1, 0.5, 0.5], session_hash)
    async with open_stream(http, space_url, session_hash) as response:
        await read_all(response)
    async with open_stream(http, space_url, session_hash) as response:
        await join(http, space_url, UNDERSTAND, [image, "second", 1, 0.5, 0.5], session_hash)
        found = await read_all(response)
    assert parse_understanding_report(completed(found)["output"]["data"][0]).question == "second"


async def test_raw_stream_left_early(http: aiohttp.ClientSession, space_url: str) -> None:
    """A client may stop reading mid-job; what it read is what the cassette holds."""
    image = await upload(http, space_url, png_bytes(8, 8))
    session_hash = uuid.uuid4().hex[:11]
    await join(http, space_url, UNDERSTAND, [image, "[slow:3]", 1, 0.5, 0.5], session_hash)
    async with open_stream(http, space_url, session_hash) as response:
        async for message in messages(response):
            if message["msg"] == "progress":
                break
    assert message["progress_data"][0]["index"] == 0
