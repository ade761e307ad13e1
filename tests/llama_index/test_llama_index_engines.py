"""LlamaIndex engines driving JanusPro: query engines, a chat engine and multimodal RAG.

Everything runs offline: MockEmbedding for vectors, LlamaIndex's bundled tokenizer cache, and
the Space from a cassette (sockets are blocked in the replay tier) or the local replica. Node
ids are fixed because MockEmbedding ties every score and ties are broken by id, so prompts
(and thus the recorded requests) are the same on every run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from li_support import EventRecorder, make_png
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.chat_engine.types import ChatMode
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.prompts import PromptTemplate
from llama_index.core.schema import ImageNode, TextNode

from janus_space.replica import parse_understanding_report
from llama_index_janus import JanusPro, JanusStatusEvent

FACTS = [
    TextNode(id_="fact-1", text="Llamas live in the Andes mountains."),
    TextNode(id_="fact-2", text="Janus-Pro answers questions about one image at a time."),
]
QUESTION = "Where do llamas live?"


def text_index() -> VectorStoreIndex:
    return VectorStoreIndex(list(FACTS), embed_model=MockEmbedding(embed_dim=8))


def check_text_answer(answer: str) -> None:
    report = parse_understanding_report(answer)
    assert (report.width, report.height) == (384, 384)  # text only: the placeholder image
    assert "Llamas live in the Andes mountains." in report.question
    assert "Janus-Pro answers questions about one image at a time." in report.question
    assert f"Query: {QUESTION}" in report.question
    # LlamaIndex's QA system prompt was flattened in front of the question by the core.
    assert report.question.startswith("You are an expert Q&A system")


# -- query engines ---------------------------------------------------------------------------


def test_query_engine_sync(llm: JanusPro) -> None:
    response = text_index().as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    assert isinstance(response, Response)
    check_text_answer(str(response))
    assert len(response.source_nodes) == 2


async def test_query_engine_async(llm: JanusPro) -> None:
    response = await text_index().as_query_engine(llm=llm, similarity_top_k=2).aquery(QUESTION)
    assert isinstance(response, Response)
    check_text_answer(str(response))


def test_query_engine_streaming(llm: JanusPro, events: EventRecorder) -> None:
    engine = text_index().as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    response = engine.query(QUESTION + " [slow:1]")
    assert isinstance(response, StreamingResponse)
    tokens = list(response.response_gen)
    # Status chunks stream as empty tokens, so the joined text is exactly the answer.
    assert "" in tokens
    answer = "".join(tokens)
    assert parse_understanding_report(answer).question.endswith(
        f"Query: {QUESTION} [slow:1]\nAnswer:"
    )
    assert any(event.kind == "progress" for event in events.of(JanusStatusEvent))


async def test_query_engine_async_streaming(llm: JanusPro) -> None:
    engine = text_index().as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    response = await engine.aquery(QUESTION)
    assert isinstance(response, AsyncStreamingResponse)
    check_text_answer("".join([token async for token in response.async_response_gen()]))


# -- a chat engine over several turns --------------------------------------------------------


def test_context_chat_engine_keeps_history(llm: JanusPro) -> None:
    engine = text_index().as_chat_engine(
        chat_mode=ChatMode.CONTEXT,
        llm=llm,
        similarity_top_k=1,
        memory=ChatMemoryBuffer.from_defaults(token_limit=3000),
    )
    first = engine.chat("Tell me about llamas.")
    first_report = parse_understanding_report(first.response)
    assert "Earlier conversation" not in first_report.question
    assert first_report.question.endswith("Tell me about llamas.")

    second = engine.chat("And where exactly?")
    second_report = parse_understanding_report(second.response)
    assert "Earlier conversation:\nUser: Tell me about llamas.\nAssistant: [replica]" in (
        second_report.question
    )
    assert second_report.question.endswith("And where exactly?")

    streamed = engine.stream_chat("Say it once more.")
    third = "".join(streamed.response_gen)
    third_report = parse_understanding_report(third)
    assert "User: And where exactly?" in third_report.question
    assert third_report.question.endswith("Say it once more.")
    assert len(engine.chat_history) == 6


async def test_context_chat_engine_async(llm: JanusPro) -> None:
    engine = text_index().as_chat_engine(
        chat_mode=ChatMode.CONTEXT,
        llm=llm,
        similarity_top_k=1,
        memory=ChatMemoryBuffer.from_defaults(token_limit=3000),
    )
    first = await engine.achat("Hello llamas.")
    assert parse_understanding_report(first.response).question.endswith("Hello llamas.")
    streamed = await engine.astream_chat("Again?")
    answer = "".join([token async for token in streamed.async_response_gen()])
    report = parse_understanding_report(answer)
    assert "User: Hello llamas." in report.question
    assert report.question.endswith("Again?")


# -- multimodal RAG --------------------------------------------------------------------------

IMAGES = {"image-a": (40, 30, "red"), "image-b": (50, 20, "blue")}


def multimodal_index() -> VectorStoreIndex:
    nodes: list[TextNode] = [
        # Metadata keeps the image nodes in the index (an image node with neither text nor
        # metadata is dropped) and reaches the prompt as text.
        ImageNode(
            id_=node_id,
            image=base64.b64encode(make_png(w, h, color)).decode(),
            metadata={"caption": f"a {color} picture"},
        )
        for node_id, (w, h, color) in IMAGES.items()
    ]
    nodes.append(TextNode(id_="a-text", text="Red and blue are primary colours."))
    return VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))


def space_calls(events: EventRecorder) -> list[tuple[int, int]]:
    """The image size the Space reported for each LLM call, in call order."""
    reports = [
        parse_understanding_report(event.response.message.content or "")
        for event in events.of(LLMChatEndEvent)
    ]
    return [(report.width, report.height) for report in reports]


# Room for one image (LlamaIndex counts 2125 tokens for it) beside its caption; the default
# window is sized for text and sends an image apart from the text it came with.
MULTIMODAL_WINDOW = 3300


def retrieved_image_sizes(response: Response) -> list[tuple[int, int]]:
    return [
        IMAGES[n.node.node_id][:2] for n in response.source_nodes if isinstance(n.node, ImageNode)
    ]


@pytest.mark.filterwarnings("error::janus_space.ImagesDroppedWarning")
def test_multimodal_rag_sends_each_retrieved_image(llm: JanusPro, events: EventRecorder) -> None:
    wide = llm.model_copy(update={"context_window": MULTIMODAL_WINDOW})
    engine = multimodal_index().as_query_engine(llm=wide, multimodal=True, similarity_top_k=3)
    response = engine.query("Which colours are shown?")
    assert isinstance(response, Response)
    retrieved = retrieved_image_sizes(response)
    assert sorted(retrieved) == sorted(size[:2] for size in IMAGES.values())
    # LlamaIndex packs context by its token estimate (an image counts 2125 tokens against the
    # window), so each call carries one image: first the best-ranked, then a refine call.
    assert space_calls(events) == retrieved
    last = parse_understanding_report(str(response))
    assert (last.width, last.height) == retrieved[-1]
    assert "Which colours are shown?" in last.question


async def test_multimodal_rag_async_top_image(llm: JanusPro, events: EventRecorder) -> None:
    wide = llm.model_copy(update={"context_window": MULTIMODAL_WINDOW})
    engine = multimodal_index().as_query_engine(llm=wide, multimodal=True, similarity_top_k=1)
    response = await engine.aquery("What is in the picture?")
    assert isinstance(response, Response)
    (retrieved,) = retrieved_image_sizes(response)
    report = parse_understanding_report(str(response))
    assert (report.width, report.height) == retrieved
    assert "caption: a " in report.question
    assert space_calls(events) == [retrieved]


# -- global Settings and the LLM's prompt helpers --------------------------------------------


@pytest.fixture
def restore_settings() -> Iterator[None]:
    saved = (Settings._llm, Settings._embed_model)
    try:
        yield
    finally:
        Settings._llm, Settings._embed_model = saved


@pytest.mark.usefixtures("restore_settings")
def test_settings_llm_and_system_prompt(space_url: str) -> None:
    with JanusPro(base_url=space_url, max_retries=0, system_prompt="Be terse.") as llm:
        Settings.llm = llm
        Settings.embed_model = MockEmbedding(embed_dim=8)
        answer = str(VectorStoreIndex(list(FACTS)).as_query_engine().query(QUESTION))
        assert parse_understanding_report(answer).question.startswith("Be terse.\n\nYou are")
        said = llm.predict(PromptTemplate("Say {word}."), word="hi")
        assert parse_understanding_report(said).question == "Be terse.\n\nSay hi."
