"""Test images for the benchmark: a realistic JPEG photo, a model-sized image, a placeholder.

A flat or synthetic picture compresses far better than a camera photo and would flatter any
upload figure, so the photo is made of smooth scene-like structure plus sensor-like noise,
tuned so that a 2000x1500 JPEG at quality 92 weighs about 1 MB, like a phone snapshot.
"""

from __future__ import annotations

import io
import struct
import zlib

__all__ = ["model_sized_image", "noisy_photo", "placeholder_png"]


def placeholder_png(side: int = 384) -> bytes:
    """A neutral mid-grey PNG (what a text-only call must send: the Space requires an image)."""
    row = b"\x00" + b"\x80" * (side * 3)
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def noisy_photo(
    width: int = 2000, height: int = 1500, *, seed: int = 7, quality: int = 92, noise: float = 8.0
) -> bytes:
    """A photo-like JPEG: soft colour fields, hard-edged shapes, fine texture and sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    low_w, low_h = max(8, width // 8), max(8, height // 8)
    y, x = np.mgrid[0:low_h, 0:low_w].astype(np.float32)
    scene = np.stack([110 + 90 * y / low_h, 140 + 50 * x / low_w, 190 - 80 * y / low_h], axis=-1)
    for _ in range(30):  # soft objects, drawn at low resolution and scaled up (fast)
        cx, cy = rng.uniform(0, low_w), rng.uniform(0, low_h)
        radius = rng.uniform(low_w / 40, low_w / 5)
        mask = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)))
        scene += mask[..., None] * rng.uniform(-60, 60, size=3)
    base = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(base)
    for _ in range(25):  # hard edges: windows, poles, signs
        x0, y0 = rng.uniform(0, width), rng.uniform(height * 0.3, height)
        w, h = rng.uniform(20, 300), rng.uniform(20, 400)
        colour = tuple(int(v) for v in rng.integers(20, 235, 3))
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
    pixels = np.asarray(base, dtype=np.float32)
    fine = rng.normal(0, 1, size=(max(1, height // 3), max(1, width // 3), 3))
    fine_img = Image.fromarray(np.clip(128 + 30 * fine, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    pixels += (np.asarray(fine_img, dtype=np.float32) - 128) * 0.5
    pixels += rng.normal(0, noise, size=pixels.shape).astype(np.float32)  # sensor noise
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(0.5)
    )
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def model_sized_image(side: int = 384) -> bytes:
    """A small photo-like JPEG already at the model's input size (sent unchanged by everyone)."""
    return noisy_photo(side, side, seed=11, quality=90)
