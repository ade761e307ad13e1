"""Image preparation over many real inputs: every EXIF orientation, every Pillow mode, no Pillow.

What is checked is what the Space would be shown: the prepared image keeps the displayed aspect
ratio, is upright in its pixels (no orientation left for the receiver to honour), and has the
brightness of the source as an image viewer renders it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from janus_space import ImageData, InvalidInputError, load_image, media
from janus_space.errors import ImageNotDownscaledWarning
from janus_space.media import MODEL_IMAGE_SIDE, image_pixel_size, prepare_for_upload

LIMIT = MODEL_IMAGE_SIDE
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff"}

# ---------------------------------------------------------------------------------------------
# EXIF orientation

# What a camera does to store an upright picture under each EXIF orientation (the inverse of
# what a viewer does to show it), from the EXIF spec's row/column description.
STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,  # mirrored
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,  # mirrored about the main diagonal
    6: Image.Transpose.ROTATE_90,  # shown rotated 90° clockwise: stored 90° anticlockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
QUADRANTS = {  # displayed position → colour
    "top-left": (255, 0, 0),
    "top-right": (0, 255, 0),
    "bottom-left": (0, 0, 255),
    "bottom-right": (255, 255, 255),
}


def marked(width: int, height: int) -> Image.Image:
    """An upright picture whose four quadrants have four colours: any turn or flip shows."""
    picture = Image.new("RGB", (width, height), QUADRANTS["bottom-right"])
    half_w, half_h = width // 2, height // 2
    picture.paste(QUADRANTS["top-left"], (0, 0, half_w, half_h))
    picture.paste(QUADRANTS["top-right"], (half_w, 0, width, half_h))
    picture.paste(QUADRANTS["bottom-left"], (0, half_h, half_w, height))
    return picture


def stored_with_orientation(displayed: Image.Image, orientation: int, fmt: str) -> bytes:
    """``displayed`` saved as a camera would: pixels turned, EXIF orientation tag set."""
    transpose = STORE[orientation]
    stored = displayed if transpose is None else displayed.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    stored.save(buffer, fmt, exif=exif.tobytes(), **options)
    return buffer.getvalue()


def quadrant_colours(picture: Image.Image) -> dict[str, str]:
    """For each quadrant's centre, the name of the marker colour nearest to its pixel."""
    rgb = np.asarray(picture.convert("RGB"), dtype=float)
    height, width = rgb.shape[:2]
    centres = {
        "top-left": (height // 4, width // 4),
        "top-right": (height // 4, 3 * width // 4),
        "bottom-left": (3 * height // 4, width // 4),
        "bottom-right": (3 * height // 4, 3 * width // 4),
    }
    found = {}
    for where, (row, col) in centres.items():
        pixel = rgb[row, col]
        found[where] = min(
            QUADRANTS, key=lambda name: float(np.sum((pixel - QUADRANTS[name]) ** 2))
        )
    return found


def check_upright_and_proportional(
    prepared: ImageData, displayed: tuple[int, int], *, markers: bool = True
) -> None:
    width, height = displayed
    with Image.open(io.BytesIO(prepared.data)) as result:
        assert result.getexif().get(0x0112, 1) == 1, "an orientation is left for the receiver"
        got_w, got_h = result.size
        if max(width, height) > LIMIT:
            scale = LIMIT / max(width, height)
            assert max(got_w, got_h) == LIMIT
            assert abs(got_w - width * scale) <= 1 and abs(got_h - height * scale) <= 1, (
                f"displayed {width}x{height} sent as {got_w}x{got_h}"
            )
        else:
            assert (got_w, got_h) == (width, height)
        if markers:
            assert quadrant_colours(result) == {name: name for name in QUADRANTS}


SIZES = [(1000, 600), (450, 800), (384, 200), (300, 170), (1001, 37), (2000, 1500)]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_orientation_is_sent_upright_with_its_displayed_aspect(
    size: tuple[int, int], orientation: int, fmt: str
) -> None:
    displayed = marked(*size)
    data = stored_with_orientation(displayed, orientation, fmt)
    with Image.open(io.BytesIO(data)) as check:  # the test's own file shows as intended
        assert ImageOps.exif_transpose(check).size == size
    prepared = prepare_for_upload(load_image(data))
    check_upright_and_proportional(prepared, size)
    small = max(size) <= LIMIT
    if small and orientation == 1 and fmt in ("JPEG", "PNG"):
        assert prepared.data == data  # nothing to do: byte for byte


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", [(1000, 600), (300, 170)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_opened_pil_image_is_sent_like_its_file(size: tuple[int, int], orientation: int) -> None:
    data = stored_with_orientation(marked(*size), orientation, "JPEG")
    with Image.open(io.BytesIO(data)) as opened:
        prepared = prepare_for_upload(load_image(opened))
    check_upright_and_proportional(prepared, size)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 1600),
    height=st.integers(1, 1600),
    orientation=st.integers(1, 8),
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]),
)
def test_any_size_keeps_its_displayed_aspect(
    width: int, height: int, orientation: int, fmt: str
) -> None:
    data = stored_with_orientation(marked(width, height), orientation, fmt)
    prepared = prepare_for_upload(load_image(data))
    # Colours of quadrants a few pixels wide blur into each other; check them where they can hold.
    scale = min(1.0, LIMIT / max(width, height))
    check_upright_and_proportional(
        prepared, (width, height), markers=min(width, height) * scale >= 24
    )


# ---------------------------------------------------------------------------------------------
# Modes: brightness as a viewer renders it


def scene(width: int, height: int) -> Image.Image:
    """A colour picture with gradients in three directions and hard-edged blocks."""
    y, x = np.mgrid[0:height, 0:width].astype(float)
    red = 255 * x / max(1, width - 1)
    green = 255 * y / max(1, height - 1)
    blue = 255 * (1 - (x + y) / max(1, width + height - 2)) ** 2
    rgb = np.stack([red, green, blue], axis=-1)
    rgb[height // 5 : height // 2, width // 6 : width // 3] = (240, 230, 40)
    rgb[height // 2 : 4 * height // 5, width // 2 : 5 * width // 6] = (20, 30, 90)
    return Image.fromarray(rgb.round().astype(np.uint8))


def alpha_ramp(width: int, height: int) -> Image.Image:
    """Opaque on the left, fully transparent on the right, with a transparent hole."""
    x = np.mgrid[0:height, 0:width][1]
    alpha = np.clip(255 * (1.2 - 1.4 * x / max(1, width - 1)), 0, 255)
    alpha[height // 3 : 2 * height // 3, width // 5 : 2 * width // 5] = 0
    return Image.fromarray(alpha.round().astype(np.uint8))


def wide_grey(width: int, height: int, low: float, high: float) -> np.ndarray:
    """The scene's brightness spread over ``low..high`` (data of 16-bit, int or float images)."""
    grey = np.asarray(scene(width, height).convert("L"), dtype=float) / 255
    return low + grey * (high - low)


def source_image(kind: str, width: int, height: int) -> Image.Image:
    """A picture of the given kind (a Pillow mode, sometimes with the range of its data)."""
    base = scene(width, height)
    if kind == "1":
        return base.convert("L").convert("1")  # dithered
    if kind in ("L", "RGB", "CMYK", "YCbCr", "LAB", "HSV"):
        return base.convert("L") if kind == "L" else base.convert(kind)
    if kind in ("LA", "RGBA"):
        picture = base.convert(kind[0] if kind == "LA" else "RGB")
        picture.putalpha(alpha_ramp(width, height))
        return picture
    if kind == "P":
        return base.quantize(64)
    if kind == "P+transparency":
        picture = base.quantize(64)
        picture.info["transparency"] = int(np.asarray(picture)[height // 2, width // 4])
        return picture
    if kind == "PA":
        picture = base.quantize(64).convert("PA")
        picture.putalpha(alpha_ramp(width, height))
        return picture
    if kind in ("I;16", "I;16B"):
        values = wide_grey(width, height, 0, 65535).round()
        if kind == "I;16":
            return Image.fromarray(values.astype(np.uint16))
        # Not convert("I;16B"): Pillow clips that conversion to 0..255.
        return Image.frombytes("I;16B", (width, height), values.astype(">u2").tobytes())
    ranges = {"I 0..65535": (0, 65535), "I 0..255": (0, 255), "I -5e4..2e6": (-50000, 2e6)}
    if kind in ranges:
        return Image.fromarray(wide_grey(width, height, *ranges[kind]).round().astype(np.int32))
    ranges_f = {"F 0..1": (0, 1), "F 0..255": (0, 255), "F -1e3..3e3": (-1000, 3000)}
    if kind in ranges_f:
        return Image.fromarray(wide_grey(width, height, *ranges_f[kind]).astype(np.float32))
    raise AssertionError(kind)


def documented_levels(values: np.ndarray, mode: str) -> np.ndarray:
    """media._displayable's documented rule for I;16*, I and F, written again with numpy."""
    if mode.startswith("I;16"):
        return values / 257
    low, high = float(values.min()), float(values.max())
    if mode == "F" and low >= 0 and high <= 1:
        return values * 255
    if low >= 0 and high <= 255:
        return values
    if low >= 0 and high <= 65535:
        return values / 257
    return (values - low) * 255 / (high - low)


def rendered(picture: Image.Image, background: float) -> np.ndarray:
    """RGB as a viewer shows ``picture`` over a plain background (values 0..255, float)."""
    mode = picture.mode
    if mode.startswith("I") or mode == "F":
        grey = np.clip(documented_levels(np.asarray(picture, dtype=float), mode), 0, 255)
        return np.repeat(grey[..., None], 3, axis=-1)
    has_alpha = mode in ("LA", "RGBA", "PA", "La", "RGBa") or "transparency" in picture.info
    rgba = np.asarray(picture.convert("RGBA" if has_alpha else "RGB"), dtype=float)
    if not has_alpha:
        return rgba
    alpha = rgba[..., 3:] / 255
    return rgba[..., :3] * alpha + background * (1 - alpha)


def block_means(rgb: np.ndarray, blocks: int = 4) -> np.ndarray:
    """Mean of each channel over a ``blocks`` x ``blocks`` grid (proportional, so any size)."""
    height, width = rgb.shape[:2]
    rows = np.linspace(0, height, blocks + 1).round().astype(int)
    cols = np.linspace(0, width, blocks + 1).round().astype(int)
    return np.array(
        [
            [
                rgb[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].mean(axis=(0, 1))
                for j in range(blocks)
            ]
            for i in range(blocks)
        ]
    )


def check_rendered_alike(source: Image.Image, prepared: ImageData, size: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(prepared.data)) as result:
        result.load()
        if max(size) > LIMIT:
            assert max(result.size) == LIMIT
        else:
            assert result.size == size
        for background in (255.0, 0.0):
            want, got = rendered(source, background), rendered(result, background)
            overall = np.abs(want.mean(axis=(0, 1)) - got.mean(axis=(0, 1))).max()
            assert overall <= 3, f"mean off by {overall:.1f} levels over {background:.0f}"
            # Per region too: a stretched, flattened or turned image can keep its mean.
            regional = np.abs(block_means(want) - block_means(got)).max()
            assert regional <= 6, f"a region is off by {regional:.1f} levels"


# Each mode a user can hand in, with the formats Pillow can store it in (as bytes).
SAVED_AS = {
    "1": ["PNG", "TIFF", "BMP"],
    "L": ["PNG", "JPEG", "TIFF"],
    "LA": ["PNG", "TIFF"],
    "P": ["PNG", "TIFF", "GIF"],
    "P+transparency": ["PNG", "GIF"],
    "PA": ["TIFF"],
    "RGB": ["PNG", "JPEG", "WEBP", "TIFF"],
    "RGBA": ["PNG", "WEBP", "TIFF"],
    "CMYK": ["JPEG", "TIFF"],
    "YCbCr": ["JPEG"],
    "LAB": ["TIFF"],
    "I;16": ["PNG", "TIFF"],
    "I;16B": ["PNG", "TIFF"],
    "I 0..65535": ["TIFF"],
    "I 0..255": ["TIFF"],
    "I -5e4..2e6": ["TIFF"],
    "F 0..1": ["TIFF"],
    "F 0..255": ["TIFF"],
    "F -1e3..3e3": ["TIFF"],
    "HSV": [],  # no format stores HSV: only as a PIL image
}
MODE_SIZES = [(1000, 800), (200, 150)]
AS_BYTES = [(kind, fmt) for kind, formats in SAVED_AS.items() for fmt in formats]


@pytest.mark.parametrize("size", MODE_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("kind", "fmt"), AS_BYTES, ids=[f"{k}-{f}" for k, f in AS_BYTES])
def test_every_mode_as_a_file_keeps_its_brightness(
    kind: str, fmt: str, size: tuple[int, int]
) -> None:
    picture = source_image(kind, *size)
    buffer = io.BytesIO()
    extra: dict[str, Any] = {}
    if kind == "P+transparency" and fmt == "GIF":
        extra["transparency"] = picture.info["transparency"]
    picture.save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}), **extra)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as source:  # the source is what the file holds
        source.load()
        prepared = prepare_for_upload(load_image(data))
        check_rendered_alike(source, prepared, size)
        as_given = source.mode in ("1", "L", "LA", "RGB", "RGBA") and fmt in ("PNG", "JPEG")
        opaque = source.mode not in ("LA", "RGBA", "PA") and "transparency" not in source.info
    if as_given and max(size) <= LIMIT:  # fine as it is for any receiver: byte for byte
        assert prepared.data == data
    else:
        assert prepared.mime_type == ("image/jpeg" if opaque else "image/png")


@pytest.mark.parametrize("size", MODE_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", list(SAVED_AS))
def test_every_mode_as_a_pil_image_keeps_its_brightness(kind: str, size: tuple[int, int]) -> None:
    picture = source_image(kind, *size)
    prepared = prepare_for_upload(load_image(picture))
    check_rendered_alike(picture, prepared, size)


def test_a_16_bit_gradient_keeps_every_level() -> None:
    """The reported case: a 1000x800 I;16 ramp was sent with mean 254.5 and 50 values."""
    ramp = np.tile(np.linspace(0, 65535, 1000), (800, 1)).round().astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, "PNG")
    prepared = prepare_for_upload(load_image(buffer.getvalue()))
    with Image.open(io.BytesIO(prepared.data)) as result:
        grey = np.asarray(result.convert("L"), dtype=float)
    assert abs(grey.mean() - 127.5) <= 1
    assert len(np.unique(grey)) >= 250


def test_a_float_image_with_infinite_values_is_refused() -> None:
    data = np.full((600, 600), 0.5, dtype=np.float32)
    data[0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="infinite"):
        prepare_for_upload(load_image(Image.fromarray(data)))


# ---------------------------------------------------------------------------------------------
# Without Pillow


def test_header_sizes_match_pillow() -> None:
    """The size read without Pillow (to decide whether to warn) is the one Pillow reads."""
    picture = scene(517, 389)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True, "exif": Image.Exif().tobytes()}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"lossless": False}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"exif": Image.Exif().tobytes()}),  # extended (VP8X) header
    ]
    for fmt, options in cases:
        buffer = io.BytesIO()
        picture.save(buffer, fmt, **options)
        assert image_pixel_size(buffer.getvalue()) == (517, 389), (fmt, options)
    rgba = picture.convert("RGBA")
    buffer = io.BytesIO()
    rgba.save(buffer, "WEBP")
    assert image_pixel_size(buffer.getvalue()) == (517, 389)
    assert image_pixel_size(b"II*\x00" + b"\x00" * 40) is None  # TIFF: unknown
    assert image_pixel_size(b"\xff\xd8\xff\xe0\x00") is None  # cut short


def jpeg_of(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    scene(*size).save(buffer, "JPEG")
    return buffer.getvalue()


def test_without_pillow_a_large_image_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = jpeg_of((300, 200)), jpeg_of((1200, 900))
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import ...` raises ImportError
    monkeypatch.setattr(media, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the once is ours, not the default filter's
        assert prepare_for_upload(ImageData(small, "image/jpeg")).data == small
        assert not caught  # a small image needs no scaling: no word
        for _ in range(3):
            assert prepare_for_upload(ImageData(large, "image/jpeg")).data == large
    assert [w.category for w in caught] == [ImageNotDownscaledWarning]
    message = str(caught[0].message)
    assert "Pillow is not installed" in message and "janus-space[images]" in message
    assert "1200x900" in message


def test_without_pillow_a_script_says_so_once_on_stderr(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_of((1600, 1200)))
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["PIL"] = None  # as if Pillow were not installed
        from janus_space import load_image
        from janus_space.media import prepare_for_upload
        for _ in range(3):
            image = prepare_for_upload(load_image({str(photo)!r}))
        print(image.size)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(photo.stat().st_size)
    lines = [line for line in done.stderr.splitlines() if "ImageNotDownscaledWarning" in line]
    assert len(lines) == 1, done.stderr
