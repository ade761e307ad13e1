"""Understanding on the tiny model: streaming, images, history, stops, lengths, sampling.

The answers are random tokens; what is checked is what the model received (through hooks)
and how the backend treated what it generated.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
from conftest import ModelSpy, load, spy_on
from local_support import collect, deltas, png, result
from tiny_janus import TinyJanus

from janus_space import InvalidInputError, Message, Progress, Queued, Started, TextDelta
from janus_space.local import LocalJanus


def _new_tokens(spy: ModelSpy) -> Any:
    """The ids the last generate call added after its prompt."""
    return spy.outputs[-1][0, spy.prompts[0].shape[-1] :]


async def test_the_answer_streams_token_by_token_and_the_deltas_join_to_the_result(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    items = await collect(
        backend.stream_understand("Tell a story.", max_new_tokens=40, temperature=1.0, seed=3)
    )
    answer = result(items)
    pieces = deltas(items)
    assert "".join(pieces) == answer.text
    assert answer.text == backend.processor.decode(_new_tokens(spy), skip_special_tokens=True)
    # one delta per token that shows text (special tokens decode to nothing)
    assert len(pieces) >= spy.text_tokens - 2 >= 10
    assert isinstance(items[0], Queued) and isinstance(items[1], Started)
    assert answer.endpoint == f"local:{backend.model}"
    assert answer.prompt is not None and answer.prompt.estimated_tokens == spy.prompts[0].shape[-1]


async def test_deltas_reach_the_caller_while_the_model_still_generates(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    spy.gate_at = 8  # the model waits at its 8th token until the caller has seen text
    stream = backend.stream_understand("Go on.", max_new_tokens=30, temperature=1.0)
    first_delta_at = None
    async for item in stream:
        if isinstance(item, TextDelta) and first_delta_at is None:
            first_delta_at = spy.text_tokens
            spy.gate.set()
    assert first_delta_at is not None and first_delta_at < 8
    assert not spy.gate_timed_out


async def test_progress_counts_answer_tokens(backend: LocalJanus, spy: ModelSpy) -> None:
    items = await collect(backend.stream_understand("Count.", max_new_tokens=35, temperature=1.0))
    steps = [item for item in items if isinstance(item, Progress)]
    assert steps and all(step.unit == "tokens" and step.length == 35 for step in steps)
    indices = [step.index for step in steps]
    assert indices == sorted(indices) and indices[-1] <= spy.text_tokens


async def test_every_image_of_every_turn_reaches_the_model(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    conversation = [
        Message("user", "What is this?", (png(colour=(255, 0, 0)),)),
        Message("assistant", "A red square."),
        Message("user", "And these two?", (png(colour=(0, 255, 0)), png(40, 40, (0, 0, 255)))),
    ]
    await backend.chat(conversation, max_new_tokens=3)
    ids = spy.prompts[0]
    assert int((ids == tiny.image_token_id).sum()) == 3 * tiny.num_image_tokens
    assert spy.pixels[0].shape[0] == 3
    # the images arrive in conversation order: red, green, blue
    means = spy.pixels[0].float().mean(dim=(2, 3))
    assert means[0].argmax() == 0 and means[1].argmax() == 1 and means[2].argmax() == 2


async def test_history_and_system_messages_reach_the_chat_template_as_turns(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    conversation = [
        Message("system", "You are a terse pirate."),
        Message("user", "First question?"),
        Message("assistant", "First answer."),
        Message("user", "Second question?"),
    ]
    answer = await backend.chat(conversation, max_new_tokens=2)
    seen = backend.processor.decode(spy.prompts[0][0])
    turns = [
        "System: You are a terse pirate.",
        "<|User|>: First question?",
        "<|Assistant|>: First answer.",
        "<|User|>: Second question?",
        "<|Assistant|>:",
    ]
    position = 0
    for turn in turns:  # each turn, in order
        position = seen.find(turn, position)
        assert position != -1, (turn, seen)
    assert "helpful language and vision assistant" not in seen  # the default system prompt
    assert answer.prompt is not None and "Earlier conversation" not in answer.prompt.question


async def test_without_a_system_message_janus_default_system_prompt_is_used(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    await backend.understand("Hello?", max_new_tokens=1)
    seen = backend.processor.decode(spy.prompts[0][0])
    assert "helpful language and vision assistant" in seen
    assert seen.index("helpful language") < seen.index("<|User|>: Hello?")


@pytest.mark.parametrize("limit", [1, 6, 23])
async def test_max_new_tokens_bounds_the_answer(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus, limit: int
) -> None:
    await backend.understand("Talk.", max_new_tokens=limit, temperature=1.0, seed=limit)
    new = _new_tokens(spy)
    assert spy.text_tokens == len(new)
    assert len(new) == limit or int(new[-1]) == tiny.eos_token_id


async def test_the_default_answer_length_is_the_backend_setting(
    tiny: TinyJanus,
) -> None:
    janus = load(tiny, max_new_tokens=9)
    assert janus.capabilities.max_new_tokens == 9
    spying = spy_on(janus)
    seen = next(spying)
    try:
        await janus.understand("Talk.", temperature=1.0, seed=5)
        new = _new_tokens(seen)
        assert seen.text_tokens == len(new)
        assert len(new) == 9 or int(new[-1]) == tiny.eos_token_id
    finally:
        spying.close()
        await janus.aclose()


async def test_a_stop_sequence_ends_generation_and_is_cut_from_the_answer(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    settings: dict[str, Any] = {"max_new_tokens": 80, "temperature": 1.0, "seed": 11}
    full = await backend.understand("Ramble.", **settings)
    full_tokens = spy.text_tokens
    assert len(full.text) > 30
    stop = full.text[20:23]
    cut = full.text.find(stop)
    spy.text_tokens = 0
    items = await collect(backend.stream_understand("Ramble.", stop=[stop], **settings))
    stopped = result(items)
    assert stopped.text == full.text[:cut]
    assert "".join(deltas(items)) == stopped.text
    assert spy.text_tokens < full_tokens  # generation ended at the stop, not after


async def test_the_same_seed_gives_the_same_answer_and_another_seed_another(
    backend: LocalJanus,
) -> None:
    first = await backend.understand("Pick.", max_new_tokens=25, temperature=1.0, seed=7)
    again = await backend.understand("Pick.", max_new_tokens=25, temperature=1.0, seed=7)
    other = await backend.understand("Pick.", max_new_tokens=25, temperature=1.0, seed=8)
    assert first.text == again.text
    assert first.text != other.text


@pytest.mark.parametrize("greedy", [{"temperature": 0.0}, {"top_p": 0.0}])
async def test_temperature_or_top_p_zero_decodes_greedily(
    backend: LocalJanus, greedy: dict[str, float]
) -> None:
    answers = {
        (await backend.understand("Same?", max_new_tokens=20, seed=seed, **greedy)).text
        for seed in (1, 2, 3)
    }
    assert len(answers) == 1


async def test_a_text_only_question_works(backend: LocalJanus, spy: ModelSpy) -> None:
    answer = await backend.understand("No image here.", max_new_tokens=4)
    assert spy.pixels == [] and answer.prompt is not None
    assert "<image_placeholder>" not in answer.prompt.question


async def test_a_prompt_beyond_the_context_is_refused_with_its_size(tiny: TinyJanus) -> None:
    janus = load(tiny, context_tokens=400)
    try:
        with pytest.raises(InvalidInputError, match="more than the model's 400-token context"):
            await janus.understand("word " * 200)
        with pytest.raises(InvalidInputError, match="does not fit"):
            await janus.understand("Short.", max_new_tokens=399)
        with pytest.raises(InvalidInputError, match="from 1 to 400"):
            await janus.understand("Short.", max_new_tokens=401)
    finally:
        await janus.aclose()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"messages": []}, "empty"),
        ({"messages": [Message("user", "hi"), Message("assistant", "yo")]}, "last message"),
        ({"messages": [Message("system", "only")]}, "last message"),
        ({"messages": [Message("user", " ")]}, "empty"),
        ({"messages": [Message("user", "hi", (b"not an image",))]}, "not a supported image"),
        ({"messages": [Message("system", "s", (png(),)), Message("user", "hi")]}, "system"),
        ({"stop": "STOP"}, "stop must be a list"),
        ({"seed": -1}, "seed"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
async def test_bad_input_is_refused_before_the_call_queues(
    backend: LocalJanus, spy: ModelSpy, call: dict[str, Any], message: str
) -> None:
    call.setdefault("messages", [Message("user", "hi")])
    stream = backend.stream_chat(**call)
    with pytest.raises(InvalidInputError, match=message):
        await stream.__anext__()
    await stream.aclose()
    assert spy.text_tokens == 0 and spy.prompts == []
    assert backend._worker.thread is None  # nothing was queued


async def test_concurrent_calls_each_get_their_own_answer(backend: LocalJanus) -> None:
    seeds = [21, 22, 23, 21]
    answers = await asyncio.gather(
        *(
            backend.understand("Again.", max_new_tokens=15, temperature=1.0, seed=seed)
            for seed in seeds
        )
    )
    alone = await backend.understand("Again.", max_new_tokens=15, temperature=1.0, seed=22)
    assert answers[1].text == alone.text
    assert answers[0].text == answers[3].text != answers[2].text
