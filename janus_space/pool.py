"""JanusPool: one backend over several copies of the Janus-Pro Space, with quota-aware failover."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import json
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .backend import Capabilities, check_num_images
from .client import JanusClient
from .errors import (
    AppError,
    InvalidInputError,
    JanusConnectionError,
    JanusError,
    QuotaExceededError,
    RateLimitedError,
    SpaceUnavailableError,
)
from .events import (
    Failover,
    GenerationResult,
    Log,
    Started,
    StatusEvent,
    TextDelta,
    UnderstandingResult,
)
from .media import ImageInput, is_url, load_image
from .options import GENERATION_DEFAULTS, GUIDANCE_RANGE, UNDERSTANDING_DEFAULTS, SpaceOptions
from .params import check_range, check_seed, check_stop, check_text, check_unit
from .prompt import Message
from .reuse import CallReuse, call_key, resolve_cache
from .routing import (
    BROKEN_STAGES,
    WAKING_STAGES,
    Disposition,
    EndpointState,
    QuotaMemory,
    classify,
    identity_of,
)

logger = logging.getLogger("janus_space")

__all__ = ["JanusPool"]

R = TypeVar("R", UnderstandingResult, GenerationResult)
EndpointSpec = str | JanusClient
_PER_ENDPOINT = frozenset({"space", "base_url", "options"})


@dataclass
class _LoopState:
    """What the pool binds to one event loop: its wake-up signal and background tasks."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    probes: dict[str, asyncio.Task[tuple[str, float | None, bool] | None]] = field(
        default_factory=dict
    )
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class JanusPool:
    """Several endpoints of the Janus-Pro Space used as one client: ``async with JanusPool(...)``.

    ``endpoints`` are Space ids (``"deepseek-ai/Janus-Pro-7B"``, ``"you/Janus-Pro-7B"``), base
    URLs of self-hosted copies, or ``JanusClient`` objects with their own settings; the pool
    builds a ``JanusClient`` for each id or URL with ``shared_settings`` (any ``JanusClient``
    keyword setting) and owns every client: ``aclose`` closes them all. Nothing here touches
    the network; bad endpoints or settings raise ``InvalidInputError`` at once.

    Each call goes to the usable endpoint with the fewest calls in flight, ties to the one
    listed first (list your own copy before the public Space); an endpoint's ``max_concurrency``
    caps it, and a call waits for a free place rather than oversubscribing one. A call moves on
    to the next endpoint only where its job did not run, and a ``Failover`` status event says
    which endpoint it left, why, for how long that endpoint is skipped and where it went:

    * ZeroGPU quota exceeded: the quota is the caller's and counts across every ZeroGPU Space,
      so every ZeroGPU endpoint called with the same identity (the same token, or anonymous) is
      skipped until the retry time, and the call goes at once to other hardware. A Space id's
      hardware comes from the Hub (or ``hardware={"you/Janus-Pro-7B": "a10g-large"}``); a base
      URL counts as its own hardware unless ``hardware`` says otherwise.
    * paused, broken, HTTP 5xx, connection refused: skipped with backoff (5 s doubling to
      5 min), then tried again by one call at a time until it answers;
    * sleeping or building (the Hub's stage, asked before a Space id's first call): woken in
      the background while the other endpoints serve;
    * no GPU available, queue full, HTTP 429: the next endpoint for this call.

    App errors and bad input are never sent to a second endpoint (they would fail the same
    way), nor is a job whose stream broke after it started (it may have spent GPU time), nor a
    call whose answer had begun. When every endpoint is out, the error of the one that frees up
    first is raised (e.g. ``QuotaExceededError`` with the earliest ``retry_after``). Every
    result names the endpoint that served it (``result.endpoint``).

    **One user's capacity, not several accounts' quotas.** The pool spreads one person's work
    over capacity that person may use: their own copies on dedicated hardware, self-hosted
    copies, and the public Space under their own quota. It must not be used to spread one
    person's use over several people's or several accounts' ZeroGPU quotas (Hugging Face's
    terms forbid circumventing limits); an endpoint may be listed once only, and its quota
    memory is kept per token.
    """

    def __init__(
        self,
        endpoints: Iterable[EndpointSpec],
        *,
        hardware: Mapping[str, str] | None = None,
        **shared_settings: Any,
    ) -> None:
        # Identical calls share one job, and the cache answers, at the pool's level: any
        # endpoint's answer will do, so the key names the pool, not the endpoint that served.
        self._reuse = CallReuse(resolve_cache(shared_settings.pop("cache", None)))
        clients = _build_clients(endpoints, shared_settings)
        states: list[EndpointState] = []
        for order, client in enumerate(clients):
            options: SpaceOptions = client.options
            states.append(
                EndpointState(
                    name=client.endpoint,
                    order=order,
                    client=client,
                    space_id=options.space if options.base_url is None else None,
                    identity=identity_of(options.hf_token),
                    cap=options.max_concurrency,
                )
            )
        names = [state.name for state in states]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidInputError(
                f"endpoints listed more than once: {duplicates} (each endpoint may appear once)"
            )
        for name, kind in _check_hardware(hardware, names).items():
            state = states[names.index(name)]
            state.hardware, state.declared_hardware = kind, True
        self._endpoints = tuple(states)
        self._quota = QuotaMemory.empty()
        self._closed = False
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._capabilities = dataclasses.replace(clients[0].capabilities, kind="pool")
        self._identity = "pool:" + "|".join(names)

    def _key(self, function: str, image: ImageInput | None, **params: Any) -> str:
        """The identity of a call through this pool (its image read, never re-encoded)."""
        if isinstance(image, str) and is_url(image.strip()):
            params["image_url"] = image.strip()
            return call_key(self._identity, function, **params)
        picture = None if image is None else load_image(image)
        return call_key(self._identity, function, image=picture, **params)

    # -- what it is ----------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """The Space's capabilities (every endpoint is a copy of it), with ``kind="pool"``."""
        return self._capabilities

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints' names, in the order given (as ``result.endpoint`` names them)."""
        return tuple(state.name for state in self._endpoints)

    @property
    def clients(self) -> tuple[JanusClient, ...]:
        """The endpoints' clients, in the order given (owned by the pool)."""
        return tuple(state.client for state in self._endpoints)

    def __repr__(self) -> str:
        return f"JanusPool({list(self.endpoints)!r})"

    # -- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> JanusPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran; a closed pool refuses calls."""
        return self._closed

    async def aclose(self) -> None:
        """Stop background wake-ups and close every endpoint's client (idempotent)."""
        self._closed = True
        for loop, state in list(self._loops.items()):
            tasks = [*state.tasks, *state.probes.values()]
            if loop is _running_loop():
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            elif not loop.is_closed():
                for task in tasks:
                    loop.call_soon_threadsafe(task.cancel)
            self._notify()
        await asyncio.gather(*(state.client.aclose() for state in self._endpoints))

    def _check_open(self) -> None:
        if self._closed:
            raise JanusError("this JanusPool is closed")

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        return state

    def _notify(self) -> None:
        """Wake every call waiting for a free place or a recovered endpoint, on every loop."""
        current = _running_loop()
        for loop, state in list(self._loops.items()):
            if loop is current:
                _signal(state)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_signal, state)

    # -- routing -------------------------------------------------------------------------

    def _skipped(self, endpoint: EndpointState, now: float) -> tuple[float, JanusError] | None:
        """(until, why) while the endpoint is skipped, else None."""
        spent = self._quota.spent(endpoint, now)
        if spent is not None:
            return spent
        if endpoint.skip_until > now and endpoint.skip_error is not None:
            return endpoint.skip_until, endpoint.skip_error
        return None

    async def _acquire(self, tried: Mapping[str, JanusError]) -> EndpointState:
        """A place on the best usable endpoint not yet tried by this call (waits for room)."""
        loop_state = self._loop_state()
        while True:
            self._check_open()
            now = time.monotonic()
            usable = [
                e for e in self._endpoints if e.name not in tried and self._skipped(e, now) is None
            ]
            if not usable:
                raise self._exhausted(tried, now)
            preferred = [e for e in usable if not e.waking] or usable
            free = [e for e in preferred if e.has_room(now)]
            if free:
                chosen = min(free, key=lambda e: (e.in_flight, e.order))
                chosen.in_flight += 1
                return chosen
            skips = [self._skipped(e, now) for e in self._endpoints if e.name not in tried]
            expiries = [skip[0] - now for skip in skips if skip is not None]
            changed = loop_state.changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), min(expiries) if expiries else None)

    def _release(self, endpoint: EndpointState) -> None:
        endpoint.in_flight -= 1
        self._notify()

    def _exhausted(self, tried: Mapping[str, JanusError], now: float) -> JanusError:
        """The error of the endpoint that frees up first, when no endpoint can take the call."""
        ranked: list[tuple[float, int, EndpointState, JanusError]] = []
        for endpoint in self._endpoints:
            skip = self._skipped(endpoint, now)
            error = tried.get(endpoint.name) or (skip[1] if skip else None)
            if error is None:
                continue
            ranked.append((skip[0] if skip else now, endpoint.order, endpoint, error))
        if not ranked:
            return JanusError("no endpoint of the pool can take the call")
        frees_at, _, endpoint, error = min(ranked, key=lambda item: (item[0], item[1]))
        remaining = max(0.0, frees_at - now)
        fresh = copy.copy(error)
        if isinstance(fresh, (QuotaExceededError, RateLimitedError)) and remaining:
            fresh.retry_after = remaining
        when = f" in {remaining:.0f}s" if remaining else ""
        fresh.args = (
            f"{endpoint.name}: {error} [every endpoint of the pool is unavailable; this one "
            f"frees up first{when}]",
        )
        return fresh

    def _record_failure(
        self, endpoint: EndpointState, error: JanusError, disposition: Disposition
    ) -> float | None:
        """Remember what ``error`` says about the endpoint; the seconds it is skipped, if any."""
        now = time.monotonic()
        seconds: float | None = None
        if disposition == "quota":
            assert isinstance(error, QuotaExceededError)
            seconds = self._quota.record(endpoint, error, now)
            shared = [
                e.name
                for e in self._endpoints
                if e is not endpoint and e.quota_group == endpoint.quota_group
            ]
            if shared:
                logger.info(
                    "ZeroGPU quota spent: skipping %s too for %.0fs (same identity)",
                    ", ".join(shared),
                    seconds,
                )
        elif disposition == "down":
            seconds = endpoint.went_down(now, error)
        elif disposition == "limited":
            assert isinstance(error, RateLimitedError)
            if error.retry_after:
                seconds = error.retry_after
                endpoint.skip(now + seconds, error)
        logger.info("pool: leaving %s (%s: %s)", endpoint.name, type(error).__name__, error)
        return seconds

    # -- the Hub: stage and hardware of a Space id ----------------------------------------

    async def _probe(self, endpoint: EndpointState) -> tuple[str, float | None, bool] | None:
        """Ask the Hub about a Space id once (shared by concurrent calls).

        None: go ahead. Else ``(reason, retry_after, waking)``: skip it for now; a waking
        Space is being started in the background and stays usable as a last resort.
        """
        loop_state = self._loop_state()
        task = loop_state.probes.get(endpoint.name)
        if task is None:
            task = asyncio.ensure_future(self._ask_hub(endpoint))
            loop_state.probes[endpoint.name] = task
            task.add_done_callback(lambda _: loop_state.probes.pop(endpoint.name, None))
        return await asyncio.shield(task)

    async def _ask_hub(self, endpoint: EndpointState) -> tuple[str, float | None, bool] | None:
        facts = await _hub_facts(endpoint.client.options)
        endpoint.probed = True
        if facts is None:
            return None
        stage, hardware = facts
        if hardware and not endpoint.declared_hardware:
            endpoint.hardware = hardware
        if stage in WAKING_STAGES:
            endpoint.waking = True
            self._start_waking(endpoint)
            self._notify()
            return (
                f"the Space is {stage}: waking it; other endpoints serve meanwhile",
                None,
                True,
            )
        if stage in BROKEN_STAGES:
            error = SpaceUnavailableError(
                f"the Space {endpoint.space_id} is {stage}: it cannot answer", stage=stage
            )
            seconds = endpoint.went_down(time.monotonic(), error)  # asked again after it
            return f"SpaceUnavailableError: {error}", seconds, False
        return None

    def _start_waking(self, endpoint: EndpointState) -> None:
        """Connect to a sleeping Space in the background (the request wakes it)."""
        loop_state = self._loop_state()

        async def wake() -> None:
            try:
                await _connect(endpoint.client)
            except Exception as exc:  # a background task: whatever went wrong, remember it
                error = exc if isinstance(exc, JanusError) else JanusConnectionError(repr(exc))
                endpoint.went_down(time.monotonic(), error)
                logger.info("pool: %s did not wake: %s", endpoint.name, error)
            else:
                endpoint.waking = False
                logger.info("pool: %s is awake", endpoint.name)
            finally:
                self._notify()

        task = asyncio.ensure_future(wake())
        loop_state.tasks.add(task)
        task.add_done_callback(loop_state.tasks.discard)

    # -- one call, over as many endpoints as it takes ---------------------------------------

    async def _stream(
        self, start: Callable[[JanusClient], AsyncGenerator[Any, None]]
    ) -> AsyncGenerator[Any, None]:
        """Run one call on the best endpoint, moving on where the job did not run."""
        self._check_open()
        tried: dict[str, JanusError] = {}
        left: list[tuple[EndpointState, str, float | None]] = []
        while True:
            endpoint = await self._acquire(tried)
            try:
                if endpoint.needs_probe:
                    verdict = await self._probe(endpoint)
                    if verdict is not None:
                        reason, retry_after, waking = verdict
                        if not waking and endpoint.skip_error is not None:
                            tried[endpoint.name] = endpoint.skip_error
                        left.append((endpoint, reason, retry_after))
                        continue
                skip = self._skipped(endpoint, time.monotonic())
                if skip is not None:  # learned while waiting or probing: e.g. its quota is spent
                    until, why = skip
                    left.append(
                        (endpoint, f"{type(why).__name__}: {why}", until - time.monotonic())
                    )
                    continue
                for previous, reason, retry_after in left:
                    if previous is endpoint:  # nothing else can serve: wait for this one
                        yield Log(f"{endpoint.name}: {reason}; waiting for it", level="info")
                    else:
                        yield Failover(previous.name, reason, retry_after, endpoint.name)
                left.clear()
                started = answered = False
                events = start(endpoint.client)
                try:
                    async with contextlib.aclosing(events):
                        async for event in events:
                            if isinstance(event, Started):
                                started = True
                            elif isinstance(event, (UnderstandingResult, GenerationResult)):
                                answered = True
                                if event.endpoint is None:
                                    event = dataclasses.replace(event, endpoint=endpoint.name)
                            elif isinstance(event, TextDelta):
                                answered = True
                            yield event
                except JanusError as error:
                    disposition = "raise" if answered else classify(error, started=started)
                    if disposition == "raise":
                        if isinstance(error, AppError):
                            endpoint.succeeded()  # the app ran: the endpoint works
                        raise
                    seconds = self._record_failure(endpoint, error, disposition)
                    tried[endpoint.name] = error
                    left.append((endpoint, f"{type(error).__name__}: {error}", seconds))
                    continue
                endpoint.succeeded()
                return
            finally:
                self._release(endpoint)

    # -- understanding -------------------------------------------------------------------

    async def stream_understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncGenerator[StatusEvent | TextDelta | UnderstandingResult, None]:
        """Ask about an image on the best endpoint; status events (``Failover`` too), then
        the ``UnderstandingResult``."""
        _check_answer(question, seed, top_p, temperature, max_new_tokens, stop)

        def start(client: JanusClient) -> AsyncGenerator[Any, None]:
            return client.stream_understand(
                question,
                image,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
            )

        key = self._key(
            "multimodal_understanding",
            image,
            question=question,
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=json.dumps(list(stop)),
        )
        events = self._reuse.stream(key, lambda: self._stream(start), UnderstandingResult)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def understand(
        self,
        question: str,
        image: ImageInput | None = None,
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """Ask one question about one image (or none) and return the answer."""
        return await _last(
            self.stream_understand(
                question,
                image,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
            ),
            UnderstandingResult,
        )

    async def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncGenerator[StatusEvent | TextDelta | UnderstandingResult, None]:
        """Answer the last user message of a conversation, streamed like ``stream_understand``."""
        _check_messages(messages)
        _check_answer(None, seed, top_p, temperature, max_new_tokens, stop)

        def start(client: JanusClient) -> AsyncGenerator[Any, None]:
            return client.stream_chat(
                messages,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
            )

        turns = [
            [m.role, m.text, [self._key("image", image) for image in m.images]] for m in messages
        ]
        key = self._key(
            "chat",
            None,
            conversation=json.dumps(turns),
            seed=seed,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=json.dumps(list(stop)),
        )
        events = self._reuse.stream(key, lambda: self._stream(start), UnderstandingResult)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        seed: int = UNDERSTANDING_DEFAULTS.seed,
        top_p: float = UNDERSTANDING_DEFAULTS.top_p,
        temperature: float = UNDERSTANDING_DEFAULTS.temperature,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
    ) -> UnderstandingResult:
        """Answer the last user message of a conversation."""
        return await _last(
            self.stream_chat(
                messages,
                seed=seed,
                top_p=top_p,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                stop=stop,
            ),
            UnderstandingResult,
        )

    # -- generation ----------------------------------------------------------------------

    async def stream_generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> AsyncGenerator[StatusEvent | GenerationResult, None]:
        """Draw images on the best endpoint; status events, then the ``GenerationResult``."""
        check_text(prompt, "prompt")
        check_seed(seed)
        check_range(guidance, "guidance", *GUIDANCE_RANGE)
        check_unit(temperature, "temperature")
        check_num_images(num_images, self._capabilities)

        def start(client: JanusClient) -> AsyncGenerator[Any, None]:
            return client.stream_generate(
                prompt, seed=seed, guidance=guidance, temperature=temperature, num_images=num_images
            )

        key = self._key(
            "generate_image",
            None,
            prompt=prompt,
            seed=seed,
            guidance=guidance,
            temperature=temperature,
            num_images=num_images,
        )
        events = self._reuse.stream(key, lambda: self._stream(start), GenerationResult)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def generate(
        self,
        prompt: str,
        *,
        seed: int = GENERATION_DEFAULTS.seed,
        guidance: float = GENERATION_DEFAULTS.guidance,
        temperature: float = GENERATION_DEFAULTS.temperature,
        num_images: int | None = None,
    ) -> GenerationResult:
        """Draw images for a prompt (the Space draws five) and download them."""
        return await _last(
            self.stream_generate(
                prompt, seed=seed, guidance=guidance, temperature=temperature, num_images=num_images
            ),
            GenerationResult,
        )


# --- building the endpoints ----------------------------------------------------------------


def _build_clients(
    endpoints: Iterable[EndpointSpec], settings: dict[str, Any]
) -> list[JanusClient]:
    """One client per endpoint, checked (no network); ids and URLs get the shared settings."""
    if isinstance(endpoints, (str, bytes, JanusClient)) or not isinstance(endpoints, Iterable):
        raise InvalidInputError(
            "endpoints must be a list of Space ids, base URLs or JanusClient objects, not "
            f"{type(endpoints).__name__} (a single endpoint still goes in a list)"
        )
    items = list(endpoints)
    if not items:
        raise InvalidInputError("a JanusPool needs at least one endpoint")
    misplaced = sorted(_PER_ENDPOINT & set(settings))
    if misplaced:
        raise InvalidInputError(
            f"{misplaced} name one endpoint: list Space ids and base URLs in endpoints, or pass "
            "JanusClient objects"
        )
    client_only = _client_only_settings()
    client_settings = {k: v for k, v in settings.items() if k in client_only}
    option_settings = {k: v for k, v in settings.items() if k not in client_only}
    clients = []
    for position, item in enumerate(items):
        if isinstance(item, JanusClient):
            if item.closed:
                raise InvalidInputError(f"endpoints[{position}] is a closed JanusClient")
            clients.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise InvalidInputError(
                f"endpoints[{position}] must be a Space id ('owner/name'), an http(s) base URL "
                f"or a JanusClient, not {item!r}"
            )
        text = item.strip()
        if text.lower().startswith(("http://", "https://")):
            options = SpaceOptions.of(base_url=text, **option_settings)
        elif "://" in text:
            raise InvalidInputError(
                f"endpoints[{position}]: {text!r} is not an http(s) URL nor a Space id"
            )
        else:
            try:
                options = SpaceOptions.of(text, **option_settings)
            except InvalidInputError as exc:
                raise InvalidInputError(f"endpoints[{position}]: {exc}") from None
            if options.base_url is not None:  # JANUS_BASE_URL must not redirect a listed id
                options = dataclasses.replace(options, base_url=None)
        clients.append(JanusClient(options=options, **client_settings))
    return clients


def _client_only_settings() -> frozenset[str]:
    """``JanusClient`` keywords that are not ``SpaceOptions`` settings (e.g. ``cache``)."""
    parameters = inspect.signature(JanusClient).parameters
    return frozenset(
        name
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "options"
    )


def _check_hardware(hardware: Mapping[str, str] | None, names: list[str]) -> dict[str, str]:
    """Declared hardware, keyed by endpoint name (a base URL's trailing slash ignored)."""
    if hardware is None:
        return {}
    if not isinstance(hardware, Mapping):
        raise InvalidInputError("hardware must map endpoint names to Hub hardware names")
    declared: dict[str, str] = {}
    for key, kind in hardware.items():
        name = key.strip().rstrip("/") if isinstance(key, str) else key
        if name not in names:
            raise InvalidInputError(f"hardware names {key!r}, which is not an endpoint of the pool")
        if not isinstance(kind, str) or not kind.strip():
            raise InvalidInputError(
                f"hardware[{key!r}] must be a Hub hardware name such as 'zero-a10g', not {kind!r}"
            )
        declared[name] = kind.strip()
    return declared


# --- input checks: bad input fails before a call waits for, or is refused by, any endpoint ----


def _check_answer(
    question: str | None,
    seed: int,
    top_p: float,
    temperature: float,
    max_new_tokens: int | None,
    stop: Sequence[str],
) -> None:
    if question is not None:
        check_text(question, "question")
    check_seed(seed)
    check_unit(top_p, "top_p")
    check_unit(temperature, "temperature")
    check_stop(stop)
    if max_new_tokens is not None and (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 1
    ):
        raise InvalidInputError(
            "max_new_tokens must be a positive integer, not " + repr(max_new_tokens)
        )


def _check_messages(messages: Sequence[Message]) -> None:
    if isinstance(messages, (str, Message)) or not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a sequence of Message")
    if not messages:
        raise InvalidInputError("the conversation is empty: give at least one user message")
    for position, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidInputError(
                f"messages[{position}] is a {type(message).__name__}, not a janus_space.Message"
            )


# --- small helpers -------------------------------------------------------------------------


async def _hub_facts(options: SpaceOptions) -> tuple[str, str | None] | None:
    """(stage, hardware) of a Space from the Hub, or None when the Hub cannot say."""
    from .hub import aspace_status

    try:
        status = await aspace_status(
            options.space,
            token=options.hf_token,
            hub_url=options.hub_url,
            timeout=options.timeouts.connect,
        )
    except (JanusError, ImportError, OSError) as exc:  # advisory: the call itself will tell
        logger.info("pool: no Hub status for %s (%s)", options.space, type(exc).__name__)
        return None
    return status.stage.upper(), status.hardware or status.requested_hardware


async def _connect(client: JanusClient) -> None:
    """Reach the client's Space once (reading ``/config`` wakes a sleeping Space)."""
    await client.connect()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _signal(state: _LoopState) -> None:
    """Wake the waiters of one loop: set the current event and start a fresh one."""
    changed, state.changed = state.changed, asyncio.Event()
    changed.set()


async def _last(stream: AsyncGenerator[Any, None], kind: type[R]) -> R:
    """Drain a call's stream and return its result, closing the stream either way."""
    result: Any = None
    async with contextlib.aclosing(stream):
        async for item in stream:
            result = item
    if not isinstance(result, kind):
        raise JanusError("the call ended without a result")
    return result
