"""The local backend's cost over a bare ``model.generate``: ``python benchmarks/local.py``.

Measures, on the same model and the same inputs, interleaved and repeated (medians):

* an answer: ``LocalJanus.understand`` end to end against the code a user would write without
  it (chat template, processor, ``model.generate``, decode) — the backend's overhead, target
  at most 5 %; its time to the first ``TextDelta`` against the bare prefill (a one-token
  generate); and tokens per second of both;
* an image generation: ``LocalJanus.generate`` (PNG bytes) against bare ``generate`` in image
  mode, the decoder and the same PNG encoding.

By default the model is the tests' tiny random Janus (built in a temporary folder); ``--model``
takes a real checkpoint (``deepseek-community/Janus-Pro-1B``, a folder…). The device is the
backend's default (CUDA when there is one), so on a GPU machine the same command gives the
GPU figures. Both sides use the same sampling and seed, run generate on a thread of their own
and are checked to produce the same answers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow `python benchmarks/local.py` as well as `-m benchmarks.local`
    sys.path.insert(0, str(ROOT))

QUESTION = "Describe what you see, in detail."
PROMPT = "A lighthouse on a cliff at dusk, oil painting."


def _bare_answer(janus: Any, tokens: int, seed: int) -> tuple[int, str]:
    """What a user writes without the backend: template, processor, generate, decode."""
    import torch

    model, processor = janus.transformers_model, janus.processor
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], return_tensors="pt").to(janus.device, janus.dtype)
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            generation_mode="text",
            max_new_tokens=tokens,
            do_sample=True,
            temperature=1.0,
            top_p=0.95,
            top_k=None,
        )
    new = output[0, inputs["input_ids"].shape[1] :]
    text = processor.decode(new, skip_special_tokens=True)
    _sync(janus)
    return int(new.shape[0]), str(text)


def _bare_prefill(janus: Any) -> None:
    """Seconds to the first token without the backend (a one-token generate)."""
    import torch

    processor = janus.processor
    messages = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], return_tensors="pt").to(janus.device, janus.dtype)
    with torch.inference_mode():
        janus.transformers_model.generate(
            **inputs, generation_mode="text", max_new_tokens=1, do_sample=False
        )
    _sync(janus)


def _bare_images(janus: Any, count: int, seed: int) -> None:
    import torch

    from janus_space.local.generation import to_png

    model, processor = janus.transformers_model, janus.processor
    messages = [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], generation_mode="image", return_tensors="pt").to(janus.device)
    torch.manual_seed(seed)
    with torch.inference_mode():
        tokens = model.generate(
            **inputs,
            generation_mode="image",
            do_sample=True,
            temperature=1.0,
            guidance_scale=5.0,
            num_return_sequences=count,
        )
        decoded = model.decode_image_tokens(tokens)
    to_png(decoded, processor.image_processor)


def _sync(janus: Any) -> None:
    import torch

    if getattr(janus.device, "type", "") == "cuda":
        torch.cuda.synchronize()


async def _backend_answer(janus: Any, tokens: int, seed: int) -> tuple[float, float, str]:
    from janus_space import TextDelta, UnderstandingResult

    started = time.perf_counter()
    first = None
    result = None
    async for item in janus.stream_understand(
        QUESTION, max_new_tokens=tokens, temperature=1.0, top_p=0.95, seed=seed
    ):
        if isinstance(item, TextDelta) and first is None:
            first = time.perf_counter() - started
        if isinstance(item, UnderstandingResult):
            result = item
    total = time.perf_counter() - started
    assert result is not None and first is not None
    return total, first, result.text


def _in_thread(function: Any, *args: Any) -> Any:
    """Run bare code on its own thread, as the backend runs generate on its worker thread."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(function(*args)))
    thread.start()
    thread.join()
    return box[0]


class Samples:
    """Wall-clock and process CPU seconds of repeated runs of one measure."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    def row(self, name: str) -> str:
        wall, cpu = statistics.median(self.wall), statistics.median(self.cpu)
        best = min(self.wall)
        return f"| {name} | {wall * 1000:.1f} ms | {best * 1000:.1f} ms | {cpu * 1000:.1f} ms |"


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _overhead(ours: list[float], bare: list[float]) -> str:
    """The median of the rounds' ratios (each round: the same work on both sides)."""
    return f"{statistics.median(o / b for o, b in zip(ours, bare, strict=True)) - 1:+.1%}"


def _long_seed(janus: Any, tokens: int) -> tuple[int, int]:
    """A seed whose answer runs the whole length (no end-of-sequence), and its length."""
    longest = (0, -1)
    for seed in range(1000, 1040):
        generated, _ = _in_thread(_bare_answer, janus, tokens, seed)
        if generated == tokens:
            return seed, generated
        longest = max(longest, (generated, seed))
    return longest[1], longest[0]


async def run(janus: Any, *, tokens: int, rounds: int, images: int) -> None:
    """Measure interleaved rounds and print the table."""
    import torch
    import transformers

    bare, ours, prefill, bare_img, ours_img = (Samples() for _ in range(5))
    ttft: list[float] = []
    same = 0
    await _backend_answer(janus, tokens, 0)  # warm up both paths once
    seed, generated = _long_seed(janus, tokens)  # every round does the same work
    for _ in range(rounds):
        start = _clock()
        _, bare_text = _in_thread(_bare_answer, janus, tokens, seed)
        bare.add(*_since(start))
        start = _clock()
        _, first, text = await _backend_answer(janus, tokens, seed)
        ours.add(*_since(start))
        ttft.append(first)
        start = _clock()
        _in_thread(_bare_prefill, janus)
        prefill.add(*_since(start))
        same += text == bare_text  # same seed, same sampling: the same tokens
        if images:
            start = _clock()
            _in_thread(_bare_images, janus, images, seed)
            bare_img.add(*_since(start))
            start = _clock()
            await janus.generate(PROMPT, num_images=images, seed=seed)
            ours_img.add(*_since(start))
    print(
        f"model {janus.model} on {janus.device} ({janus.dtype}); torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {torch.get_num_threads()} CPU threads"
    )
    print(
        f"{rounds} interleaved rounds of the same work; answers of {generated} tokens (seed "
        f"{seed}); identical answers from both sides in {same} of {rounds} rounds"
    )
    print("| measure | wall median | wall best | CPU median |\n|---|---|---|---|")
    print(bare.row("answer, bare generate"))
    print(ours.row("answer, LocalJanus.understand"))
    print(prefill.row("first token, bare prefill"))
    print(
        f"| first TextDelta, LocalJanus | {statistics.median(ttft) * 1000:.1f} ms "
        f"| {min(ttft) * 1000:.1f} ms | |"
    )
    if images:
        print(bare_img.row(f"{images} images, bare generate + PNG"))
        print(ours_img.row(f"{images} images, LocalJanus.generate"))
    bare_rate = generated / statistics.median(bare.wall)
    ours_rate = generated / (statistics.median(ours.wall) - statistics.median(ttft))
    print(f"tokens/s: bare {bare_rate:.0f} (whole call), LocalJanus {ours_rate:.0f} after first")
    print(
        f"answer overhead: wall {_overhead(ours.wall, bare.wall)} (best against best "
        f"{min(ours.wall) / min(bare.wall) - 1:+.1%}), CPU {_overhead(ours.cpu, bare.cpu)}; "
        "target <= +5%"
    )
    if images:
        print(
            f"image overhead: wall {_overhead(ours_img.wall, bare_img.wall)}, "
            f"CPU {_overhead(ours_img.cpu, bare_img.cpu)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint id or folder (default: a tiny random one)")
    parser.add_argument("--tokens", type=int, default=128, help="answer length in tokens")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--images", type=int, default=5, help="images per generation (0: skip)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the tiny model gains nothing from more, and on a "
        "shared machine OpenMP teams spinning against each other drown the figures; 0: torch's)",
    )
    args = parser.parse_args()
    import torch

    from janus_space.local import LocalJanus, SlowDeviceWarning

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", SlowDeviceWarning)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from tests.local.tiny_janus import build

            model = str(build(Path(folder) / "tiny-janus").path)
        janus = LocalJanus(model)

        async def measure() -> None:
            try:
                await run(janus, tokens=args.tokens, rounds=args.rounds, images=args.images)
            finally:
                await janus.aclose()

        asyncio.run(measure())


if __name__ == "__main__":
    main()
