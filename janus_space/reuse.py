"""Spend no quota twice: identical calls in flight share one job; an opt-in cache of results.

Janus-Pro is deterministic for a given seed, so two calls with the same function, the same
prepared image bytes, the same text and the same parameters give the same answer — and every
job that reaches the Space reserves about 120 s of the caller's ZeroGPU quota. ``CallReuse``
makes such calls cost one job at most:

* a call identical to one in flight joins it: the job runs once, its status events go to
  every sharer, and it is abandoned (its stream closed, so the Space may drop it) only when
  every sharer has left;
* with a cache (``MemoryCache`` or ``SQLiteCache``), a call identical to one that completed
  returns the stored result without a request to the Space. Errors are never stored.

The key (``call_key``) names the endpoint, the function, a SHA-256 of the prepared image bytes
and the parameters; it carries no secret, so a cache file holds results and hashes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import struct
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    cast,
    runtime_checkable,
)

from .errors import InvalidInputError, JanusWarning, ProtocolError
from .events import (
    GeneratedImage,
    GenerationResult,
    Progress,
    Queued,
    Started,
    TextDelta,
    UnderstandingResult,
)

if TYPE_CHECKING:
    import sqlite3

    from .media import ImageData

__all__ = [
    "CacheSpec",
    "CachedResult",
    "CallReuse",
    "MemoryCache",
    "ResultCache",
    "ReuseStats",
    "SQLiteCache",
    "call_key",
    "decode_result",
    "encode_result",
    "resolve_cache",
]

CachedResult = UnderstandingResult | GenerationResult
"""What a cache stores: a completed call's result (an answer's text before ``stop`` cuts it)."""
R = TypeVar("R", UnderstandingResult, GenerationResult)
T = TypeVar("T")
KEY_VERSION = 1
"""Part of every key: bump it when what a key means changes, so old cache entries miss."""
_MAGIC = b"JRC1"
_LENGTH = struct.Struct(">I")


# --- Keys --------------------------------------------------------------------------------------


def call_key(
    endpoint: str,
    function: str,
    *,
    image: ImageData | None = None,
    **params: str | int | float | None,
) -> str:
    """The identity of one call: SHA-256 over endpoint, function, image digest and parameters.

    ``image`` is the image as sent (after downscaling), so two sources of the same picture share
    a key; only its bytes are hashed, nothing is re-encoded. Floats are keyed by their exact
    value (``0.1`` and ``0.10`` are one key; ``1`` and ``1.0`` are not: pass what is sent).
    """
    for name, value in params.items():
        if value is not None and not isinstance(value, (str, int, float)):
            raise TypeError(f"call_key: parameter {name} is a {type(value).__name__}")
    document = {
        "v": KEY_VERSION,
        "endpoint": endpoint.rstrip("/"),
        "fn": function,
        "image": None
        if image is None
        else [image.mime_type, hashlib.sha256(image.data).hexdigest()],
        "params": params,
    }
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Storing results as bytes ------------------------------------------------------------------


def encode_result(result: CachedResult) -> bytes:
    """A result as bytes: a JSON header, then each generated image's bytes (no pickle)."""
    blobs: list[bytes] = []
    header: dict[str, Any]
    if isinstance(result, UnderstandingResult):
        header = {
            "kind": "understanding",
            "text": result.text,
            "seed": result.seed,
            "top_p": result.top_p,
            "temperature": result.temperature,
        }
    else:
        blobs = [image.data for image in result.images]
        header = {
            "kind": "generation",
            "seed": result.seed,
            "guidance": result.guidance,
            "temperature": result.temperature,
            "images": [
                {"mime_type": image.mime_type, "url": image.url, "size": image.size}
                for image in result.images
            ],
        }
    header["duration"] = result.duration
    header["endpoint"] = result.endpoint
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    return b"".join([_MAGIC, _LENGTH.pack(len(head)), head, *blobs])


def _field(header: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = header.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"cached result: field {name} is malformed")
    return value


def _optional(header: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    return None if header.get(name) is None else _field(header, name, kind)


def decode_result(data: bytes) -> CachedResult:
    """Inverse of :func:`encode_result`; raises ValueError for anything it did not write."""
    if data[:4] != _MAGIC or len(data) < 8:
        raise ValueError("cached result: unknown format")
    (size,) = _LENGTH.unpack_from(data, 4)
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("cached result: malformed header") from None
    if not isinstance(header, dict):
        raise ValueError("cached result: malformed header")
    number = (int, float)
    duration = _optional(header, "duration", number)
    endpoint = _optional(header, "endpoint", str)
    if header.get("kind") == "understanding":
        if len(data) != 8 + size:
            raise ValueError("cached result: trailing bytes")
        return UnderstandingResult(
            text=_field(header, "text", str),
            seed=_field(header, "seed", int),
            top_p=float(_field(header, "top_p", number)),
            temperature=float(_field(header, "temperature", number)),
            duration=None if duration is None else float(duration),
            endpoint=endpoint,
        )
    if header.get("kind") != "generation":
        raise ValueError("cached result: unknown kind")
    images = []
    offset = 8 + size
    for entry in _field(header, "images", list):
        if not isinstance(entry, dict):
            raise ValueError("cached result: malformed image entry")
        length = _field(entry, "size", int)
        blob = data[offset : offset + length]
        if length < 0 or len(blob) != length:
            raise ValueError("cached result: truncated image")
        offset += length
        images.append(
            GeneratedImage(
                data=blob, mime_type=_field(entry, "mime_type", str), url=_field(entry, "url", str)
            )
        )
    if offset != len(data):
        raise ValueError("cached result: trailing bytes")
    return GenerationResult(
        images=tuple(images),
        seed=_field(header, "seed", int),
        guidance=float(_field(header, "guidance", number)),
        temperature=float(_field(header, "temperature", number)),
        duration=None if duration is None else float(duration),
        endpoint=endpoint,
    )


# --- Caches ------------------------------------------------------------------------------------


@runtime_checkable
class ResultCache(Protocol):
    """Where completed results are kept, keyed by :func:`call_key`; safe across loops and threads.

    ``get`` answers None for a miss; either method may raise (the caller then goes without the
    cache for that call and warns).
    """

    async def get(self, key: str) -> CachedResult | None:
        """The stored result for ``key``, or None."""
        ...

    async def put(self, key: str, result: CachedResult) -> None:
        """Store ``result`` under ``key`` (replacing any older one)."""
        ...


def _check_max_entries(value: Any, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "None or a positive integer" if optional else "a positive integer"
        raise InvalidInputError(f"max_entries must be {allowed}, not {value!r}")
    return value


class MemoryCache:
    """Results in this process's memory, the least recently used dropped beyond ``max_entries``.

    One instance may serve several clients, event loops and threads (a lock guards it). A
    generation result holds five images (~0.1-1 MB): size ``max_entries`` to match.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = cast(int, _check_max_entries(max_entries, optional=False))
        self._entries: OrderedDict[str, CachedResult] = OrderedDict()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, entries={len(self)})"

    def __len__(self) -> int:
        """How many results are stored."""
        with self._lock:
            return len(self._entries)

    async def get(self, key: str) -> CachedResult | None:
        """The stored result, which becomes the most recently used; None for a miss."""
        with self._lock:
            result = self._entries.get(key)
            if result is not None:
                self._entries.move_to_end(key)
            return result

    async def put(self, key: str, result: CachedResult) -> None:
        """Store the result (results are frozen: the object itself is kept)."""
        if not isinstance(result, (UnderstandingResult, GenerationResult)):
            raise TypeError(f"MemoryCache stores results, not {type(result).__name__}")
        with self._lock:
            self._entries[key] = result
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every stored result."""
        with self._lock:
            self._entries.clear()


class SQLiteCache:
    """Results in an SQLite file (stdlib ``sqlite3``), so they survive the process.

    Every operation opens its own short connection in a worker thread, so the cache is safe
    across event loops, threads and processes, and never blocks an event loop. The file (and its
    folder) is made on first use. With ``max_entries``, the oldest stored results are dropped.
    Values are a JSON header and image bytes (never pickle: loading the file runs no code).
    """

    TABLE = "janus_results"

    def __init__(self, path: str | os.PathLike[str], *, max_entries: int | None = None) -> None:
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise InvalidInputError(f"SQLiteCache needs a file path, not {type(path).__name__}")
        text = os.fspath(path)
        if not text.strip() or text == ":memory:" or text.startswith("file:"):
            raise InvalidInputError(
                f"SQLiteCache needs a file path, not {text!r} (for memory use MemoryCache())"
            )
        self.path = Path(text).expanduser()
        self.max_entries = _check_max_entries(max_entries, optional=True)
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r}, max_entries={self.max_entries})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection for one operation, in a transaction, always closed."""
        import sqlite3

        with self._lock:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            with connection:
                if not self._ready:
                    connection.execute(
                        f"CREATE TABLE IF NOT EXISTS {self.TABLE} "
                        "(key TEXT PRIMARY KEY, stored REAL NOT NULL, value BLOB NOT NULL)"
                    )
                    self._ready = True
                yield connection
        finally:
            connection.close()

    def _get(self, key: str) -> CachedResult | None:
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT value FROM {self.TABLE} WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            try:
                return decode_result(bytes(row[0]))
            except (ValueError, struct.error, TypeError):
                connection.execute(f"DELETE FROM {self.TABLE} WHERE key = ?", (key,))
                warnings.warn(
                    f"dropped an unreadable entry from the result cache {str(self.path)!r}",
                    JanusWarning,
                    stacklevel=2,
                )
                return None

    def _put(self, key: str, value: bytes) -> None:
        with self._connect() as connection:
            connection.execute(
                f"INSERT OR REPLACE INTO {self.TABLE} (key, stored, value) VALUES (?, ?, ?)",
                (key, time.time(), value),
            )
            if self.max_entries is not None:
                connection.execute(
                    f"DELETE FROM {self.TABLE} WHERE key NOT IN "
                    f"(SELECT key FROM {self.TABLE} ORDER BY stored DESC LIMIT ?)",
                    (self.max_entries,),
                )

    async def get(self, key: str) -> CachedResult | None:
        """The stored result, read in a worker thread; None for a miss (or an unreadable row)."""
        return await asyncio.to_thread(self._get, key)

    async def put(self, key: str, result: CachedResult) -> None:
        """Store the result, written in a worker thread."""
        value = encode_result(result)
        await asyncio.to_thread(self._put, key, value)

    def __len__(self) -> int:
        """How many results the file holds (reads the file: not for a running event loop)."""
        with self._connect() as connection:
            return int(connection.execute(f"SELECT COUNT(*) FROM {self.TABLE}").fetchone()[0])

    def clear(self) -> None:
        """Delete every stored result (the file stays)."""
        with self._connect() as connection:
            connection.execute(f"DELETE FROM {self.TABLE}")


CacheSpec = Literal["memory"] | ResultCache | None
"""What ``cache=`` accepts: None (no cache), ``"memory"``, or a cache object."""


def resolve_cache(cache: object) -> ResultCache | None:
    """``cache=`` → the cache object (``"memory"`` → a new ``MemoryCache()``); bad values raise."""
    if cache is None:
        return None
    if cache == "memory":
        return MemoryCache()
    if isinstance(cache, (str, bytes, os.PathLike)):
        raise InvalidInputError(
            f"cache must be None, 'memory' or a cache object, not {cache!r}; "
            "for a file use cache=SQLiteCache(path)"
        )
    if isinstance(cache, ResultCache):
        return cache
    raise InvalidInputError(
        "cache must be None, 'memory', MemoryCache(...), SQLiteCache(path) or an object with "
        f"async get(key) and put(key, result), not {type(cache).__name__}"
    )


# --- Sharing calls in flight -------------------------------------------------------------------


@dataclass
class ReuseStats:
    """Counters of one ``CallReuse``: calls asked for, jobs started, calls that joined, hits."""

    calls: int = 0
    jobs: int = 0
    shared: int = 0
    cache_hits: int = 0


@dataclass(frozen=True)
class _Outcome:
    """How a shared call ended: its result, or the exception every sharer raises."""

    result: object = None
    error: BaseException | None = None


class _Flight(Generic[R]):
    """One job in flight and the inboxes of the calls sharing it."""

    def __init__(self) -> None:
        self.inboxes: list[asyncio.Queue[object]] = []
        self.latest: dict[type, object] = {}  # the newest Queued / Started / Progress
        self.deltas: list[object] = []  # streamed text so far, replayed to late sharers
        self.outcome: _Outcome | None = None
        self.driver: asyncio.Task[None] | None = None
        self.forget: Callable[[], None] = lambda: None

    def subscribe(self) -> asyncio.Queue[object]:
        """A new sharer's inbox, primed with where the job is (or how it ended)."""
        inbox: asyncio.Queue[object] = asyncio.Queue()
        if self.outcome is not None:
            inbox.put_nowait(self.outcome)
            return inbox
        for event in (*self.latest.values(), *self.deltas):
            inbox.put_nowait(event)
        self.inboxes.append(inbox)
        return inbox

    def publish(self, event: object) -> None:
        """Send a status event to every sharer, remembering what a late sharer should see."""
        if isinstance(event, TextDelta):
            self.deltas.append(event)
        elif isinstance(event, (Queued, Started, Progress)):
            if isinstance(event, Started):
                self.latest.pop(Queued, None)
            self.latest[type(event)] = event
        for inbox in self.inboxes:
            inbox.put_nowait(event)

    def finish(self, outcome: _Outcome) -> None:
        """Hand the result (or error) to every sharer; later sharers get it at once."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        for inbox in self.inboxes:
            inbox.put_nowait(outcome)
        self.inboxes.clear()

    def leave(self, inbox: asyncio.Queue[object]) -> bool:
        """A sharer left; True when it was the last while the job still runs (abandon it)."""
        with contextlib.suppress(ValueError):
            self.inboxes.remove(inbox)
        if self.outcome is not None or self.inboxes:
            return False
        return self.driver is not None and not self.driver.done()


class CallReuse:
    """Identical calls share one job while it runs; completed results come from ``cache``."""

    def __init__(self, cache: ResultCache | None = None) -> None:
        self.cache = cache
        self.stats = ReuseStats()
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, _Flight[Any]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def in_flight(self) -> int:
        """How many distinct jobs run through this object on the running loop."""
        with self._lock:
            return len(self._flights.get(asyncio.get_running_loop(), {}))

    async def stream(
        self,
        key: str,
        start: Callable[[], AsyncGenerator[T, None]],
        result_type: type[R],
    ) -> AsyncGenerator[T, None]:
        """The call's items: from a job shared with identical calls, or from the cache.

        ``start()`` makes the real call's stream (status events, then one ``result_type``);
        it runs in a task of its own, closed when every sharer has left before the result.
        A cache hit yields the result alone.
        """
        flight = self._join(key, start, result_type)
        inbox = flight.subscribe()
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, _Outcome):
                    if item.error is not None:
                        raise item.error
                    yield cast(T, item.result)
                    return
                yield cast(T, item)
        finally:
            if flight.leave(inbox):
                await self._abandon(flight)

    def _join(
        self, key: str, start: Callable[[], AsyncGenerator[Any, None]], result_type: type[R]
    ) -> _Flight[R]:
        """The flight of ``key`` on this loop: joined if running, else started (synchronously,
        so an identical call arriving while the cache is read joins it too)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self.stats.calls += 1
            flights = self._flights.setdefault(loop, {})
            existing = flights.get(key)
            if existing is not None:
                self.stats.shared += 1
                return cast(_Flight[R], existing)
            flight: _Flight[R] = _Flight()
            flights[key] = flight

        def forget() -> None:
            with self._lock:
                if flights.get(key) is flight:
                    del flights[key]

        flight.forget = forget
        flight.driver = loop.create_task(
            self._drive(flight, key, start, result_type), name=f"janus-shared-{key[:12]}"
        )
        return flight

    async def _abandon(self, flight: _Flight[Any]) -> None:
        """Every sharer left: a new identical call starts afresh; the job's stream is closed."""
        flight.forget()
        driver = flight.driver
        if driver is not None and not driver.done():
            driver.cancel()
            await asyncio.wait({driver})

    async def _drive(
        self,
        flight: _Flight[R],
        key: str,
        start: Callable[[], AsyncGenerator[Any, None]],
        result_type: type[R],
    ) -> None:
        """Run one shared call: the cache first, else the job; hand its end to every sharer."""
        try:
            hit = await self._lookup(key, result_type)
            if hit is not None:
                with self._lock:
                    self.stats.cache_hits += 1
                flight.finish(_Outcome(result=hit))
                return
            with self._lock:
                self.stats.jobs += 1
            result: R | None = None
            async with contextlib.aclosing(start()) as items:
                async for item in items:
                    if isinstance(item, result_type):
                        result = item
                        break
                    flight.publish(item)
            if result is None:
                raise ProtocolError("the call ended without a result")
            flight.finish(_Outcome(result=result))
            await self._store(key, result)
        except BaseException as exc:
            flight.finish(_Outcome(error=exc))
            if not isinstance(exc, Exception):
                raise
        finally:
            flight.forget()

    async def _lookup(self, key: str, result_type: type[R]) -> R | None:
        if self.cache is None:
            return None
        try:
            hit = await self.cache.get(key)
        except Exception as exc:
            _warn_cache("read", self.cache, exc)
            return None
        return hit if isinstance(hit, result_type) else None

    async def _store(self, key: str, result: CachedResult) -> None:
        if self.cache is None:
            return
        try:
            await self.cache.put(key, result)
        except Exception as exc:
            _warn_cache("write", self.cache, exc)


def _warn_cache(action: str, cache: ResultCache, exc: Exception) -> None:
    """A broken cache costs quota, not the call: say so and go on without it."""
    warnings.warn(
        f"could not {action} the result cache {cache!r} ({type(exc).__name__}: {exc}); "
        "the call goes on without it",
        JanusWarning,
        stacklevel=3,
    )
