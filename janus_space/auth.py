"""HF token and ZeroGPU token handling: where tokens come from, which hosts may see them.

The HF token goes only to Hugging Face hosts (the Hub and ``*.hf.space``) unless the user
explicitly allows a custom host. The ZeroGPU token is fetched from the Hub with the HF token
and cached until shortly before it expires.
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import urlsplit

__all__ = ["Secret", "is_hf_host", "jwt_expiry", "resolve_hf_token", "space_host_url"]

_HF_SUFFIXES = (".hf.space", ".huggingface.co")


class Secret:
    """A string that never shows itself in repr, str or logs; ``get()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret's value, for building a request header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret values are not picklable")


def resolve_hf_token(token: str | Secret | None) -> Secret | None:
    """The token given, else the one Hugging Face tools find, else None (anonymous).

    Discovery is ``huggingface_hub.get_token()``'s (``HF_TOKEN``, the ``hf auth login`` file,
    …) and honours ``HF_HUB_DISABLE_IMPLICIT_TOKEN``; see ``janus_space.hub.discover_token``.
    """
    if isinstance(token, Secret):
        return token if token else None
    if token is None:
        from .hub import discover_token  # here: hub imports this module

        return discover_token()
    if not isinstance(token, str):
        raise TypeError("hf_token must be a string")
    return Secret(token.strip()) if token and token.strip() else None


def is_hf_host(url: str) -> bool:
    """True when ``url`` is served by Hugging Face (the Hub or a Space's own host) over HTTPS."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return False
    return host == "huggingface.co" or host.endswith(_HF_SUFFIXES)


def space_host_url(space_id: str) -> str:
    """``owner/name`` → the Space's app host, e.g. ``https://deepseek-ai-janus-pro-7b.hf.space``."""
    if space_id.count("/") != 1 or not all(space_id.split("/")):
        raise ValueError(f"a Space id looks like 'owner/name', not {space_id!r}")
    subdomain = re.sub(r"[^a-z0-9]+", "-", space_id.lower()).strip("-")
    return f"https://{subdomain}.hf.space"


def jwt_expiry(token: str, default_ttl: float = 300.0) -> float:
    """The ``exp`` claim of a JWT as a ``time.time()`` value; now + ``default_ttl`` if unknown."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + default_ttl
