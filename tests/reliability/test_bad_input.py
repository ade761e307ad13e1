"""Bad input: each case is a clear ``InvalidInputError`` before any request reaches the Space.

Every client here points at a fault server that records every request; after each case the
test asserts the server saw none (image URLs are served by a second server, which is allowed
its one download: the Space still sees nothing). Cases are grouped: images, conversations,
parameters, client settings.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from janus_space import InvalidInputError, JanusClient, Message
from janus_space.media import MAX_IMAGE_BYTES

from .conftest import FAST, bounded
from .fault_server import FaultServer, UserImage, tiny_png


@dataclass
class Ctx:
    """What a case needs: the Space, an image host, a temp dir and a client factory."""

    space: FaultServer
    images: FaultServer
    tmp: Path
    clients: list[JanusClient] = field(default_factory=list)

    def client(self, **overrides: Any) -> JanusClient:
        made = JanusClient(**{"base_url": self.space.url, **FAST, **overrides})
        self.clients.append(made)
        return made

    def image_url(self, name: str, image: UserImage) -> str:
        self.images.images[name] = image
        return f"{self.images.url}/images/{name}"


Case = Callable[[Ctx], Awaitable[Any]]


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def _corrupt_png() -> bytes:
    """Right magic and IEND (passes the cheap checks), garbled IDAT (fails decoding)."""
    png = tiny_png(side=16)
    at = png.index(b"IDAT") + 4
    return png[:at] + bytes(b ^ 0x5A for b in png[at : at + 16]) + png[at + 16 :]


def _bomb_png() -> bytes:
    """A PNG header claiming 30000x30000 pixels: Pillow refuses it as a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def ask(image: Any) -> Case:
    """A case that asks a question about ``image`` (a value, or a function of the context)."""

    async def run(ctx: Ctx) -> Any:
        value = image(ctx) if callable(image) else image
        return await ctx.client().understand("what is this?", value)

    return run


def chat(messages: Any, **settings: Any) -> Case:
    async def run(ctx: Ctx) -> Any:
        return await ctx.client(**settings).chat(messages)

    return run


def understand(**kwargs: Any) -> Case:
    async def run(ctx: Ctx) -> Any:
        arguments = {"question": "what is this?", "image": tiny_png(), **kwargs}
        return await ctx.client().understand(**arguments)

    return run


def generate(**kwargs: Any) -> Case:
    async def run(ctx: Ctx) -> Any:
        return await ctx.client().generate(**{"prompt": "a cat", **kwargs})

    return run


def settings(**overrides: Any) -> Case:
    async def run(ctx: Ctx) -> Any:
        return ctx.client(**overrides)

    return run


def _oversized_file(ctx: Ctx) -> Path:
    path = ctx.tmp / "huge.png"
    with path.open("wb") as handle:
        handle.write(tiny_png())
        handle.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no 20 MB written
    return path


def _text_file(ctx: Ctx) -> Path:
    path = ctx.tmp / "notes.txt"
    path.write_text("not an image at all")
    return path


IMAGE_CASES: list[Any] = [
    pytest.param(ask(b"hello, I am text"), id="image-not-an-image"),
    pytest.param(ask(tiny_png()[:-20]), id="image-truncated-png"),
    pytest.param(ask(_jpeg()[:300]), id="image-truncated-jpeg"),
    pytest.param(ask(b""), id="image-zero-bytes"),
    pytest.param(ask(b'<svg xmlns="http://www.w3.org/2000/svg"/>'), id="image-svg-unsupported"),
    pytest.param(ask(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), id="image-pdf-unsupported"),
    pytest.param(ask(b"\x00\x00\x01\x00\x01\x00\x10\x10"), id="image-ico-unsupported"),
    pytest.param(ask(_corrupt_png()), id="image-corrupt-png-does-not-decode"),
    pytest.param(ask(b"BM" + b"\x00" * 40), id="image-corrupt-bmp"),
    pytest.param(ask(_bomb_png()), id="image-decompression-bomb"),  # fixed: core bug 6
    pytest.param(
        ask(b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_IMAGE_BYTES - 8) + b"IEND\x00\x00\x00\x00"),
        id="image-oversized-bytes",
    ),
    pytest.param(ask(lambda ctx: ctx.tmp / "missing.png"), id="image-missing-file"),
    pytest.param(ask(lambda ctx: str(ctx.tmp / "missing.png")), id="image-missing-file-str"),
    pytest.param(ask(lambda ctx: ctx.tmp), id="image-directory"),
    pytest.param(ask(_text_file), id="image-file-not-an-image"),
    pytest.param(ask(_oversized_file), id="image-oversized-file"),
    pytest.param(ask("ftp://example.com/cat.png"), id="image-url-ftp"),
    pytest.param(ask("file:///etc/passwd"), id="image-url-file-scheme"),
    pytest.param(
        ask("data:image/png;base64," + base64.b64encode(b"hello").decode()),
        id="image-data-uri-not-an-image",
    ),
    pytest.param(ask("data:image/png;base64"), id="image-data-uri-without-data"),
    pytest.param(
        ask(base64.b64encode(b"hello world, no image here").decode()),
        id="image-base64-not-an-image",
    ),
    pytest.param(ask(""), id="image-empty-string"),
    pytest.param(ask(12345), id="image-wrong-type-int"),
    pytest.param(ask({"path": "cat.png"}), id="image-wrong-type-dict"),
    pytest.param(ask(["cat.png"]), id="image-wrong-type-list"),
]

URL_CASES: list[Any] = [
    pytest.param(
        lambda ctx: ctx.image_url("big.png", UserImage(tiny_png() + b"\x00" * 5000)),
        "declared",
        id="url-oversized-content-length",
    ),
    pytest.param(
        lambda ctx: ctx.image_url("big.png", UserImage(tiny_png() + b"\x00" * 5000, chunked=True)),
        "streamed",
        id="url-oversized-chunked",
    ),
    pytest.param(
        lambda ctx: ctx.image_url("gone.png", UserImage(b"not found", status=404)),
        "404",
        id="url-404",
    ),
    pytest.param(
        lambda ctx: ctx.image_url(
            "page.png", UserImage(b"<html>login</html>", content_type="text/html")
        ),
        "html",
        id="url-html-page",
    ),
]

CONVERSATION_CASES: list[Any] = [
    pytest.param(chat([]), id="chat-empty-list"),
    pytest.param(chat([Message("system", "You are Janus.")]), id="chat-only-system"),
    pytest.param(
        chat([Message("user", "hi"), Message("assistant", "hello")]), id="chat-last-from-assistant"
    ),
    pytest.param(chat([Message("user", "   ")]), id="chat-empty-question"),
    pytest.param(chat("just a string"), id="chat-not-a-sequence"),
    pytest.param(chat([{"role": "user", "content": "hi"}]), id="chat-dicts-not-messages"),
    pytest.param(
        chat(
            [
                Message("user", "a", images=(tiny_png(),)),
                Message("user", "b", images=(tiny_png(),)),
            ],
            extra_images="error",
        ),
        id="chat-two-images-extra-images-error",
    ),
    pytest.param(
        chat([Message("system", "rule " * 4000), Message("user", "hi")]),
        id="chat-system-prompt-over-budget",
    ),
    pytest.param(chat([Message("user", "why? " * 5000)]), id="chat-question-over-budget"),
    pytest.param(chat([Message("user", "hi", images=("ftp://x/y.png",))]), id="chat-image-bad-url"),
]

PARAMETER_CASES: list[Any] = [
    pytest.param(understand(question=""), id="question-empty"),
    pytest.param(understand(question="  \n "), id="question-blank"),
    pytest.param(understand(question=42), id="question-int"),
    pytest.param(understand(question=None), id="question-none"),
    pytest.param(understand(question="why? " * 5000), id="question-over-budget"),
    pytest.param(understand(top_p=1.5), id="top_p-above-1"),
    pytest.param(understand(top_p=-0.1), id="top_p-negative"),
    pytest.param(understand(top_p=float("nan")), id="top_p-nan"),
    pytest.param(understand(top_p="0.9"), id="top_p-string"),
    pytest.param(understand(temperature=2.0), id="temperature-above-1"),
    pytest.param(understand(temperature=True), id="temperature-bool"),
    pytest.param(understand(temperature=None), id="temperature-none"),
    pytest.param(understand(seed=1.5), id="seed-float"),
    pytest.param(understand(seed="42"), id="seed-string"),
    pytest.param(understand(seed=-1), id="seed-negative"),
    pytest.param(understand(seed=2**32), id="seed-too-large"),
    pytest.param(understand(seed=True), id="seed-bool"),
    pytest.param(generate(guidance=0.5), id="guidance-below-1"),
    pytest.param(generate(guidance=10.5), id="guidance-above-10"),
    pytest.param(generate(guidance=float("inf")), id="guidance-inf"),
    pytest.param(generate(temperature=-1), id="generation-temperature-negative"),
    pytest.param(generate(seed=3.0), id="generation-seed-float"),
    pytest.param(generate(prompt=""), id="prompt-empty"),
    pytest.param(generate(prompt=None), id="prompt-none"),
    pytest.param(generate(prompt=b"a cat"), id="prompt-bytes"),
]


def _no_image_text_only_error(ctx: Ctx) -> Awaitable[Any]:
    return ctx.client(text_only="error").understand("what is this?")


SETTINGS_CASES: list[Any] = [
    pytest.param(_no_image_text_only_error, id="no-image-with-text_only-error"),
    pytest.param(settings(timeout=0), id="settings-timeout-zero"),
    pytest.param(settings(timeout=-5), id="settings-timeout-negative"),
    pytest.param(settings(timeout="30"), id="settings-timeout-string"),
    pytest.param(settings(connect_timeout=float("nan")), id="settings-connect-timeout-nan"),
    pytest.param(settings(idle_timeout=0), id="settings-idle-timeout-zero"),
    pytest.param(settings(cold_start_timeout=-1), id="settings-cold-start-negative"),
    pytest.param(settings(max_retries=-1), id="settings-max-retries-negative"),
    pytest.param(settings(max_retries=1.5), id="settings-max-retries-float"),
    pytest.param(settings(max_retries=True), id="settings-max-retries-bool"),
    pytest.param(settings(base_url="ftp://127.0.0.1:7860"), id="settings-base-url-ftp"),
    pytest.param(settings(base_url="127.0.0.1:7860"), id="settings-base-url-no-scheme"),
    pytest.param(settings(text_only="maybe"), id="settings-text-only"),
    pytest.param(settings(extra_images="all"), id="settings-extra-images"),
    pytest.param(settings(image_transport="carrier-pigeon"), id="settings-image-transport"),
    pytest.param(settings(max_concurrency=0), id="settings-max-concurrency-zero"),
    pytest.param(settings(max_connections=1), id="settings-max-connections-one"),
    pytest.param(settings(hf_token=12345), id="settings-hf-token-int"),
    pytest.param(
        settings(max_download_bytes=-1),
        id="settings-max-download-negative",
    ),
    pytest.param(settings(max_image_side=0), id="settings-max-image-side-zero"),
    pytest.param(
        settings(extra_headers={"x-ip-token": 1}),
        id="settings-header-value-int",
    ),
    pytest.param(settings(hub_url="ftp://huggingface.co"), id="settings-hub-url-ftp"),
]


def test_space_id_must_look_like_owner_name() -> None:
    for bad in ("janus", "a/b/c", "/name", "owner/"):
        with pytest.raises(InvalidInputError, match="owner/name"):
            JanusClient(bad)


@pytest.fixture
async def ctx(fault_server: FaultServer, other_server: FaultServer, tmp_path: Path) -> Any:
    context = Ctx(fault_server, other_server, tmp_path)
    yield context
    for client in context.clients:
        await client.aclose()


async def _refused(ctx: Ctx, case: Case) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        await bounded(case(ctx), 5)
    assert ctx.space.requests == [], "a request reached the Space before the input was refused"
    message = str(caught.value)
    assert message and len(message) < 500
    return caught.value


@pytest.mark.parametrize(
    "case", IMAGE_CASES + CONVERSATION_CASES + PARAMETER_CASES + SETTINGS_CASES
)
async def test_bad_input_is_refused_before_any_request(ctx: Ctx, case: Case) -> None:
    await _refused(ctx, case)


@pytest.mark.parametrize(("url", "why"), URL_CASES)
async def test_bad_image_url_is_refused_before_the_space_is_asked(
    ctx: Ctx, url: Callable[[Ctx], str], why: str
) -> None:
    error = await _refused(
        ctx, lambda c: c.client(max_download_bytes=1000).understand("what is this?", url(c))
    )
    assert ctx.images.count("image") == 1  # the one download; the Space saw nothing
    if why in ("declared", "streamed"):
        assert "limit" in str(error)
    if why == "404":
        assert "404" in str(error)


async def test_bad_message_is_refused_when_it_is_made() -> None:
    with pytest.raises(InvalidInputError):
        Message("bot", "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Message("user", 42)  # type: ignore[arg-type]


def test_there_are_at_least_thirty_cases() -> None:
    total = (
        len(IMAGE_CASES)
        + len(URL_CASES)
        + len(CONVERSATION_CASES)
        + len(PARAMETER_CASES)
        + len(SETTINGS_CASES)
    )
    assert total >= 30
