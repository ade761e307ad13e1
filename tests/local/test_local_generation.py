"""Image generation on the tiny model: PNG images of the model's size, counts, seeds, progress."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
from conftest import ModelSpy, load
from local_support import collect
from PIL import Image
from tiny_janus import TinyJanus

from janus_space import GenerationResult, InvalidInputError, Progress, Queued, Started
from janus_space.local import LocalJanus


def _sizes(result: GenerationResult) -> list[tuple[str | None, tuple[int, int]]]:
    sizes = []
    for image in result.images:
        with Image.open(io.BytesIO(image.data)) as picture:
            sizes.append((picture.format, picture.size))
    return sizes


@pytest.mark.parametrize("count", [1, 3, 16])
async def test_the_asked_number_of_png_images_at_the_model_size(
    backend: LocalJanus, tiny: TinyJanus, count: int
) -> None:
    result = await backend.generate("a red fox", num_images=count, seed=count)
    side = tiny.image_side
    assert _sizes(result) == [("PNG", (side, side))] * count
    assert all(image.mime_type == "image/png" for image in result.images)
    assert result.endpoint == f"local:{backend.model}"
    assert (result.seed, result.guidance, result.temperature) == (count, 5.0, 1.0)


async def test_five_images_by_default_like_the_space(backend: LocalJanus) -> None:
    assert len((await backend.generate("a boat")).images) == 5


async def test_upscale_doubles_the_side(tiny: TinyJanus) -> None:
    janus = load(tiny, upscale=True)
    try:
        result = await janus.generate("a tree", num_images=2)
        assert _sizes(result) == [("PNG", (2 * tiny.image_side, 2 * tiny.image_side))] * 2
    finally:
        await janus.aclose()


async def test_the_seed_decides_the_images(backend: LocalJanus) -> None:
    first = await backend.generate("a cloud", num_images=2, seed=1)
    again = await backend.generate("a cloud", num_images=2, seed=1)
    other = await backend.generate("a cloud", num_images=2, seed=2)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    assert [i.data for i in first.images] != [i.data for i in other.images]
    assert first.images[0].data != first.images[1].data  # each image its own sample


async def test_greedy_generation_at_temperature_zero_ignores_the_seed(
    backend: LocalJanus,
) -> None:
    one = await backend.generate("a lamp", num_images=1, seed=1, temperature=0.0)
    two = await backend.generate("a lamp", num_images=1, seed=2, temperature=0.0)
    assert one.images[0].data == two.images[0].data


async def test_progress_counts_image_tokens_of_the_whole_batch(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    items = await collect(backend.stream_generate("a bridge", num_images=4))
    assert isinstance(items[0], Queued) and isinstance(items[1], Started)
    assert isinstance(items[-1], GenerationResult)
    steps = [item for item in items if isinstance(item, Progress)]
    assert steps and steps[-1].index == steps[-1].length == tiny.num_image_tokens
    assert all(step.unit == "image tokens" for step in steps)
    assert spy.image_tokens == tiny.num_image_tokens  # one head pass per token, all images


async def test_guidance_reaches_the_guidance_processor_and_one_means_none(
    backend: LocalJanus, tiny: TinyJanus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers.generation import logits_process

    scales: list[float] = []
    real_init = logits_process.ClassifierFreeGuidanceLogitsProcessor.__init__

    def init(self: object, guidance_scale: float) -> None:
        scales.append(guidance_scale)
        real_init(self, guidance_scale)  # type: ignore[arg-type]

    monkeypatch.setattr(logits_process.ClassifierFreeGuidanceLogitsProcessor, "__init__", init)
    await backend.generate("a kite", num_images=2, guidance=7.5)
    assert scales == [7.5]
    # guidance 1 is "no guidance": transformers adds no processor and would fail on the
    # doubled batch; the backend keeps the conditional scores and still draws the images
    result = await backend.generate("a kite", num_images=2, guidance=1.0)
    assert scales == [7.5] and len(result.images) == 2


async def test_the_prompt_reaches_the_model_through_the_chat_template(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    await backend.generate("a violet owl", num_images=2)
    rows = spy.embedded[0]  # 2 conditional rows, then 2 unconditional ones for guidance
    assert rows.shape[0] == 4
    tokenizer = backend.processor.tokenizer
    prompt = tokenizer.decode(rows[0])
    assert prompt.endswith("<|User|>: a violet owl\n\n<|Assistant|>:<begin_of_image>"), prompt
    # the unconditional rows keep only the begin-of-image token (found through the
    # boi_token_id the backend restored after the reload) and pad out the prompt
    boi = tokenizer.convert_tokens_to_ids(backend.processor.image_start_token)
    unconditional = rows[2].tolist()
    assert unconditional[-1] == boi
    assert set(unconditional[:-1]) <= {tokenizer.pad_token_id, tokenizer.bos_token_id}
    assert spy.outputs[0].shape == (2, tiny.num_image_tokens)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_images": 0}, "num_images must be 1 to 16"),
        ({"num_images": 17}, "num_images must be 1 to 16"),
        ({"num_images": True}, "num_images"),
        ({"guidance": 0.5}, "guidance"),
        ({"temperature": 1.5}, "temperature"),
        ({"seed": 2**32}, "seed"),
    ],
)
async def test_bad_settings_are_refused_before_anything_runs(
    backend: LocalJanus, spy: ModelSpy, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await backend.generate("a cat", **settings)  # type: ignore[arg-type]
    assert spy.image_tokens == 0 and backend._worker.thread is None


async def test_an_empty_prompt_is_refused(backend: LocalJanus) -> None:
    with pytest.raises(InvalidInputError, match="prompt is empty"):
        await backend.generate("   ")
