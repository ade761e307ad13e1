"""Fuzzing with hypothesis: the SSE parser and image loading never crash or disagree.

* ``SSEDecoder`` gives the same events for every chunking of the same bytes (split anywhere,
  even inside a UTF-8 character or a CRLF, empty chunks included), matches a straightforward
  reading of the event-stream rules, and on garbage raises nothing but its ``ValueError``
  (which the queue turns into ``ProtocolError``).
* Image sniffing, loading and preparing (``load_image`` + ``prepare_for_upload``) accept an
  image or raise ``InvalidInputError``: nothing else escapes, whatever the bytes or the text.
* Through the real client, a garbage event stream ends the call with a typed ``JanusError``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from janus_space import InvalidInputError, JanusClient, JanusError, load_image
from janus_space.media import ImageData, check_image_bytes, prepare_for_upload, sniff_mime_type
from janus_space.sse import SSEDecoder

from .conftest import FAST, bounded
from .fault_server import StreamFault, running_fault_server

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]


# --- SSE ---------------------------------------------------------------------------------------

ENDINGS = ("\n", "\r\n", "\r")
NOISE = (": comment", ":", "event: message", "id: 7", "retry: 100", "foo: bar", "dataX: no")
line_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=30,
)


@st.composite
def event_streams(draw: Any) -> tuple[bytes, list[str]]:
    """Bytes of a well-formed stream with random line endings and noise, and its events."""
    events = draw(st.lists(st.lists(line_text, min_size=1, max_size=4), max_size=6))
    out: list[str] = []
    expected: list[str] = []
    previous = "\n"

    def line(text: str) -> None:
        nonlocal previous
        choices: tuple[str, ...] = ENDINGS
        if not text and previous == "\r":
            choices = ("\r\n", "\r")  # "\r" then "\n" would be one CRLF, not a blank line
        ending = draw(st.sampled_from(choices))
        out.append(text + ending)
        previous = ending

    for data_lines in events:
        for _ in range(draw(st.integers(0, 2))):
            line(draw(st.sampled_from(NOISE)))
        for text in data_lines:
            prefix = (
                "data: " if text.startswith(" ") else draw(st.sampled_from(("data: ", "data:")))
            )
            line(prefix + text)
        line("")
        expected.append("\n".join(data_lines))
    if draw(st.booleans()):
        out.append("data: an unterminated event is dropped")
    return "".join(out).encode("utf-8"), expected


@st.composite
def chunkings(draw: Any, data: bytes) -> list[bytes]:
    """``data`` cut at random points (repeated points give empty chunks)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def decode(chunks: list[bytes], max_event_bytes: int | None = None) -> list[str]:
    decoder = SSEDecoder() if max_event_bytes is None else SSEDecoder(max_event_bytes)
    events: list[str] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


@given(st.data(), event_streams())
@settings(max_examples=400, deadline=None)
def test_sse_same_events_for_every_chunking(data: st.DataObject, stream: Any) -> None:
    raw, expected = stream
    assert decode([raw]) == expected
    assert decode(data.draw(chunkings(raw))) == expected
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == expected  # byte by byte


@given(st.data(), st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_sse_garbage_gives_the_same_events_for_every_chunking(
    data: st.DataObject, raw: bytes
) -> None:
    assert decode(data.draw(chunkings(raw))) == decode([raw])


@given(st.data(), st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_sse_garbage_raises_only_value_error(data: st.DataObject, raw: bytes) -> None:
    with contextlib.suppress(ValueError):  # the only error allowed
        decode(data.draw(chunkings(raw)), max_event_bytes=16)


def test_sse_empty_chunk_after_a_carriage_return() -> None:
    """A CR ends one chunk, an empty chunk follows, the LF of the CRLF comes next."""
    chunks = [b"data: a\r", b"", b"\ndata: b\n\n"]
    assert decode(chunks) == decode([b"".join(chunks)]) == ["a\nb"]


def test_sse_oversized_line_is_refused_whatever_the_chunking() -> None:
    for step in (1, 7, 64, 1000):
        raw = b"data: " + b"x" * 300
        with pytest.raises(ValueError, match=r"longer than|larger than"):
            decode([raw[i : i + step] for i in range(0, len(raw), step)], max_event_bytes=100)


# --- Images ------------------------------------------------------------------------------------


def _samples() -> dict[str, bytes]:
    from PIL import Image

    picture = Image.new("RGB", (24, 16), (200, 100, 50))
    out = {}
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
        out[fmt] = buffer.getvalue()
    return out


SAMPLES = _samples()
MAGICS = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"BM" + b"\x00" * 30,
    b"II*\x00",
    b"MM\x00*",
]
TRAILERS = [b"", b"IEND\xaeB`\x82", b"\xff\xd9", b";"]


def load_and_prepare(source: Any) -> ImageData | None:
    """What the client does with an image: load, then decode and downscale. Only typed errors."""
    try:
        image = load_image(source)
        return prepare_for_upload(image, 384)
    except InvalidInputError:
        return None


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_image_loading(raw: bytes) -> None:
    load_and_prepare(raw)


@given(st.sampled_from(MAGICS), st.binary(max_size=300), st.sampled_from(TRAILERS))
@settings(max_examples=300, deadline=None)
def test_bytes_with_an_image_magic_never_crash(magic: bytes, body: bytes, trailer: bytes) -> None:
    raw = magic + body + trailer
    assert sniff_mime_type(raw) is not None or magic.startswith(b"BM")
    load_and_prepare(raw)


@given(st.sampled_from(sorted(SAMPLES)), st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_real_images_never_crash(fmt: str, data: st.DataObject) -> None:
    raw = bytearray(SAMPLES[fmt])
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(("flip", "cut", "insert", "drop")))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if action == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:]
        elif action == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "drop" and raw:
            del raw[at : at + data.draw(st.integers(1, 16))]
    load_and_prepare(bytes(raw))


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_random_text_never_crashes_image_loading(text: str) -> None:
    load_and_prepare(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 5000 + "!", id="file-name-too-long"),
        pytest.param(("abc/" * 2000) + "x.png", id="path-too-long"),
        pytest.param("cat\x00.png", id="nul-in-path"),
        pytest.param("data:,", id="empty-data-uri"),
        pytest.param("data:image/png;base64,!!!", id="data-uri-bad-base64"),
        pytest.param("////", id="root-slashes"),
    ],
)
def test_strange_strings_are_typed_errors(text: str) -> None:
    with pytest.raises(InvalidInputError):
        load_image(text)


def test_every_sample_format_loads() -> None:
    for fmt, raw in SAMPLES.items():
        prepared = load_and_prepare(raw)
        assert prepared is not None, fmt
        assert check_image_bytes(prepared.data).mime_type in ("image/png", "image/jpeg")


# --- Garbage through the real client --------------------------------------------------------


@given(st.binary(min_size=1, max_size=300))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_garbage_event_stream_ends_in_a_typed_error(garbage: bytes) -> None:
    assume(b"process_completed" not in garbage)
    async with running_fault_server() as server:
        server.fail_stream(StreamFault("raw", times=None, payload=garbage + b"\n\n"))
        async with JanusClient(base_url=server.url, **{**FAST, "timeout": 1.5}) as client:
            with pytest.raises(JanusError):
                await bounded(client.understand("hello"), 4)
