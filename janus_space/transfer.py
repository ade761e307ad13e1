"""Image bytes over HTTP: users' image URLs in, uploads to the Space, generated images out."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from .connection import SpaceConnection
from .errors import AccessDeniedError, InvalidInputError, ProtocolError, ResultUnavailableError
from .events import GeneratedImage
from .media import ImageData, check_image_bytes

__all__ = ["download_gallery", "fetch_image_url", "file_data", "upload_image"]


def file_data(image: ImageData, path: str | None, url: str) -> dict[str, Any]:
    """The FileData dict Gradio takes as an image input (inline: ``path`` None, a data URL)."""
    return {
        "path": path,
        "url": url,
        "orig_name": image.filename,
        "size": image.size,
        "mime_type": image.mime_type,
        "is_stream": False,
        "meta": {"_type": "gradio.FileData"},
    }


async def fetch_image_url(conn: SpaceConnection, url: str, max_bytes: int) -> ImageData:
    """Fetch a user's image URL (no credentials sent), refusing more than ``max_bytes``."""
    shown = url[:200]
    try:
        async with conn.session().get(
            url, timeout=conn.request_timeout, allow_redirects=True, max_redirects=5
        ) as resp:
            if resp.status != 200:
                raise InvalidInputError(f"image URL answered HTTP {resp.status}: {shown}")
            if (resp.content_length or 0) > max_bytes:
                raise InvalidInputError(
                    f"image at {shown} is {resp.content_length:,} bytes; the limit is {max_bytes:,}"
                )
            data = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                data += chunk
                if len(data) > max_bytes:
                    raise InvalidInputError(
                        f"image at {shown} is over the {max_bytes:,}-byte download limit"
                    )
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise InvalidInputError(
            f"could not fetch the image URL {shown}: {type(exc).__name__}"
        ) from None
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or "image"
    return check_image_bytes(bytes(data), name=name, what=f"image at {shown}")


async def upload_image(conn: SpaceConnection, image: ImageData) -> str:
    """POST the image to ``/upload``; returns its server path (retried: uploads are idempotent)."""
    digest = hashlib.sha256(image.data).hexdigest()  # also a deterministic multipart boundary
    url = f"{await conn.api_url()}/upload"

    async def attempt() -> str:
        writer = aiohttp.MultipartWriter("form-data", boundary=f"janus-{digest[:32]}")
        part = writer.append(image.data, {"Content-Type": image.mime_type})
        part.set_content_disposition("form-data", name="files", filename=image.filename)
        reply = await conn.space_request(
            "POST", url, what="upload", params={"upload_id": digest[:12]}, data=writer
        )
        try:
            return str(json.loads(reply.body)[0])
        except (ValueError, IndexError, KeyError, TypeError):
            raise ProtocolError("upload: the Space's answer lists no file path") from None

    return await conn.retrying(attempt, "upload")


async def download_gallery(
    conn: SpaceConnection, output: Mapping[str, Any], max_bytes: int
) -> tuple[GeneratedImage, ...]:
    """Download every image of a finished generation at once, while the Space still serves them.

    URLs are built from each file's server path on the client's own base URL (never taken
    from the answer), so credentials only ever go to the host the user chose.
    """
    data = output.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], list):
        raise ProtocolError("the Space's generation answer holds no gallery")
    api = await conn.api_url()
    urls = []
    for item in data[0]:
        file = item.get("image") if isinstance(item, Mapping) else None
        if isinstance(item, list) and item:
            file = item[0]
        if not isinstance(file, Mapping) or not isinstance(file.get("path"), str):
            raise ProtocolError("a gallery item of the Space's answer has no file path")
        urls.append(f"{api}/file={file['path']}")
    downloads = (_download_result(conn, url, max_bytes) for url in urls)
    return tuple(await asyncio.gather(*downloads))


async def _download_result(conn: SpaceConnection, url: str, max_bytes: int) -> GeneratedImage:
    async def attempt() -> GeneratedImage:
        try:
            reply = await conn.space_request("GET", url, what="download", max_bytes=max_bytes)
        except AccessDeniedError as exc:
            raise ResultUnavailableError(
                f"the Space no longer serves a generated image (HTTP {exc.status})"
            ) from None
        except ProtocolError as exc:
            if exc.status == 404:
                raise ResultUnavailableError(
                    "the Space no longer serves a generated image (HTTP 404)"
                ) from None
            if exc.status is None and "larger than" in str(exc):
                raise ProtocolError("a generated image is larger than max_download_bytes") from None
            raise
        try:
            image = check_image_bytes(reply.body, what="generated image")
        except InvalidInputError as exc:
            raise ProtocolError(f"the Space served a broken image: {exc}") from None
        return GeneratedImage(data=image.data, mime_type=image.mime_type, url=url)

    return await conn.retrying(attempt, "download")
