"""The one-shot commands, ``ask`` and ``imagine``, and the backend they run on.

Each command is one call on one ``JanusBackend``: a Space client (the default, ``--space``,
``--base-url`` or one ``--endpoint``), a ``JanusPool`` (two or more ``--endpoint``) or a
``LocalJanus`` (``--local MODEL``). Status events go to the display (stderr), the result to
``out`` (stdout), as text or, with ``--json``, as one JSON object. Errors are raised as
``janus_space`` errors and turned into exit codes by ``janus_space.cli.main``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from janus_space import (
    Failover,
    GenerationResult,
    ImageInput,
    InvalidInputError,
    JanusBackend,
    JanusClient,
    Log,
    Message,
    TextDelta,
    UnderstandingResult,
    load_image,
)
from janus_space.backend import check_num_images
from janus_space.errors import JanusError
from janus_space.params import check_range, check_seed, check_text, check_unit

from ._display import StatusDisplay
from ._parser import Settings

__all__ = [
    "MissingExtraError",
    "ask",
    "backend_label",
    "closing_stream",
    "image_label",
    "image_source",
    "imagine",
    "make_backend",
    "make_client",
    "save_images",
    "understanding_params",
    "write_json",
]

T = TypeVar("T")

# The Space's own UI defaults, used when an option is not given.
UNDERSTAND_SEED, UNDERSTAND_TOP_P, UNDERSTAND_TEMPERATURE = 42, 0.95, 0.1
GENERATE_SEED, GENERATE_TEMPERATURE = 12345, 1.0
_EXTENSIONS = {
    "image/webp": ".webp",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
}


class MissingExtraError(JanusError, ImportError):
    """An optional part of janus-space is not installed; the message names the extra."""


@asynccontextmanager
async def closing_stream(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a backend's stream however the block ends, so an abandoned job is cancelled."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def _space_settings(settings: Settings) -> dict[str, Any]:
    """What every Space client of this run is made with (the token is found by the client)."""
    shared: dict[str, Any] = {
        "timeout": settings.timeout,
        "max_retries": settings.max_retries,
        "hub_url": settings.hub_url,
    }
    if settings.headers:
        shared["extra_headers"] = dict(settings.headers)
    if settings.proxy is not None:
        shared["proxy"] = settings.proxy
    return shared


def make_client(settings: Settings, endpoint: str | None = None) -> JanusClient:
    """A client for one Space: ``endpoint`` (a Space id or a base URL), else the settings'."""
    shared = _space_settings(settings)
    if endpoint is None:
        return JanusClient(settings.space, base_url=settings.base_url, **shared)
    if endpoint.lower().startswith(("http://", "https://")):
        return JanusClient(base_url=endpoint, **shared)
    return JanusClient(endpoint, **shared)


def make_backend(settings: Settings) -> JanusBackend:
    """The backend the options ask for: local model, pool, one endpoint, or the Space."""
    if settings.local is not None:
        try:
            from janus_space.local import LocalJanus
        except ImportError as exc:
            raise MissingExtraError(
                f"--local needs the local extra ({exc.name or exc}): "
                'pip install "janus-space[local]"'
            ) from None
        backend: JanusBackend = LocalJanus(settings.local)
        return backend
    if len(settings.endpoints) >= 2:
        from janus_space.pool import JanusPool

        pool: JanusBackend = JanusPool(list(settings.endpoints), **_space_settings(settings))
        return pool
    if settings.endpoints:
        return make_client(settings, settings.endpoints[0])
    return make_client(settings)


def backend_label(settings: Settings) -> str:
    """What the progress line says is being asked: the Space, the pool, the local model."""
    if settings.local is not None:
        return "the local model"
    if len(settings.endpoints) >= 2:
        return f"the pool of {len(settings.endpoints)} endpoints"
    return "the Space"


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
    """``janus-space ask``: one question about the images the backend can see, one answer.

    A backend that streams tokens (``--local``) prints the answer as it comes, unless
    ``--json`` asks for one object at the end.
    """
    check_text(question, "question")
    params = understanding_params(settings)
    sources = [image_source(text) for text in images]
    result: UnderstandingResult | None = None
    streamed = False
    async with aclosing(make_backend(settings)) as backend:
        limit = backend.capabilities.images_per_call
        if limit is not None and len(sources) > limit:
            display.note(
                f"janus-space: note: {backend_label(settings)} answers about {limit} image(s) "
                f"per question; sending the last --image ({image_label(sources[-1])}) and "
                f"ignoring {len(sources) - limit}"
            )
        message = Message("user", question, images=tuple(sources))
        with display.showing(f"asking {backend_label(settings)}"):
            stream = backend.stream_chat([message], **params)
            async with closing_stream(stream):  # Ctrl-C or an error cancels the job
                async for item in stream:
                    if isinstance(item, UnderstandingResult):
                        result = item
                    elif isinstance(item, TextDelta):
                        if not settings.json and item.text:
                            if not streamed:
                                display.stop()
                            streamed = True
                            out.write(item.text)
                            out.flush()
                    elif not streamed or isinstance(item, (Log, Failover)):
                        display.event(item)  # no status line over an answer being printed
    assert result is not None  # stream_chat ends with its result or raises
    sent = len(sources) if limit is None else min(len(sources), limit)
    if settings.json:
        write_json(
            out,
            {
                "answer": result.text,
                "image": image_label(sources[-1]) if sources else None,
                "images_sent": sent,
                "placeholder_image": not sources,
                "dropped_images": len(sources) - sent,
                "seed": result.seed,
                "top_p": result.top_p,
                "temperature": result.temperature,
                "duration": result.duration,
                "endpoint": result.endpoint,
            },
        )
    elif streamed:
        out.write("\n")
        out.flush()
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
    num_images: int | None = None,
) -> int:
    """``janus-space imagine``: the images saved as files, their paths printed."""
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
    async with aclosing(make_backend(settings)) as backend:
        check_num_images(num_images, backend.capabilities)  # before anything is shown or sent
        with display.showing(f"asking {backend_label(settings)} to draw"):
            stream = backend.stream_generate(
                prompt,
                seed=seed,
                guidance=guidance,
                temperature=temperature,
                num_images=num_images,
            )
            async with closing_stream(stream):
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
                "endpoint": result.endpoint,
            },
        )
    else:
        out.write("".join(f"{path}\n" for path in paths))
        out.flush()
    return 0
