"""Image normalisation: every accepted form, sniffing, clear refusals, downscaling."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from janus_space import ImageData, InvalidInputError, load_image
from janus_space.media import placeholder_image, prepare_for_upload, sniff_mime_type


def png_bytes(size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 10, 10) if mode == "RGB" else (200, 10, 10, 128)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_every_accepted_form_gives_the_same_image(tmp_path: Path) -> None:
    raw = png_bytes()
    path = tmp_path / "pic.png"
    path.write_bytes(raw)
    b64 = base64.b64encode(raw).decode()
    forms = [
        raw,
        bytearray(raw),
        memoryview(raw),
        path,
        str(path),
        f"data:image/png;base64,{b64}",
        b64,
        ImageData(raw, "image/png"),
    ]
    for form in forms:
        image = load_image(form)
        assert image.mime_type == "image/png" and image.data == raw
    assert load_image(Image.open(io.BytesIO(raw))).mime_type == "image/png"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png_bytes(), "image/png"),
        (jpeg_bytes((4, 4)), "image/jpeg"),
        (b"GIF89a....;", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7", None),
    ],
)
def test_sniffing(data: bytes, mime: str | None) -> None:
    assert sniff_mime_type(data) == mime


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image", "not a supported image"),
        (png_bytes()[:40], "truncated"),
        ("", "empty string"),
        ("/no/such/file.png", "not found"),
        ("ftp://example.com/a.png", "scheme 'ftp'"),
        ("data:image/png;base64", "no ','"),
        (12345, "unsupported image type int"),
    ],
)
def test_bad_images_are_refused_clearly(source: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        load_image(source)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a file"):
        load_image(tmp_path)


def test_http_urls_need_the_client() -> None:
    with pytest.raises(InvalidInputError, match="fetched by the client"):
        load_image("https://example.com/cat.png")


def test_a_phone_photo_is_downscaled_to_what_the_model_sees() -> None:
    photo = jpeg_bytes((2000, 1500))
    small = prepare_for_upload(ImageData(photo, "image/jpeg"))
    assert small.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(small.data)) as opened:
        assert opened.size == (384, 288)
    assert small.size * 10 <= len(photo)


def test_small_png_passes_byte_for_byte_and_alpha_stays_png() -> None:
    raw = png_bytes()
    assert prepare_for_upload(ImageData(raw, "image/png")).data == raw
    big_alpha = prepare_for_upload(ImageData(png_bytes((1000, 500), "RGBA"), "image/png"))
    assert big_alpha.mime_type == "image/png"


def test_undecodable_image_is_refused() -> None:
    fake = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"IEND\xaeB`\x82"
    with pytest.raises(InvalidInputError, match="cannot be decoded"):
        prepare_for_upload(ImageData(fake, "image/png"))


def test_placeholder_is_a_neutral_grey_model_sized_png() -> None:
    image = placeholder_image()
    with Image.open(io.BytesIO(image.data)) as opened:
        assert opened.size == (384, 384)
        assert opened.getpixel((100, 100)) == (128, 128, 128)
    assert image.size < 2000
