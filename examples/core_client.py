"""The core client on its own: ask about an image, then draw pictures (no framework).

Run against the public Space (uses its ZeroGPU quota; set HF_TOKEN to use your account's):
    python examples/core_client.py [IMAGE]
or offline against the local replica:
    janus-space replica --background
    JANUS_BASE_URL=http://127.0.0.1:7860 python examples/core_client.py

Without an IMAGE argument a small picture is drawn here, so the example needs no files.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from janus_space import JanusClient, Progress, Queued, UnderstandingResult


def sample_picture() -> bytes:
    """A red circle on white, as PNG bytes."""
    picture = Image.new("RGB", (160, 120), "white")
    ImageDraw.Draw(picture).ellipse((40, 20, 120, 100), fill="red")
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


async def main() -> None:
    image: bytes | str = sys.argv[1] if len(sys.argv) > 1 else sample_picture()
    # base_url=None means the public Space deepseek-ai/Janus-Pro-7B.
    async with JanusClient(base_url=os.environ.get("JANUS_BASE_URL")) as client:
        # 1. Understanding, streamed: status events first, the result last.
        async for item in client.stream_understand("What shape and colour do you see?", image):
            if isinstance(item, Queued):
                print(f"  queued at position {item.rank}", file=sys.stderr)
            elif isinstance(item, Progress):
                print(f"  progress: {item.desc} {item.index}/{item.length}", file=sys.stderr)
            elif isinstance(item, UnderstandingResult):
                print("answer:", item.text)

        # 2. Generation: the Space draws five images; save them.
        result = await client.generate("a red circle on white paper, minimal", seed=7)
        folder = Path(tempfile.mkdtemp(prefix="janus-core-"))
        for number, picture in enumerate(result.images, start=1):
            path = folder / f"circle-{number}.webp"
            path.write_bytes(picture.data)
            print("saved:", path)


if __name__ == "__main__":
    asyncio.run(main())
