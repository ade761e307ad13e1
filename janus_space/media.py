"""Images in: normalise bytes, paths, data URIs, base64 and PIL images to checked image bytes.

The type is sniffed from the bytes, never trusted from a name. With Pillow installed, images
larger than the model needs are downscaled before sending (Janus-Pro resizes every image so its
longer side is 384 pixels, so anything above that only costs upload bytes), turned upright by
their EXIF orientation, and brought to 8 bits per channel the way an image viewer shows them.
Without Pillow they are sent as given, and a large one says so once (``ImageNotDownscaledWarning``).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .errors import ImageNotDownscaledWarning, InvalidInputError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "MODEL_IMAGE_SIDE",
    "ImageData",
    "ImageInput",
    "image_pixel_size",
    "is_url",
    "load_image",
    "placeholder_image",
    "prepare_for_upload",
    "sniff_mime_type",
]

MODEL_IMAGE_SIDE = 384
MAX_IMAGE_BYTES = 20_000_000

ImageInput = Union[
    bytes, bytearray, memoryview, str, "os.PathLike[str]", "ImageData", "PILImage.Image"
]

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}\s*$")


@dataclass(frozen=True)
class ImageData:
    """Encoded image bytes whose type was sniffed from their content."""

    data: bytes = field(repr=False)
    mime_type: str
    name: str = "image"

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise InvalidInputError("ImageData.data must be bytes")

    @property
    def size(self) -> int:
        """Size of the encoded image in bytes."""
        return len(self.data)

    @property
    def filename(self) -> str:
        """A file name with the extension of the sniffed type."""
        stem = Path(self.name).stem or "image"
        return f"{stem}.{_EXTENSIONS.get(self.mime_type, 'bin')}"

    def to_base64(self) -> str:
        """The image bytes as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    def to_data_uri(self) -> str:
        """The image as a ``data:`` URI."""
        return f"data:{self.mime_type};base64,{self.to_base64()}"


def sniff_mime_type(data: bytes) -> str | None:
    """The image type of ``data`` from its magic bytes, or None when it is no supported image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM" and len(data) > 26:
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def _looks_complete(data: bytes, mime: str) -> bool:
    """Cheap structural check that catches truncated PNG/JPEG/GIF files without Pillow."""
    if mime == "image/png":
        return b"IEND" in data[-16:]
    if mime == "image/jpeg":
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    if mime == "image/gif":
        return data.rstrip(b"\x00").endswith(b";")
    if mime == "image/webp":
        return len(data) >= 12 and struct.unpack("<I", data[4:8])[0] + 8 <= len(data)
    return True


def check_image_bytes(data: bytes, *, name: str = "image", what: str = "image") -> ImageData:
    """Validate raw bytes as a supported, complete image and wrap them."""
    if not data:
        raise InvalidInputError(f"{what} is empty (0 bytes)")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInputError(
            f"{what} is {len(data):,} bytes; the limit is {MAX_IMAGE_BYTES:,} bytes"
        )
    mime = sniff_mime_type(data)
    if mime is None:
        raise InvalidInputError(
            f"{what} is not a supported image (PNG, JPEG, GIF, WebP, BMP or TIFF); "
            f"it starts with {data[:8]!r}"
        )
    if not _looks_complete(data, mime):
        raise InvalidInputError(f"{what} looks truncated: the {mime} data ends early")
    return ImageData(data, mime, name)


def is_url(value: str) -> bool:
    """True for an ``http(s)://`` URL, which only the client (with its session) can fetch."""
    return value[:8].lower().startswith(("http://", "https://"))


def _from_data_uri(value: str) -> ImageData:
    header, sep, payload = value.partition(",")
    if not sep:
        raise InvalidInputError("data URI has no ',' separating header and data")
    try:
        if header.endswith(";base64"):
            raw = base64.b64decode(payload, validate=False)
        else:
            from urllib.parse import unquote_to_bytes

            raw = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"data URI is not valid base64: {exc}") from None
    return check_image_bytes(raw, what="data URI image")


def _from_pil(image: Any) -> ImageData:
    """A PIL image as a lossless PNG, upright and in 8 bits, exactly as its file would be sent.

    ``Image.open(path)`` and ``path`` give the same picture: the EXIF orientation is applied
    and the mode converted by the same rules as ``prepare_for_upload``.
    """
    try:
        picture = _displayable(_upright(image), from_png=getattr(image, "format", None) == "PNG")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
    except InvalidInputError:
        raise
    except (OSError, ValueError) as exc:  # a closed image, an unreadable lazy file, …
        raise InvalidInputError(f"the PIL image cannot be read: {exc}") from None
    return ImageData(buffer.getvalue(), "image/png", "image.png")


def load_image(source: Any) -> ImageData:
    """Read an image from anything but a URL (see ``is_url``) into checked ``ImageData``."""
    if isinstance(source, ImageData):
        return check_image_bytes(source.data, name=source.name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return check_image_bytes(bytes(source), what="image bytes")
    if isinstance(source, os.PathLike):
        return _from_path(Path(os.fspath(source)))
    if isinstance(source, str):
        text = source.strip()
        if not text:
            raise InvalidInputError("image is an empty string")
        if is_url(text):
            raise InvalidInputError("image URLs must be fetched by the client (JanusClient)")
        if text[:5].lower() == "data:":
            return _from_data_uri(text)
        if "://" in text[:16]:
            scheme = text.split("://", 1)[0]
            raise InvalidInputError(
                f"image URL scheme {scheme!r} is not supported; use http(s), data: or a file path"
            )
        if _BASE64.match(text):
            raw = _decode_base64(text)
            if raw is not None and sniff_mime_type(raw) is not None:
                return check_image_bytes(raw, what="base64 image")
        try:
            is_file = Path(text).is_file()
        except (OSError, ValueError):
            is_file = False
        if is_file or not _BASE64.match(text):
            return _from_path(Path(text))
        raise InvalidInputError(
            "image string is neither an existing file, an http(s) URL, a data URI, "
            "nor base64 of a supported image"
        )
    if type(source).__module__.startswith("PIL.") and hasattr(source, "save"):
        return _from_pil(source)
    raise InvalidInputError(
        f"unsupported image type {type(source).__name__}: pass bytes, a path, an http(s) URL, "
        "a data URI, base64 text, ImageData or a PIL image"
    )


def _decode_base64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_path(path: Path) -> ImageData:
    shown = str(path)[:200]
    try:
        if not path.exists():
            raise InvalidInputError(f"image file not found: {shown}")
        if not path.is_file():
            raise InvalidInputError(f"image path is not a file: {shown}")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise InvalidInputError(
                f"image file {shown} is {path.stat().st_size:,} bytes; "
                f"the limit is {MAX_IMAGE_BYTES:,}"
            )
        data = path.read_bytes()
    except InvalidInputError:
        raise
    except OSError as exc:  # a name too long, no permission, …
        raise InvalidInputError(f"image path {shown!r} cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the name
        raise InvalidInputError(f"image path {shown!r} is not a valid path: {exc}") from None
    return check_image_bytes(data, name=path.name, what=f"image file {shown}")


# Modes that every receiver shows as a viewer does when sent as they are: Gradio converts
# uploads to RGB, but decodes inline data URLs with a bare ``numpy.asarray`` (a "P" image
# becomes its palette indices, "CMYK" becomes RGBA, "I;16" is whitened by ``convert``).
_PASS_THROUGH_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA"})
_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # transpose, rotate 270, transverse, rotate 90


def _orientation(image: PILImage.Image) -> int:
    """The EXIF orientation (1..8); 1 when there is none or it cannot be read, as Gradio does."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, ValueError, TypeError, SyntaxError, struct.error):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: PILImage.Image) -> PILImage.Image:
    """The image as it is displayed: its EXIF orientation applied (the image itself if none)."""
    if _orientation(image) == 1:
        return image
    from PIL import ImageOps

    return ImageOps.exif_transpose(image) or image


def _levels(image: PILImage.Image, *, from_png: bool) -> tuple[float, float]:
    """``(scale, offset)`` that map an "I" or "F" image's values to 0..255 (see _displayable)."""
    extrema = image.getextrema()  # a single band: (min, max)
    low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidInputError(f"the {image.mode!r} image has infinite values; it cannot be shown")
    if image.mode == "I" and from_png:
        return 1 / 257, 0.0  # 16-bit grey PNG, as older Pillow loads it
    if image.mode == "F" and low >= 0 and high <= 1:
        return 255.0, 0.0
    if low >= 0 and high <= 255:
        return 1.0, 0.0
    if low >= 0 and high <= 65535:
        return 1 / 257, 0.0
    if high > low:
        return 255 / (high - low), -low * 255 / (high - low)
    return 0.0, min(max(low, 0), 255)


def _displayable(image: PILImage.Image, *, from_png: bool = False) -> PILImage.Image:
    """``image`` in L, LA, RGB or RGBA, with the brightness an image viewer would show.

    Rules: "1" → L; "P"/"PA" → RGB, or RGBA when they carry transparency; a ``transparency``
    colour key on L/RGB becomes alpha; alpha that is opaque everywhere is dropped (so the image
    can go as JPEG). "I;16*" are scaled from their full range (value / 257). "I" and "F" hold
    no bit depth, so it is guessed from the data: "I" from a PNG is 16-bit (/257); "F" within
    0..1 is normalised (x 255); values within 0..255 are taken as they are; within 0..65535 as
    16-bit (/257); anything else (negative, 32-bit) is stretched from its minimum to its
    maximum. "CMYK", "YCbCr", "LAB", "HSV" and the rest → RGB by Pillow's conversions
    (CMYK naively: an embedded ICC profile is not applied).
    """
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:
        result = image.convert(mode + "A")
    elif mode in ("L", "RGB", "LA", "RGBA"):
        result = image
    elif mode == "1":
        result = image.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        result = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("La", "RGBa"):
        result = image.convert(mode.upper())
    elif mode.startswith("I;16") or mode in ("I", "F"):
        wide = image if mode in ("I", "F") else image.convert("I")
        scale, offset = _levels(wide, from_png=from_png)
        # point() truncates; +0.5 rounds. convert("L") clips to 0..255.
        result = wide.point(lambda value: value * scale + offset + 0.5).convert("L")
    else:
        try:
            result = image.convert("RGB")
        except ValueError:
            if mode != "LAB":
                raise InvalidInputError(f"images of mode {mode!r} are not supported") from None
            from PIL import ImageCms

            transform = ImageCms.buildTransform(
                ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
            )
            converted = ImageCms.applyTransform(image, transform)  # None only when in place
            result = converted if converted is not None else image
    if result.mode in ("LA", "RGBA") and result.getchannel("A").getextrema() == (255, 255):
        result = result.convert(result.mode[:-1])
    return result


def prepare_for_upload(image: ImageData, max_side: int | None = MODEL_IMAGE_SIDE) -> ImageData:
    """Verify the image decodes, make it upright and 8-bit, and downscale it to ``max_side``.

    The EXIF orientation is applied first, so the longer *displayed* side becomes ``max_side``
    and the image is sent upright with no orientation left to honour. Modes are converted as
    ``_displayable`` says. PNG and JPEG images that need none of this (small, orientation 1, mode
    1/L/LA/RGB/RGBA) pass through byte for byte; the rest are re-encoded: JPEG when opaque, PNG
    where there is transparency. Without Pillow the image is sent as given; the first one larger
    than ``max_side`` warns (``ImageNotDownscaledWarning``, once per process).
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        _warn_not_downscaled(image, max_side)
        return image
    try:
        with Image.open(io.BytesIO(image.data)) as probe:
            probe.verify()
        opened = Image.open(io.BytesIO(image.data))
        stored = opened.size
        orientation = _orientation(opened)
        if max_side is not None and opened.format == "JPEG" and max(stored) > max_side:
            # Decode at a reduced scale (JPEG DCT scaling) that stays at least twice the target,
            # as Image.thumbnail does: a third of the time, visually the same result.
            scale = 2 * max_side / max(stored)
            opened.draft(
                "RGB", (max(1, round(stored[0] * scale)), max(1, round(stored[1] * scale)))
            )
        opened.load()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise InvalidInputError(f"image {image.name!r} cannot be decoded: {exc}") from None
    with opened:
        width, height = stored[::-1] if orientation in _SWAPS_SIDES else stored
        small = max_side is None or max(width, height) <= max_side
        if (
            small
            and image.mime_type in ("image/png", "image/jpeg")
            and orientation == 1
            and opened.mode in _PASS_THROUGH_MODES
        ):
            return image
        picture = _displayable(_upright(opened), from_png=opened.format == "PNG")
        if not small and max_side is not None:
            scale = max_side / max(width, height)
            target = (max(1, round(width * scale)), max(1, round(height * scale)))
            picture = picture.resize(target, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if picture.mode in ("LA", "RGBA"):
            picture.save(buffer, format="PNG", optimize=True)
            mime = "image/png"
        else:
            picture.save(buffer, format="JPEG", quality=90)
            mime = "image/jpeg"
    return ImageData(buffer.getvalue(), mime, image.name)


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_not_downscaled(image: ImageData, max_side: int | None) -> None:
    """Say once per process that Pillow is missing, when an image is larger than ``max_side``."""
    if max_side is None or "no-pillow" in _warned:
        return
    size = image_pixel_size(image.data)
    if size is not None and max(size) <= max_side:
        return
    with _warned_lock:
        if "no-pillow" in _warned:
            return
        _warned.add("no-pillow")
    shown = f"{size[0]}x{size[1]}" if size else "of unknown size"
    warnings.warn(
        f"Pillow is not installed, so images are sent as given, not downscaled to {max_side} px "
        f"(this one is {shown}, {image.size:,} bytes); install janus-space[images] to send "
        "only what the model needs",
        ImageNotDownscaledWarning,
        stacklevel=3,
    )


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers, not DHT/JPG/DAC


def image_pixel_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header of a PNG, JPEG, GIF, WebP or BMP, without Pillow.

    None for TIFF and for anything it cannot read (the stored size: EXIF is not applied).
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                width, height = struct.unpack("<HH", data[18:22])
            else:
                width, height = struct.unpack("<ii", data[18:26])
            return abs(int(width)), abs(int(height))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers: no length
            index += 2
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        index += 2 + struct.unpack(">H", data[index + 2 : index + 4])[0]
    return None


@lru_cache(maxsize=1)
def placeholder_image() -> ImageData:
    """A neutral mid-grey 384x384 PNG, sent for text-only questions (the Space needs an image)."""
    side = MODEL_IMAGE_SIDE
    row = b"\x00" + b"\x80" * (side * 3)
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return ImageData(png, "image/png", "placeholder.png")
