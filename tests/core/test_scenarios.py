"""The core against the Space: every event type, every app error, uploads, text-only, images,
conversations and concurrency — replayed from cassettes and run against the live replica."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from janus_space import (
    AppError,
    GenerationResult,
    GPUUnavailableError,
    Heartbeat,
    HistoryTrimmedWarning,
    ImagesDroppedWarning,
    InvalidInputError,
    JanusClient,
    Log,
    Message,
    MissingImageError,
    Progress,
    Queued,
    QuotaExceededError,
    Started,
    UnderstandingResult,
)
from janus_space.replica import parse_understanding_report, prompt_checksum, read_generation_report


def picture(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """A deterministic test image (a gradient), so recorded request bodies match on replay."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(buffer, fmt, quality=90)
    return buffer.getvalue()


@pytest.fixture
async def client(space_url: str) -> AsyncIterator[JanusClient]:
    async with JanusClient(base_url=space_url, max_retries=1, timeout=60) as janus:
        yield janus


async def test_text_only_question_sends_the_placeholder(client: JanusClient) -> None:
    result = await client.understand("What is 2 + 2?", seed=7, top_p=0.5, temperature=0.25)
    report = parse_understanding_report(result.text)
    assert (report.width, report.height) == (384, 384)
    assert (report.question, report.seed, report.top_p, report.temperature) == (
        "What is 2 + 2?",
        "7",
        "0.5",
        "0.25",
    )
    assert (result.seed, result.top_p, result.temperature) == (7, 0.5, 0.25)
    assert result.duration is not None and result.duration >= 0


async def test_phone_photo_is_downscaled_to_the_model_size(client: JanusClient) -> None:
    result = await client.understand("Describe the photo.", picture((2000, 1500), "JPEG"))
    report = parse_understanding_report(result.text)
    assert (report.width, report.height) == (384, 288)


async def test_upload_transport_uploads_and_reuses_the_placeholder(space_url: str) -> None:
    async with JanusClient(base_url=space_url, image_transport="upload") as janus:
        with_image = await janus.understand("uploaded?", picture((200, 100)))
        first = await janus.understand("text only 1")
        second = await janus.understand("text only 2")
    assert parse_understanding_report(with_image.text).width == 200
    assert parse_understanding_report(first.text).width == 384
    assert parse_understanding_report(second.text).question == "text only 2"


async def test_stream_reports_queue_start_logs_progress_then_result(client: JanusClient) -> None:
    events = [event async for event in client.stream_understand("count [slow:3]")]
    kinds = [type(event) for event in events]
    assert kinds[0] is Queued and Started in kinds and kinds[-1] is UnderstandingResult
    progress = [event for event in events if isinstance(event, Progress)]
    # Gradio sends only the latest progress per 0.1 s, so steps may be coalesced (never reordered).
    indices = [p.index for p in progress if p.index is not None]
    assert progress and indices == sorted(set(indices)) and set(indices) <= {0, 1, 2}
    assert {(p.length, p.unit) for p in progress} == {(3, "steps")}
    assert progress[0].desc
    logs = [event for event in events if isinstance(event, Log)]
    assert {log.level for log in logs} == {"info", "warning"}
    assert kinds.index(Started) < kinds.index(Progress)


async def test_long_jobs_send_heartbeats(client: JanusClient) -> None:
    events = [event async for event in client.stream_understand("wait [heartbeat]")]
    assert any(isinstance(event, Heartbeat) for event in events)
    assert isinstance(events[-1], UnderstandingResult)


async def test_quota_error_is_typed_and_later_calls_fail_fast(client: JanusClient) -> None:
    with pytest.raises(QuotaExceededError) as caught:
        await client.understand("[quota] please")
    assert caught.value.retry_after == 7.0
    assert (caught.value.requested, caught.value.left) == (60.0, 42.0)
    assert "<a" not in str(caught.value)
    with pytest.raises(QuotaExceededError, match="fails fast"):  # no request: not in the cassette
        await client.understand("anything")


async def test_gpu_unavailable_is_retried_then_raised(client: JanusClient) -> None:
    with pytest.raises(GPUUnavailableError, match="No GPU was available"):
        await client.understand("[nogpu]")


async def test_crash_with_an_image_sent_is_an_app_error_not_a_missing_image(
    client: JanusClient,
) -> None:
    # The client always sends an image (the placeholder for text-only questions), so a silent
    # crash is the function failing, never "no image".
    with pytest.raises(AppError, match="failed without a message") as caught:
        await client.understand("[crash]")
    assert not isinstance(caught.value, MissingImageError)


async def test_app_error_message_is_cleaned(client: JanusClient) -> None:
    with pytest.raises(AppError, match="Something bad happened") as caught:
        await client.generate("[apperror] a cat")
    assert "<b>" not in str(caught.value)


async def test_text_only_error_policy_refuses_before_any_request() -> None:
    # Nothing listens on port 9: any request would fail with a connection error instead.
    async with JanusClient(base_url="http://127.0.0.1:9", text_only="error") as janus:
        with pytest.raises(InvalidInputError, match="needs an image"):
            await janus.understand("no image here")


async def test_generation_downloads_five_images_with_the_parameters(client: JanusClient) -> None:
    events = [
        event
        async for event in client.stream_generate(
            "a red fox", seed=99, guidance=7.5, temperature=0.5
        )
    ]
    result = events[-1]
    assert isinstance(result, GenerationResult) and isinstance(events[0], Queued)
    assert len(result.images) == 5
    for index, image in enumerate(result.images):
        assert image.mime_type == "image/webp" and image.size > 0
        report = read_generation_report(image.data)
        assert (report.index, report.seed, report.guidance, report.temperature) == (
            index,
            99,
            7.5,
            0.5,
        )
        assert report.prompt_crc32 == prompt_checksum("a red fox")
        assert image.to_data_uri().startswith("data:image/webp;base64,")


async def test_conversation_sends_latest_image_and_flattened_history(client: JanusClient) -> None:
    conversation = [
        Message("system", "You are terse."),
        Message("user", "Here is a chart.", (picture((300, 200)),)),
        Message("assistant", "I see a chart."),
        Message("user", "And this one?", (picture((120, 80)),)),
    ]
    with pytest.warns(ImagesDroppedWarning):
        result = await client.chat(conversation)
    report = parse_understanding_report(result.text)
    assert (report.width, report.height) == (120, 80)
    assert report.question == (
        "You are terse.\n\nEarlier conversation:\nUser: Here is a chart.\n"
        "Assistant: I see a chart.\n\nAnd this one?"
    )
    assert result.prompt is not None and result.prompt.dropped_images == 1


async def test_image_from_an_earlier_turn_reaches_the_space(client: JanusClient) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = await client.chat(
            [
                Message("user", "Look.", (picture((64, 32)),)),
                Message("assistant", "OK."),
                Message("user", "Size?"),
            ]
        )
    assert parse_understanding_report(result.text).width == 64


async def test_concurrent_calls_each_get_their_own_answer(client: JanusClient) -> None:
    questions = [f"question number {i}" for i in range(12)]
    results = await asyncio.gather(*(client.understand(q, seed=i) for i, q in enumerate(questions)))
    for i, result in enumerate(results):
        report = parse_understanding_report(result.text)
        assert (report.question, report.seed) == (questions[i], str(i))


async def test_mixed_concurrent_understanding_and_generation(client: JanusClient) -> None:
    answer, images = await asyncio.gather(
        client.understand("side by side"), client.generate("two at once", seed=5)
    )
    assert parse_understanding_report(answer.text).question == "side by side"
    assert read_generation_report(images.images[0].data).seed == 5


async def test_long_history_is_trimmed_oldest_first_before_sending(client: JanusClient) -> None:
    conversation = [Message("system", "Be brief.")]
    for turn in range(30):
        conversation.append(Message("user", f"turn {turn} question " + "q" * 400))
        conversation.append(Message("assistant", f"turn {turn} answer " + "a" * 400))
    conversation.append(Message("user", "What did we say last?"))
    with pytest.warns(HistoryTrimmedWarning):
        result = await client.chat(conversation)
    sent = parse_understanding_report(result.text).question
    assert result.prompt is not None and result.prompt.trimmed_messages > 0
    assert sent == result.prompt.question  # exactly what the Space received
    assert sent.startswith("Be brief.") and sent.endswith("What did we say last?")
    assert "turn 29 answer" in sent and "turn 0 question" not in sent
