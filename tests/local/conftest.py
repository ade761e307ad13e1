"""Fixtures of the local backend's tests: a tiny Janus checkpoint on disk, a backend, model spies.

The checkpoint is built once per session (``tiny_janus.build``) and every backend loads it
back through ``from_pretrained``, as users' checkpoints are. ``ModelSpy`` hooks the loaded
model to see what it really received and did: the prompt's token ids and pixels, how many
tokens it generated, on which thread; and it can hold generation at a given token (a gate)
so tests about queues and cancellation do not depend on timing.

Without torch and transformers the tests skip, except in CI (``CI`` set), where the local
extra is installed by ``.ci/run`` and a missing stack is an error, never a skip.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from janus_space.local import LocalJanus, SlowDeviceWarning

if TYPE_CHECKING:
    from tiny_janus import TinyJanus

try:
    import torch
    import transformers  # noqa: F401
except ImportError as exc:
    if os.environ.get("CI"):
        raise RuntimeError(
            "tests/local must run in CI, but torch/transformers are missing: .ci/run installs "
            "torch==2.13.0 and the 'local' extra"
        ) from exc
    # elsewhere each model test module skips, saying so (pytest.importorskip at its top)
else:
    # One intra-op thread: the tiny model gains nothing from more, and on a shared 2-core
    # machine OpenMP teams spinning against each other make CPU generation many times slower.
    torch.set_num_threads(1)

GATE_TIMEOUT = 30.0  # seconds a gated generation waits before giving up (a failing test)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyJanus:
    """The tiny checkpoint, saved with ``save_pretrained`` (once per session)."""
    from tiny_janus import build

    return build(tmp_path_factory.mktemp("janus") / "tiny-janus")


def load(tiny: TinyJanus | Path, **settings: Any) -> LocalJanus:
    """A LocalJanus on the tiny checkpoint (or a copy), on the CPU, without the speed warning."""
    path = tiny if isinstance(tiny, Path) else tiny.path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SlowDeviceWarning)
        return LocalJanus(str(path), device="cpu", **settings)


@pytest.fixture
async def backend(tiny: TinyJanus) -> AsyncIterator[LocalJanus]:
    """A fresh backend per test, closed afterwards."""
    janus = load(tiny)
    try:
        yield janus
    finally:
        await janus.aclose()


@dataclass
class ModelSpy:
    """What the model received and did, seen through forward hooks."""

    prompts: list[Any] = field(default_factory=list)
    """``input_ids`` of every prefill (a forward over more than one new token)."""
    embedded: list[Any] = field(default_factory=list)
    """Token ids of every multi-token pass through the text embedding (prompts, both CFG rows)."""
    pixels: list[Any] = field(default_factory=list)
    """``pixel_values`` of every pass through the vision tower."""
    text_tokens: int = 0
    """Forwards of the language head: one per generated answer token."""
    image_tokens: int = 0
    """Forwards of the image head: one per generated image token (all images at once)."""
    outputs: list[Any] = field(default_factory=list)
    """What every ``model.generate`` call returned (prompt and new tokens, or image tokens)."""
    threads: set[str] = field(default_factory=set)
    """Names of the threads the model ran on."""
    gate_at: int | None = None
    """Hold the generation at this token (text or image) until ``gate`` is set."""
    gate: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)
    """Set while a gated generation waits."""
    gate_timed_out: bool = False

    def _hold(self, count: int) -> None:
        if self.gate_at is not None and count == self.gate_at:
            self.waiting.set()
            if not self.gate.wait(GATE_TIMEOUT):
                self.gate_timed_out = True


@pytest.fixture
def spy(backend: LocalJanus) -> Iterator[ModelSpy]:
    """Hooks on ``backend``'s model, removed after the test."""
    yield from spy_on(backend)


def spy_on(backend: LocalJanus) -> Iterator[ModelSpy]:
    """Install a ``ModelSpy`` on a backend's model until the generator is closed."""
    seen = ModelSpy()
    model = backend.transformers_model

    def before_forward(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.threads.add(threading.current_thread().name)
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[-1] > 1:
            seen.prompts.append(ids.detach().clone())

    def before_embedding(module: Any, args: Any) -> None:
        if args and args[0].shape[-1] > 1:
            seen.embedded.append(args[0].detach().clone())

    def before_vision(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        pixels = args[0] if args else kwargs["pixel_values"]
        seen.pixels.append(pixels.detach().clone())

    def after_text_head(module: Any, args: Any, output: Any) -> None:
        seen.text_tokens += 1
        seen._hold(seen.text_tokens)

    def after_image_head(module: Any, args: Any, output: Any) -> None:
        seen.threads.add(threading.current_thread().name)
        seen.image_tokens += 1
        seen._hold(seen.image_tokens)

    real_generate = model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        output = real_generate(*args, **kwargs)
        seen.outputs.append(output)
        return output

    model.generate = generate
    handles = [
        model.register_forward_pre_hook(before_forward, with_kwargs=True),
        model.model.vision_model.register_forward_pre_hook(before_vision, with_kwargs=True),
        model.get_input_embeddings().register_forward_pre_hook(before_embedding),
        model.lm_head.register_forward_hook(after_text_head),
        model.model.generation_head.register_forward_hook(after_image_head),
    ]
    try:
        yield seen
    finally:
        seen.gate.set()
        del model.generate
        for handle in handles:
            handle.remove()
