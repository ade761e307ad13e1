"""A local replica of the Janus-Pro-7B Space: the same Gradio page, deterministic stand-ins.

Tests and cassette recordings talk to it over the real Gradio protocol. The page keeps the
Space's component order, which fixes the ids that ``GET /config`` reports (fn_index 2 /
trigger 10 for understanding, 3 / 20 for generation). Instead of the model, the functions
report what they received, and markers in the text (``[quota]``, ``[slow:3]``, ...) provoke
the Space's failures and status messages. gradio is imported only when an app is built, so
the report readers below work without it; the rest of janus_space never imports gradio.

Run it with ``python -m janus_space.replica --port 7860``.
"""

from __future__ import annotations

import argparse
import ast
import base64
import io
import json
import os
import re
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PIL import Image

if TYPE_CHECKING:
    import gradio as gr

__all__ = [
    "APP_ERROR_MESSAGE",
    "CALL_LOG_ENV",
    "FAULTS_ENV",
    "HEARTBEAT_SECONDS",
    "IMAGES_PER_PROMPT",
    "IMAGE_SIDE",
    "NO_GPU_MESSAGE",
    "QUOTA_MESSAGE",
    "Faults",
    "GenerationReport",
    "UnderstandingReport",
    "build_app",
    "main",
    "parse_faults",
    "parse_understanding_report",
    "prompt_checksum",
    "read_call_log",
    "read_generation_report",
    "reply_marker",
    "scripted_answer",
    "serve",
    "stand_in_images",
    "understanding_report",
]

QUOTA_MESSAGE = (
    "You have exceeded your GPU quota (60s requested vs. 42s left). Try again in 0:00:07. "
    '<a href="https://huggingface.co/join">Sign up</a>'
)
NO_GPU_MESSAGE = "No GPU was available"
APP_ERROR_MESSAGE = "Something <b>bad</b> happened"
HEARTBEAT_SECONDS = 16.5  # Gradio sends a heartbeat after 15 s without messages
SLOW_STEP_SECONDS = 0.2  # twice Gradio's 0.1 s progress interval: steps are rarely coalesced
IMAGE_SIDE = 768  # the Space upsamples Janus's 384x384 images to this
IMAGES_PER_PROMPT = 5
DEFAULT_MAX_QUEUE_SIZE = 20
DEFAULT_CONCURRENCY_LIMIT = 1  # Gradio's default: one job per function at a time

_MARKER = re.compile(
    r"\[(quota|nogpu|crash|apperror|heartbeat|slow:(\d+)|reply:([A-Za-z0-9_=-]+))\]"
)
_REPORT_SLOT = "{{report}}"
_REPORT = re.compile(
    r"\[replica\] image=(\d+)x(\d+) question=(.*) seed=(\S+) top_p=(\S+) temperature=(\S+)",
    re.DOTALL,
)


# --- Fault markers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What the markers in a question or prompt ask the stand-in to do.

    ``replies`` come from ``[reply:<base64>]`` markers (see :func:`reply_marker`): the
    understanding stand-in answers with one of these texts instead of its report.
    """

    quota: bool = False
    no_gpu: bool = False
    crash: bool = False
    app_error: bool = False
    heartbeat: bool = False
    slow_steps: int = 0
    replies: tuple[str, ...] = ()


def parse_faults(text: str) -> Faults:
    """Read the ``[marker]`` tokens in ``text``; unknown brackets are ordinary text."""
    found: dict[str, Any] = {}
    replies: list[str] = []
    for match in _MARKER.finditer(text):
        name, steps, reply = match.group(1), match.group(2), match.group(3)
        if reply is not None:
            replies.append(base64.urlsafe_b64decode(reply).decode("utf-8"))
        elif steps is not None:
            found["slow_steps"] = int(steps)
        else:
            key = {"nogpu": "no_gpu", "apperror": "app_error"}.get(name, name)
            found[key] = True
    return Faults(**found, replies=tuple(replies))


def reply_marker(*replies: str) -> str:
    """Markers making the understanding stand-in answer with ``replies`` (scripted answers).

    The stand-in cannot follow instructions, so a test that needs, say, a JSON answer scripts
    it. Each request is answered with the first reply not yet given in the question's
    history (an ``Assistant: <reply>`` turn, as the flattened conversation of a follow-up
    holds it); once all were given, the last. ``{{report}}`` in a reply becomes the
    stand-in's report as a JSON string, so a scripted answer can still say what the Space
    received.
    """
    return "".join(
        f"[reply:{base64.urlsafe_b64encode(text.encode('utf-8')).decode('ascii')}]"
        for text in replies
    )


def scripted_answer(replies: Sequence[str], question: str, report: str) -> str:
    """The reply :func:`reply_marker` chooses for ``question`` (see there)."""

    def given_before(reply: str) -> bool:
        lead, *rest = [part.strip() for part in reply.split(_REPORT_SLOT)]
        start = lead or json.dumps("[replica] ")[:-1]  # a reply opening with the report
        return f"Assistant: {start}" in question and all(part in question for part in rest)

    chosen = next((r for r in replies if not given_before(r)), replies[-1])
    return chosen.replace(_REPORT_SLOT, json.dumps(report))


# --- Understanding report --------------------------------------------------------------------


@dataclass(frozen=True)
class UnderstandingReport:
    """What the understanding stand-in received, read back from its answer."""

    width: int
    height: int
    question: str
    seed: str
    top_p: str
    temperature: str


def understanding_report(
    width: int, height: int, question: str, seed: object, top_p: object, temperature: object
) -> str:
    """The stand-in's answer: one line naming every input, so tests can check them exactly."""
    return (
        f"[replica] image={width}x{height} question={question!r} seed={seed} "
        f"top_p={top_p} temperature={temperature}"
    )


def parse_understanding_report(text: str) -> UnderstandingReport:
    """Inverse of :func:`understanding_report`; raises ValueError for any other text."""
    match = _REPORT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a replica report: {text!r}")
    width, height, question, seed, top_p, temperature = match.groups()
    parsed = ast.literal_eval(question)
    if not isinstance(parsed, str):
        raise ValueError(f"not a replica report: {text!r}")
    return UnderstandingReport(int(width), int(height), parsed, seed, top_p, temperature)


# --- Generation report, drawn into the images ------------------------------------------------

_GRID = 16  # 16x16 cells of 48 px: 256 bits, robust to lossy WebP
_CELL = IMAGE_SIDE // _GRID
_PAYLOAD = struct.Struct(">2sBBqddI")  # magic, index, flags, seed, guidance, temperature, crc
_MAGIC = b"JR"
_PALETTE = ((255, 214, 214), (214, 255, 214), (214, 214, 255), (255, 255, 200), (230, 210, 255))


@dataclass(frozen=True)
class GenerationReport:
    """What the generation stand-in received, read back from one of its images."""

    index: int
    seed: int | None
    guidance: float
    temperature: float
    prompt_crc32: int


def prompt_checksum(prompt: str) -> int:
    """CRC-32 of the UTF-8 prompt, as drawn into every stand-in image."""
    return zlib.crc32(prompt.encode("utf-8"))


def stand_in_images(
    prompt: str, seed: int | None, guidance: float, temperature: float
) -> list[Image.Image]:
    """Five 768x768 images; each draws its index and all inputs as a grid of light/dark cells."""
    images = []
    for index in range(IMAGES_PER_PROMPT):
        payload = _PAYLOAD.pack(
            _MAGIC,
            index,
            0 if seed is None else 1,
            0 if seed is None else int(seed),
            float(guidance),
            float(temperature),
            prompt_checksum(prompt),
        )
        bits = [(byte >> (7 - k)) & 1 for byte in payload for k in range(8)]
        light = _PALETTE[index % len(_PALETTE)]
        dark = tuple(c // 8 for c in light)
        cells = Image.new("RGB", (_GRID, _GRID))
        cells.putdata([light if bit else dark for bit in bits])
        images.append(cells.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.NEAREST))
    return images


def read_generation_report(image: Image.Image | bytes) -> GenerationReport:
    """Decode a stand-in image (a PIL image or encoded bytes, e.g. the WebP the Space serves)."""
    picture = Image.open(io.BytesIO(image)) if isinstance(image, bytes) else image
    gray = picture.convert("L")
    if gray.size != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"not a replica image: size {gray.size}")
    bits = []
    for row in range(_GRID):
        for col in range(_GRID):
            x, y = col * _CELL + _CELL // 2, row * _CELL + _CELL // 2
            bits.append(1 if gray.getpixel((x, y)) > 128 else 0)  # type: ignore[operator]
    payload = bytes(
        sum(bit << (7 - k) for k, bit in enumerate(bits[i : i + 8])) for i in range(0, 256, 8)
    )
    magic, index, flags, seed, guidance, temperature, crc = _PAYLOAD.unpack(payload)
    if magic != _MAGIC:
        raise ValueError("not a replica image: no marker")
    return GenerationReport(index, seed if flags & 1 else None, guidance, temperature, crc)


# --- The record of calls the stand-ins ran ---------------------------------------------------

CALL_LOG_ENV = "JANUS_REPLICA_CALL_LOG"
"""Environment variable naming a file where every stand-in call that runs appends one line."""


def _record_call(fn: str, text: str) -> None:
    """Append ``{"fn", "text", "at"}`` to the call log (when one is set) before the work starts.

    A job Gradio drops from its queue never reaches its function, so tests can tell "the Space
    ran it" (it spent GPU time) from "it was cancelled while queued" by reading this file.
    """
    path = os.environ.get(CALL_LOG_ENV)
    if not path:
        return
    line = json.dumps({"fn": fn, "text": text, "at": time.time()}) + "\n"
    with open(path, "a", encoding="utf-8") as log:  # one short write per line: appends stay whole
        log.write(line)


def read_call_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The calls recorded in ``path`` (oldest first); an absent file means none ran."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- The stand-in functions and the page -----------------------------------------------------


def _import_gradio() -> Any:
    """Import gradio with its analytics (network calls) turned off."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio

    return gradio


def _example_files() -> tuple[str, str]:
    """Two small PNGs for the understanding examples (the Space ships doge.png/equation.png)."""
    folder = Path(tempfile.gettempdir()) / "janus-replica-examples"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, colour in (("doge.png", (200, 160, 60)), ("equation.png", (250, 250, 250))):
        path = folder / name
        if not path.exists():
            Image.new("RGB", (64, 48), colour).save(path)
        paths.append(str(path))
    return paths[0], paths[1]


FAULTS_ENV = "JANUS_REPLICA_FAULTS"
"""Environment variable of markers acted out on every call (``--faults "[quota]"``): a replica
that fails every call one way whatever it is asked, e.g. one whose caller's quota is spent."""


def _with_fixed_faults(faults: Faults) -> Faults:
    """``faults`` plus the markers of ``FAULTS_ENV`` (the question's own win where both say)."""
    fixed = parse_faults(os.environ.get(FAULTS_ENV, ""))
    return Faults(
        **{f.name: getattr(faults, f.name) or getattr(fixed, f.name) for f in fields(fixed)}
    )


def _run_faults(faults: Faults, progress: Callable[..., Any], gradio: Any) -> None:
    """Act out the markers: ZeroGPU refusals first, then slow work, then function failures."""
    faults = _with_fixed_faults(faults)
    if faults.quota:
        raise gradio.Error(QUOTA_MESSAGE)
    if faults.no_gpu:
        raise gradio.Error(NO_GPU_MESSAGE)
    if faults.slow_steps:
        gradio.Info(f"replica: starting {faults.slow_steps} slow steps")
        for step in range(faults.slow_steps):
            progress((step, faults.slow_steps), desc="replica working", unit="steps")
            time.sleep(SLOW_STEP_SECONDS)
        gradio.Warning("replica: slow steps done")
    if faults.heartbeat:
        time.sleep(HEARTBEAT_SECONDS)
    if faults.crash:
        raise RuntimeError("replica crash requested")
    if faults.app_error:
        raise gradio.Error(APP_ERROR_MESSAGE)


def build_app(
    *,
    max_queue_size: int | None = DEFAULT_MAX_QUEUE_SIZE,
    concurrency_limit: int | None = DEFAULT_CONCURRENCY_LIMIT,
) -> gr.Blocks:
    """The Space's page with stand-in functions, queued like the Space."""
    gradio = _import_gradio()

    def multimodal_understanding(
        image: Any,
        question: str,
        seed: int,
        top_p: float,
        temperature: float,
        progress: Any = gradio.Progress(),  # noqa: B008 - gradio finds progress by this default
    ) -> str:
        _record_call("multimodal_understanding", question)
        picture = Image.fromarray(image)  # like the Space: no image -> AttributeError
        faults = parse_faults(question)
        _run_faults(faults, progress, gradio)
        report = understanding_report(
            picture.width, picture.height, question, seed, top_p, temperature
        )
        return scripted_answer(faults.replies, question, report) if faults.replies else report

    def generate_image(
        prompt: str,
        seed: int | None = None,
        guidance: float = 5,
        t2i_temperature: float = 1.0,
        progress: Any = gradio.Progress(),  # noqa: B008
    ) -> list[Image.Image]:
        _record_call("generate_image", prompt)
        _run_faults(parse_faults(prompt), progress, gradio)
        return stand_in_images(prompt, seed, guidance, t2i_temperature)

    doge, equation = _example_files()
    with gradio.Blocks() as demo:
        gradio.Markdown(value="# Multimodal Understanding (replica)")
        with gradio.Row():
            image_input = gradio.Image()
            with gradio.Column():
                question_input = gradio.Textbox(label="Question")
                und_seed_input = gradio.Number(label="Seed", precision=0, value=42)
                top_p = gradio.Slider(minimum=0, maximum=1, value=0.95, step=0.05, label="top_p")
                temperature = gradio.Slider(
                    minimum=0, maximum=1, value=0.1, step=0.05, label="temperature"
                )
        understanding_button = gradio.Button("Chat")
        understanding_output = gradio.Textbox(label="Response")
        gradio.Examples(
            label="Multimodal Understanding examples",
            examples=[
                ["explain this meme", doge],
                ["Convert the formula into latex code.", equation],
            ],
            inputs=[question_input, image_input],
        )
        gradio.Markdown(value="# Text-to-Image Generation (replica)")
        with gradio.Row():
            cfg_weight_input = gradio.Slider(
                minimum=1, maximum=10, value=5, step=0.5, label="CFG Weight"
            )
            t2i_temperature = gradio.Slider(
                minimum=0, maximum=1, value=1.0, step=0.05, label="temperature"
            )
        prompt_input = gradio.Textbox(label="Prompt")
        seed_input = gradio.Number(label="Seed (Optional)", precision=0, value=12345)
        generation_button = gradio.Button("Generate Images")
        image_output = gradio.Gallery(label="Generated Images", columns=2, rows=2, height=300)
        gradio.Examples(
            label="Text to image generation examples.",
            examples=["A glass of red wine on a reflective surface.", "The face of a girl"],
            inputs=prompt_input,
        )
        understanding_button.click(
            multimodal_understanding,
            inputs=[image_input, question_input, und_seed_input, top_p, temperature],
            outputs=understanding_output,
        )
        generation_button.click(
            fn=generate_image,
            inputs=[prompt_input, seed_input, cfg_weight_input, t2i_temperature],
            outputs=image_output,
        )
    demo.queue(max_size=max_queue_size, default_concurrency_limit=concurrency_limit)
    return cast("gr.Blocks", demo)


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    max_queue_size: int | None = DEFAULT_MAX_QUEUE_SIZE,
    concurrency_limit: int | None = DEFAULT_CONCURRENCY_LIMIT,
) -> None:
    """Serve the replica until interrupted (no share link, no SSR, errors hidden like the Space)."""
    app = build_app(max_queue_size=max_queue_size, concurrency_limit=concurrency_limit)
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m janus_space.replica [--host H] [--port N] ...``."""
    parser = argparse.ArgumentParser(prog="python -m janus_space.replica", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-queue-size", type=int, default=DEFAULT_MAX_QUEUE_SIZE)
    parser.add_argument("--concurrency-limit", type=int, default=DEFAULT_CONCURRENCY_LIMIT)
    parser.add_argument(
        "--call-log", default=None, help=f"append every call run to this file (or ${CALL_LOG_ENV})"
    )
    parser.add_argument(
        "--faults",
        default=None,
        help=f"markers acted out on every call, e.g. '[quota]' (or ${FAULTS_ENV})",
    )
    args = parser.parse_args(argv)
    if args.call_log:
        os.environ[CALL_LOG_ENV] = args.call_log
    if args.faults:
        os.environ[FAULTS_ENV] = args.faults
    serve(
        args.host,
        args.port,
        max_queue_size=args.max_queue_size,
        concurrency_limit=args.concurrency_limit,
    )


if __name__ == "__main__":
    main()
