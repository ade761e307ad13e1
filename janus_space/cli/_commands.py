"""The one-shot Space commands, ``ask`` and ``imagine``, and the client settings they share.

Each command is one call on one client: status events go to the display (stderr), the result
to ``out`` (stdout), as text or, with ``--json``, as one JSON object. Errors are raised as
``janus_space`` errors and turned into exit codes by ``janus_space.cli.main``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, TextIO

from janus_space import (
    GenerationResult,
    ImageInput,
    InvalidInputError,
    JanusClient,
    Message,
    UnderstandingResult,
    load_image,
)
from janus_space.params import check_range, check_seed, check_text, check_unit

from ._display import StatusDisplay
from ._parser import Settings

__all__ = [
    "ask",
    "image_label",
    "image_source",
    "imagine",
    "make_client",
    "save_images",
    "understanding_params",
    "write_json",
]

# The Space's own UI defaults, used when an option is not given.
UNDERSTAND_SEED, UNDERSTAND_TOP_P, UNDERSTAND_TEMPERATURE = 42, 0.95, 0.1
GENERATE_SEED, GENERATE_TEMPERATURE = 12345, 1.0
_EXTENSIONS = {
    "image/webp": ".webp",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
}


def make_client(settings: Settings) -> JanusClient:
    """A client for the configured Space; it reads ``HF_TOKEN`` itself and never shows it."""
    return JanusClient(
        settings.space,
        base_url=settings.base_url,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        extra_headers=dict(settings.headers) or None,
    )


def understanding_params(settings: Settings) -> dict[str, Any]:
    """Seed, top_p and temperature of a question, the Space's defaults filling the gaps.

    Checked here with the client's own rules, so a bad value fails before anything is shown
    or sent (and before a chat session starts).
    """
    return {
        "seed": check_seed(UNDERSTAND_SEED if settings.seed is None else settings.seed),
        "top_p": check_unit(
            UNDERSTAND_TOP_P if settings.top_p is None else settings.top_p, "top_p"
        ),
        "temperature": check_unit(
            UNDERSTAND_TEMPERATURE if settings.temperature is None else settings.temperature,
            "temperature",
        ),
    }


def image_source(text: str) -> ImageInput:
    """An ``--image`` value as the client takes it; local files are checked right away.

    URLs and ``data:`` URIs stay strings (the client fetches or decodes them); anything else
    is a file path, read and validated now so a typo fails before any request is made.
    """
    value = text.strip()
    if value.lower().startswith(("http://", "https://", "data:")):
        return value
    path = Path(value).expanduser()
    load_image(path)  # raises InvalidInputError: not found, not an image, too large
    return path


def image_label(source: ImageInput) -> str:
    """A short name for an image source in notes (a URL's or path's last part)."""
    if isinstance(source, Path):
        return source.name
    if isinstance(source, str):
        if source.lower().startswith("data:"):
            return "data: URI"
        return source.rstrip("/").rsplit("/", 1)[-1][:60] or source[:60]
    return type(source).__name__


def write_json(out: TextIO, record: dict[str, Any]) -> None:
    """One JSON object on one line, flushed (``--json`` output)."""
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


async def ask(
    settings: Settings,
    question: str,
    images: Sequence[str],
    display: StatusDisplay,
    out: TextIO,
) -> int:
    """``janus-space ask``: one question (and at most one image actually sent), one answer."""
    check_text(question, "question")
    params = understanding_params(settings)
    sources = [image_source(text) for text in images]
    if len(sources) > 1:
        display.note(
            f"janus-space: note: the Space answers about one image per question; sending the "
            f"last --image ({image_label(sources[-1])}) and ignoring {len(sources) - 1}"
        )
    message = Message("user", question, images=tuple(sources))
    result: UnderstandingResult | None = None
    async with make_client(settings) as client:
        with display.showing("asking the Space"):
            stream = client.stream_chat([message], **params)
            async with aclosing(stream):  # Ctrl-C or an error cancels the job on the Space
                async for item in stream:
                    if isinstance(item, UnderstandingResult):
                        result = item
                    else:
                        display.event(item)
    assert result is not None  # stream_chat ends with its result or raises
    if settings.json:
        write_json(
            out,
            {
                "answer": result.text,
                "image": image_label(sources[-1]) if sources else None,
                "placeholder_image": not sources,
                "dropped_images": max(0, len(sources) - 1),
                "seed": result.seed,
                "top_p": result.top_p,
                "temperature": result.temperature,
                "duration": result.duration,
            },
        )
    else:
        out.write(result.text.rstrip("\n") + "\n")
        out.flush()
    return 0


def _slug(prompt: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "image"


def _writable_dir(folder: Path) -> Path:
    """Create ``folder`` if needed and check it can be written, before spending quota."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create the output directory {folder}: {exc.strerror}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInputError(f"the output directory {folder} is not writable")
    return folder


def save_images(result: GenerationResult, folder: Path, prompt: str) -> list[Path]:
    """Write each image to ``<slug>-seed<seed>-<n>.<ext>``, never overwriting a file."""
    paths = []
    stem = f"{_slug(prompt)}-seed{result.seed}"
    for number, image in enumerate(result.images, start=1):
        extension = _EXTENSIONS.get(image.mime_type, ".img")
        attempt = 1
        while True:
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = folder / f"{stem}-{number}{suffix}{extension}"
            try:
                with path.open("xb") as handle:
                    handle.write(image.data)
                break
            except FileExistsError:
                attempt += 1
            except OSError as exc:
                raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
        paths.append(path)
    return paths


async def imagine(
    settings: Settings,
    prompt: str,
    output_dir: str,
    guidance: float,
    display: StatusDisplay,
    out: TextIO,
) -> int:
    """``janus-space imagine``: five images saved as files, their paths printed."""
    if settings.top_p is not None:
        raise InvalidInputError("--top-p applies to questions (ask, chat), not to imagine")
    check_text(prompt, "prompt")
    seed = check_seed(GENERATE_SEED if settings.seed is None else settings.seed)
    guidance = check_range(guidance, "guidance", 1.0, 10.0)
    temperature = check_unit(
        GENERATE_TEMPERATURE if settings.temperature is None else settings.temperature,
        "temperature",
    )
    folder = _writable_dir(Path(output_dir).expanduser())
    result: GenerationResult | None = None
    async with make_client(settings) as client:
        with display.showing("asking the Space to draw"):
            stream = client.stream_generate(
                prompt, seed=seed, guidance=guidance, temperature=temperature
            )
            async with aclosing(stream):
                async for item in stream:
                    if isinstance(item, GenerationResult):
                        result = item
                    else:
                        display.event(item)
    assert result is not None
    paths = save_images(result, folder, prompt)
    if settings.json:
        write_json(
            out,
            {
                "prompt": prompt,
                "images": [
                    {"path": str(path), "mime_type": image.mime_type, "bytes": image.size}
                    for path, image in zip(paths, result.images, strict=True)
                ],
                "seed": result.seed,
                "guidance": result.guidance,
                "temperature": result.temperature,
                "duration": result.duration,
            },
        )
    else:
        out.write("".join(f"{path}\n" for path in paths))
        out.flush()
    return 0
