"""ChatJanus and JanusPro on the local backend: one argument moves them off the Space.

What is checked is what reaches the model (images, turns, lengths, through the spy) and how
the adapters stream it; the answers themselves are the tiny model's random tokens.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

pytest.importorskip("torch")  # the local extra (in CI a missing one fails: see conftest)
pytest.importorskip("transformers")
from conftest import ModelSpy, load, spy_on
from local_support import png
from tiny_janus import TinyJanus

from janus_space import JanusWarning
from janus_space.local import LocalJanus

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
)

from langchain_janus import ChatJanus
from llama_index_janus import JanusPro


def _data_uri(data: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture
def chat(backend: LocalJanus) -> Iterator[ChatJanus]:
    model = ChatJanus(backend=backend, temperature=1.0, seed=5)
    yield model
    model.close()  # a backend passed in stays open (the backend fixture closes it)


def test_chatjanus_streams_one_chunk_per_token(
    chat: ChatJanus, backend: LocalJanus, spy: ModelSpy
) -> None:
    chunks = list(chat.stream("Tell me something.", max_tokens=30))
    texts = [chunk.content for chunk in chunks if chunk.content]
    assert len(texts) >= spy.text_tokens - 2 >= 10
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk)
    assert whole.content == "".join(texts)  # type: ignore[arg-type]
    assert whole.response_metadata["endpoint"] == f"local:{backend.model}"


async def test_chatjanus_astream_and_max_tokens_without_a_space_warning(
    chat: ChatJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", JanusWarning)
        chunks = [chunk async for chunk in chat.astream("Count.", max_tokens=7)]
    assert len([c for c in chunks if c.content]) >= 2
    new = spy.outputs[-1][0, spy.prompts[0].shape[-1] :]
    assert spy.text_tokens == len(new) and (len(new) == 7 or int(new[-1]) == tiny.eos_token_id)


async def test_chatjanus_sends_every_image_and_the_real_turns(
    chat: ChatJanus, backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    red, blue = _data_uri(png(colour=(255, 0, 0))), _data_uri(png(colour=(0, 0, 255)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", JanusWarning)  # no "one image only", no flattening
        answer = await chat.ainvoke(
            [
                SystemMessage("Answer like a sailor."),
                HumanMessage(
                    content=[
                        {"type": "text", "text": "Compare these."},
                        {"type": "image_url", "image_url": {"url": red}},
                        {
                            "type": "image",
                            "source_type": "base64",
                            "data": blue[22:],
                            "mime_type": "image/png",
                        },
                    ]
                ),
                AIMessage("Red and blue."),
                HumanMessage("Which is warmer?"),
            ],
            max_tokens=3,
        )
    assert isinstance(answer, AIMessage)
    ids = spy.prompts[0]
    assert int((ids == tiny.image_token_id).sum()) == 2 * tiny.num_image_tokens
    seen = backend.processor.decode(ids[0])
    position = 0
    for turn in (
        "System: Answer like a sailor.",
        "<|User|>:",
        "Compare these.",
        "<|Assistant|>: Red and blue.",
        "<|User|>: Which is warmer?",
    ):
        position = seen.find(turn, position)
        assert position != -1, (turn, seen)


def test_chatjanus_draws_images_locally(chat: ChatJanus, tiny: TinyJanus) -> None:
    answer = chat.invoke("a lighthouse", model="janus-pro-7b-image")
    images = [b for b in answer.content if isinstance(b, dict) and b.get("type") == "image"]
    assert len(images) == 5 and all(image["mime_type"] == "image/png" for image in images)
    assert answer.response_metadata["endpoint"].startswith("local:")


def test_janus_pro_stream_chat_yields_deltas(tiny: TinyJanus) -> None:
    backend = load(tiny, max_new_tokens=25)  # JanusPro passes no answer length of its own
    spying = spy_on(backend)
    spy = next(spying)
    llm = JanusPro(backend=backend, temperature=1.0)
    try:
        responses = list(llm.stream_chat([ChatMessage(role=MessageRole.USER, content="Go on.")]))
    finally:
        llm.close()
        spying.close()
        backend.close()
    deltas = [r.delta for r in responses if r.delta]
    assert len(deltas) >= spy.text_tokens - 2 >= 10
    assert responses[-1].message.content == "".join(deltas)


async def test_janus_pro_astream_chat_sends_several_images(
    backend: LocalJanus, spy: ModelSpy, tiny: TinyJanus
) -> None:
    llm = JanusPro(backend=backend)
    message = ChatMessage(
        role=MessageRole.USER,
        blocks=[
            ImageBlock(image=png(colour=(0, 255, 0)), image_mimetype="image/png"),
            ImageBlock(image=png(colour=(0, 0, 255)), image_mimetype="image/png"),
            ImageBlock(image=png(colour=(255, 0, 0)), image_mimetype="image/png"),
            TextBlock(text="Three pictures: which colours?"),
        ],
    )
    try:
        stream = await llm.astream_chat([message], max_tokens=4)
        deltas = [response.delta async for response in stream if response.delta]
    finally:
        await llm.aclose()
    assert deltas
    assert int((spy.prompts[0] == tiny.image_token_id).sum()) == 3 * tiny.num_image_tokens
    assert spy.pixels[0].shape[0] == 3


def test_janus_pro_metadata_comes_from_the_local_backend(backend: LocalJanus) -> None:
    metadata = JanusPro(backend=backend).metadata
    assert metadata.context_window == backend.capabilities.context_tokens
    assert metadata.num_output == backend.default_max_new_tokens
    assert metadata.model_name == f"local:{backend.model}"


async def test_janus_pro_passes_max_tokens_on_to_the_backend(
    backend: LocalJanus, spy: ModelSpy
) -> None:
    """LlamaIndex call kwargs reach the local backend (nothing is dropped on the way)."""
    from llama_index.core.llms import ChatMessage

    from llama_index_janus import JanusPro

    llm = JanusPro(backend=backend)
    await llm.achat([ChatMessage(role="user", content="count")], max_tokens=3)
    assert 1 <= spy.text_tokens <= 3
