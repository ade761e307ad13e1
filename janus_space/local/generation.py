"""What the worker thread runs: ``model.generate`` for an answer or for images, with its hooks.

An answer streams through a stopping criterion called once per token: it decodes the new
token, releases text up to any stop sequence as ``TextDelta`` events, reports ``Progress``,
and ends generation when a stop sequence appears or the caller has left. Image generation
runs Janus's own loop of image tokens (576 for Janus-Pro), which calls the logits processors
once per token: a pass-through processor there reports progress and aborts when the caller
has left. Images come back as PNG bytes.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from ..errors import InvalidInputError
from ..events import GeneratedImage, GenerationResult, Progress, TextDelta, UnderstandingResult
from ..prompt import PreparedPrompt
from .chat import ChatPrompt, encode, open_images
from .loading import LoadedModel, out_of_memory
from .streaming import IncrementalDecoder, StopScanner
from .worker import Job

__all__ = ["AnswerRequest", "Cancelled", "DrawRequest", "answer", "draw"]

TEXT_PROGRESS_EVERY = 16
"""Tokens between two ``Progress`` events of an answer (every token is a ``TextDelta``)."""
IMAGE_PROGRESS_EVERY = 24
"""Image tokens between two ``Progress`` events (one row of Janus-Pro's 24x24 grid)."""


class Cancelled(Exception):
    """The caller left while its generation ran; raised inside generate to stop it."""


@dataclass(frozen=True)
class AnswerRequest:
    """A checked understanding call."""

    prompt: ChatPrompt
    seed: int
    top_p: float
    temperature: float
    max_new_tokens: int | None
    default_max_new_tokens: int
    stops: tuple[str, ...]


@dataclass(frozen=True)
class DrawRequest:
    """A checked generation call."""

    prompt: str
    seed: int
    guidance: float
    temperature: float
    num_images: int
    upscale: bool


def _decoder(tokenizer: Any) -> Callable[[Sequence[int]], str]:
    """Token ids → text as ``tokenizer.decode(ids, skip_special_tokens=True)`` gives it.

    It runs twice per generated token, so a fast tokenizer that applies no clean-up is asked
    directly (its Python wrapper costs as much as the decoding itself).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", True):
        return lambda ids: str(backend.decode(list(ids), skip_special_tokens=True))
    return lambda ids: str(tokenizer.decode(list(ids), skip_special_tokens=True))


class _AnswerWatcher(StoppingCriteria):
    """Called after every token: stream its text, report progress, stop on a stop or a leave."""

    def __init__(self, job: Job, tokenizer: Any, prompt_tokens: int, limit: int, stops: Any):
        self._job = job
        self._seen = prompt_tokens
        self._limit = limit
        self._decoder = IncrementalDecoder(_decoder(tokenizer))
        self._scanner = StopScanner(stops)
        self._verdicts: dict[tuple[bool, int, Any], Any] = {}
        self.tokens = 0
        self.parts: list[str] = []

    def _verdict(self, stop: bool, input_ids: Any) -> Any:
        """The criterion's answer as a tensor, made once per value (it runs every token)."""
        key = (stop, int(input_ids.shape[0]), input_ids.device)
        if key not in self._verdicts:
            self._verdicts[key] = torch.full(
                (key[1],), stop, dtype=torch.bool, device=input_ids.device
            )
        return self._verdicts[key]

    def _release(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self._job.post(TextDelta(text))

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        length = int(input_ids.shape[1])
        new = (
            [int(input_ids[0, -1])]
            if length == self._seen + 1
            else input_ids[0, self._seen :].tolist()
        )
        self._seen = length
        self.tokens += len(new)
        self._release(self._scanner.feed(self._decoder.push(new)))
        if self.tokens % TEXT_PROGRESS_EVERY == 0 or self.tokens == self._limit:
            self._job.post(
                Progress(
                    desc="answer",
                    index=self.tokens,
                    length=self._limit,
                    unit="tokens",
                    progress=self.tokens / self._limit,
                )
            )
        return self._verdict(self._job.cancelled or self._scanner.stopped, input_ids)

    def finish(self) -> str:
        """Release what was held back and return the whole answer."""
        self._release(self._scanner.feed(self._decoder.flush()))
        self._release(self._scanner.finish())
        return "".join(self.parts)


def _sampling(temperature: float, top_p: float) -> dict[str, Any]:
    """generate's sampling settings: greedy when temperature or top_p is 0 (their limit)."""
    if temperature <= 0 or top_p <= 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": None}


def _generate(loaded: LoadedModel, **kwargs: Any) -> Any:
    try:
        with torch.inference_mode():
            return loaded.model.generate(**kwargs)
    except (RuntimeError, MemoryError) as exc:
        memory = out_of_memory(exc, torch)
        if memory is None:
            raise
        raise memory from exc


def answer(loaded: LoadedModel, job: Job, request: AnswerRequest) -> UnderstandingResult:
    """Answer the conversation's last user turn, streaming ``TextDelta``s as tokens come."""
    started = time.perf_counter()
    pictures = open_images(request.prompt.images)
    text, inputs = encode(loaded.processor, request.prompt, pictures)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    room = loaded.context_tokens - prompt_tokens
    if room < 1:
        raise InvalidInputError(
            f"the conversation needs {prompt_tokens} tokens ({len(pictures)} image(s) of "
            f"{loaded.num_image_tokens} each), more than the model's {loaded.context_tokens}-token "
            "context: send fewer images or a shorter history"
        )
    if request.max_new_tokens is None:
        limit = min(request.default_max_new_tokens, room)
    elif request.max_new_tokens > room:
        raise InvalidInputError(
            f"max_new_tokens={request.max_new_tokens} does not fit: the prompt takes "
            f"{prompt_tokens} of the model's {loaded.context_tokens} tokens, leaving {room}"
        )
    else:
        limit = request.max_new_tokens
    watcher = _AnswerWatcher(job, loaded.processor.tokenizer, prompt_tokens, limit, request.stops)
    torch.manual_seed(request.seed)
    _generate(
        loaded,
        **inputs.to(loaded.device, loaded.dtype),
        generation_mode="text",
        max_new_tokens=limit,
        stopping_criteria=StoppingCriteriaList([watcher]),
        **_sampling(request.temperature, request.top_p),
    )
    if job.cancelled:
        raise Cancelled  # stopped early: never pass a cut answer off as a whole one
    return UnderstandingResult(
        text=watcher.finish(),
        seed=request.seed,
        top_p=request.top_p,
        temperature=request.temperature,
        duration=time.perf_counter() - started,
        prompt=PreparedPrompt(question=text, estimated_tokens=prompt_tokens),
        endpoint=f"local:{loaded.name}",
    )


class _ImageWatcher(LogitsProcessor):
    """Called once per image token: report progress, abort when the caller has left.

    With guidance 1 transformers adds no guidance processor yet still runs the conditional and
    the unconditional rows, and fails on the doubled batch; guidance 1 means the conditional
    scores alone, so ``conditional_only`` keeps those.
    """

    def __init__(self, job: Job, length: int, *, conditional_only: bool = False) -> None:
        self._job = job
        self._length = length
        self._conditional_only = conditional_only
        self.steps = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._job.cancelled:
            raise Cancelled
        self.steps += 1
        if self.steps % IMAGE_PROGRESS_EVERY == 0 or self.steps == self._length:
            self._job.post(
                Progress(
                    desc="image tokens",
                    index=self.steps,
                    length=self._length,
                    unit="image tokens",
                    progress=self.steps / self._length,
                )
            )
        if self._conditional_only:
            return scores[: scores.shape[0] // 2]
        return scores


def _png(pixels: Any, upscale: bool) -> bytes:
    from PIL import Image

    picture = Image.fromarray(pixels)
    if upscale:
        picture = picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def to_png(decoded: Any, image_processor: Any, *, upscale: bool = False) -> list[bytes]:
    """Decoder output (batch, height, width, channels; normalized) → PNG bytes per image.

    The normalization is undone with the processor's own mean and std, as its ``postprocess``
    does (which some transformers versions fail on for channels-last input).
    """
    mean = torch.tensor(image_processor.image_mean, dtype=torch.float32)
    std = torch.tensor(image_processor.image_std, dtype=torch.float32)
    pixels = (decoded.detach().float().cpu() * std + mean).clamp(0, 1).mul(255).round()
    return [_png(image, upscale) for image in pixels.to(torch.uint8).numpy()]


def draw(loaded: LoadedModel, job: Job, request: DrawRequest) -> GenerationResult:
    """Draw ``num_images`` images for the prompt with classifier-free guidance."""
    started = time.perf_counter()
    processor = loaded.processor
    turns = [{"role": "user", "content": [{"type": "text", "text": request.prompt}]}]
    rendered = processor.apply_chat_template(turns, add_generation_prompt=True)
    inputs = processor(text=[rendered], generation_mode="image", return_tensors="pt")
    prompt_tokens = int(inputs["input_ids"].shape[1])
    if prompt_tokens + loaded.num_image_tokens > loaded.context_tokens:
        raise InvalidInputError(
            f"the prompt takes {prompt_tokens} tokens; with the {loaded.num_image_tokens} image "
            f"tokens it must fit the model's {loaded.context_tokens}-token context"
        )
    watcher = _ImageWatcher(job, loaded.num_image_tokens, conditional_only=request.guidance <= 1.0)
    sampling: dict[str, Any] = (
        {"do_sample": True, "temperature": request.temperature}
        if request.temperature > 0
        else {"do_sample": False, "temperature": None}
    )
    torch.manual_seed(request.seed)
    tokens = _generate(
        loaded,
        **inputs.to(loaded.device),
        generation_mode="image",
        guidance_scale=request.guidance,
        num_return_sequences=request.num_images,
        logits_processor=LogitsProcessorList([watcher]),
        top_p=None,
        top_k=None,
        **sampling,
    )
    with torch.inference_mode():
        decoded = loaded.model.decode_image_tokens(tokens)
    images = to_png(decoded, processor.image_processor, upscale=request.upscale)
    return GenerationResult(
        images=tuple(GeneratedImage(data, "image/png") for data in images),
        seed=request.seed,
        guidance=request.guidance,
        temperature=request.temperature,
        duration=time.perf_counter() - started,
        endpoint=f"local:{loaded.name}",
    )
