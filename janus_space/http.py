"""HTTP for the Space and the Hub: one request method, and every status or failure as a typed error.

``request`` and ``open_response`` are the only places that call aiohttp: they own headers,
timeouts, redirects (never followed: credentials must not travel to another host) and the
mapping of statuses and transport failures to ``janus_space.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import (
    AccessDeniedError,
    JanusConnectionError,
    JanusError,
    JanusTimeoutError,
    ProtocolError,
    QueueFullError,
    RateLimitedError,
    SpaceUnavailableError,
    scrub_secrets,
)

__all__ = [
    "Reply",
    "error_for_status",
    "open_response",
    "request",
    "retry_after_seconds",
    "translate_transport_error",
]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header as seconds (number or HTTP date); None when absent."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _detail(body: bytes) -> str:
    text = scrub_secrets(body[:2000].decode("utf-8", errors="replace").strip())
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:300] if text else ""
    if isinstance(decoded, Mapping) and "detail" in decoded:
        return str(decoded["detail"])[:300]
    if isinstance(decoded, Mapping) and "error" in decoded:
        return str(decoded["error"])[:300]
    return text[:300]


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    what: str,
    *,
    token_sent: bool | None = None,
) -> JanusError:
    """The typed error for a non-2xx answer to ``what`` (e.g. "join", "config").

    ``token_sent`` says whether the request carried an HF token, for the access-denied message.
    """
    detail = _detail(body)
    is_html = "html" in headers.get("Content-Type", "").lower() or body.lstrip()[:1] == b"<"
    if status == 429:
        return RateLimitedError(
            f"{what}: rate limited by the Space (HTTP 429)",
            retry_after=retry_after_seconds(headers),
        )
    if status == 503 and "queue is full" in detail.lower():
        return QueueFullError(f"{what}: the Space's queue is full ({detail})")
    if status >= 500 or (is_html and what == "config"):
        reason = "is not serving its app (sleeping, building or broken)" if is_html else "failed"
        return SpaceUnavailableError(f"{what}: the Space {reason} (HTTP {status})", status=status)
    if status in (401, 403):
        if token_sent is None:
            sent = ""
        elif token_sent:
            sent = "; an HF token was sent: check that it can read this Space"
        else:
            sent = "; no HF token was sent: a private Space needs one (HF_TOKEN or hf auth login)"
        return AccessDeniedError(
            f"{what}: access denied (HTTP {status}){sent}", status=status, token_sent=token_sent
        )
    if what == "config" and (status == 404 or 300 <= status < 400):
        return SpaceUnavailableError(
            f"config: no Gradio app answers at this address (HTTP {status})", status=status
        )
    return ProtocolError(f"{what}: unexpected HTTP {status}: {detail}", status=status)


def translate_transport_error(exc: BaseException, what: str) -> JanusError:
    """aiohttp / asyncio exceptions → our typed errors (messages never include headers)."""
    if isinstance(exc, JanusError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return JanusTimeoutError(f"{what}: timed out")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ProtocolError(f"{what}: the connection broke off mid-response")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return JanusConnectionError(f"{what}: cannot connect to {exc.host}:{exc.port}")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return JanusConnectionError(f"{what}: the connection was closed ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return JanusConnectionError(f"{what}: {type(exc).__name__}")
    raise exc


@dataclass(frozen=True)
class Reply:
    """A read answer: status, headers and body (at most the size the caller allowed)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@contextlib.asynccontextmanager
async def open_response(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
    token_sent: bool | None = None,
    ok: tuple[int, ...] = (200,),
    **kwargs: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send one request and yield its response for streaming; other statuses raise typed errors.

    Redirects are never followed; transport failures become ``JanusError``s named by ``what``.
    """
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers or {}),
            timeout=timeout if timeout is not None else aiohttp.ClientTimeout(total=60),
            allow_redirects=False,
            **kwargs,
        ) as resp:
            if resp.status not in ok:
                body = await resp.content.read(64 * 1024)
                raise error_for_status(resp.status, resp.headers, body, what, token_sent=token_sent)
            yield resp
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise translate_transport_error(exc, what) from None


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    max_bytes: int = 16 * 1024 * 1024,
    **kwargs: Any,
) -> Reply:
    """One request whose whole answer is read (up to ``max_bytes``); see ``open_response``."""
    async with open_response(session, method, url, what=what, **kwargs) as resp:
        try:
            body = await resp.content.read(max_bytes + 1)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise translate_transport_error(exc, what) from None
        if len(body) > max_bytes:
            raise ProtocolError(f"{what}: the answer is larger than {max_bytes:,} bytes")
        return Reply(resp.status, resp.headers, body)
