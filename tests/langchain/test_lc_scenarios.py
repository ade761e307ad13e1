"""What LangChain users do with ChatJanus, against the replica ([live]) or its cassettes ([replay]).

The replica answers with a report of exactly what reached the Space (question, image size,
seed, top_p, temperature) and draws its inputs into the generated images, so these tests check
what was sent, not only that something came back.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from lc_support import SAMPLE_B64, SAMPLE_URL, check_slow_steps

from janus_space import AppError, QuotaExceededError
from janus_space.replica import parse_understanding_report, prompt_checksum, read_generation_report
from langchain_janus import STATUS_EVENT, ChatJanus

TOKEN = "hf_NeverShowThisTokenAnywhere1234"


def _statuses(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["data"]["status"] for e in events if e["event"] == "on_custom_event"]


class _Recorder(BaseCallbackHandler):
    """Keeps what callback handlers see: model starts, custom events, new tokens."""

    def __init__(self) -> None:
        self.starts: list[tuple[UUID, dict[str, Any], dict[str, Any]]] = []
        self.custom: list[tuple[str, dict[str, Any], UUID]] = []
        self.tokens: list[Any] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.starts.append((run_id, serialized, kwargs))

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.custom.append((name, data, run_id))

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        self.tokens.append(chunk)


# --- LCEL and conversations --------------------------------------------------------------------


def test_lcel_prompt_model_parser(space_url: str) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one word."), ("human", "What animal is {thing}?")]
    )
    with ChatJanus(base_url=space_url, seed=7, temperature=0.3) as llm:
        chain = prompt | llm | StrOutputParser()
        answer = chain.invoke({"thing": "Reynard"})
        answers = chain.batch([{"thing": "Bugs"}, {"thing": "Tom"}])
    report = parse_understanding_report(answer)
    assert report.question == "Answer in one word.\n\nWhat animal is Reynard?"
    assert (report.width, report.height) == (384, 384)  # the placeholder for a text-only question
    assert (report.seed, report.top_p, report.temperature) == ("7", "0.95", "0.3")
    assert [parse_understanding_report(a).question.rsplit("is ", 1)[1] for a in answers] == [
        "Bugs?",
        "Tom?",
    ]


async def test_multi_turn_conversation_with_an_image_in_an_earlier_turn(space_url: str) -> None:
    messages: list[BaseMessage] = [
        SystemMessage("You describe pictures."),
        HumanMessage(
            [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{SAMPLE_B64}"}},
            ]
        ),
        AIMessage("A red square, a blue circle and a green triangle."),
        HumanMessage("Which shape is blue?"),
    ]
    async with ChatJanus(base_url=space_url) as llm:
        reply = await llm.ainvoke(messages)
    report = parse_understanding_report(reply.text)
    assert (report.width, report.height) == (160, 120)  # the earlier turn's picture was sent
    assert report.question == (
        "You describe pictures.\n\n"
        "Earlier conversation:\n"
        "User: What is in this picture?\n"
        "Assistant: A red square, a blue circle and a green triangle.\n\n"
        "Which shape is blue?"
    )
    assert reply.response_metadata["model_name"] == "janus-pro-7b"
    assert reply.response_metadata["dropped_images"] == 0


async def test_image_urls_are_fetched_by_the_client(space_url: str) -> None:
    message = HumanMessage(
        [{"type": "text", "text": "Describe it."}, {"type": "image", "url": SAMPLE_URL}]
    )
    async with ChatJanus(base_url=space_url) as llm:
        reply = await llm.ainvoke([message])
    report = parse_understanding_report(reply.text)
    assert (report.width, report.height, report.question) == (160, 120, "Describe it.")


def test_response_metadata_and_stop_sequences(space_url: str) -> None:
    with ChatJanus(base_url=space_url, seed=3) as llm:
        full = llm.invoke("Say hi")
        cut = llm.invoke("Say hi", stop=[" seed="])
    assert full.text.startswith(cut.text + " seed=3")
    assert cut.text == "[replica] image=384x384 question='Say hi'"
    metadata = full.response_metadata
    assert metadata["model_name"] == "janus-pro-7b"
    assert metadata["finish_reason"] == "stop"
    assert (metadata["seed"], metadata["top_p"], metadata["temperature"]) == (3, 0.95, 0.1)
    assert isinstance(metadata["duration"], float)


# --- streaming and progress --------------------------------------------------------------------


async def test_progress_reaches_astream_events_of_a_bare_model(
    space_url: str, space_tier: str
) -> None:
    async with ChatJanus(base_url=space_url) as llm:
        events = [e async for e in llm.astream_events("Think [slow:3]", version="v2")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert {e["name"] for e in custom} == {STATUS_EVENT}
    check_slow_steps(_statuses(events), space_tier)
    model_run = events[0]["run_id"]
    assert {e["run_id"] for e in custom} == {model_run}  # attributed to the model's own run
    queued = custom[0]["data"]
    assert queued.keys() == {"status", "model", "position", "rank", "queue_size", "eta"}
    assert (queued["model"], queued["rank"], queued["queue_size"]) == ("janus-pro-7b", 0, 1)
    assert queued["position"] == 1  # 1 = next, as the CLI and the README say
    assert queued["eta"] is None or queued["eta"] >= 0  # Gradio's estimate, once it has one
    for progress in (e["data"] for e in custom if e["data"]["status"] == "progress"):
        assert progress["index"] in (0, 1, 2)
        assert (progress["length"], progress["unit"], progress["desc"]) == (
            3,
            "steps",
            "replica working",
        )
    assert [e["data"]["level"] for e in custom if e["data"]["status"] == "log"] == [
        "info",
        "warning",
    ]
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert len(streamed) == 1 and kinds.index("on_chat_model_stream") > kinds.index(
        "on_custom_event"
    )
    chunk = streamed[0]["data"]["chunk"]
    assert isinstance(chunk, AIMessageChunk) and chunk.chunk_position == "last"
    assert parse_understanding_report(chunk.text).question == "Think [slow:3]"
    assert chunk.response_metadata["finish_reason"] == "stop"


async def test_progress_inside_chains_and_langgraph_nodes(space_url: str, space_tier: str) -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    async with ChatJanus(base_url=space_url) as llm:
        chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | llm
        chain_events = [e async for e in chain.astream_events({"q": "a [slow:3]"}, version="v2")]

        async def call_model(state: MessagesState) -> dict[str, Any]:
            return {"messages": [await llm.ainvoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("janus", call_model)
        graph.add_edge(START, "janus")
        graph.add_edge("janus", END)
        app = graph.compile()
        graph_events = [
            e
            async for e in app.astream_events(
                {"messages": [HumanMessage("b [slow:3]")]}, version="v2"
            )
        ]
        final = await app.ainvoke({"messages": [HumanMessage("c")]})

    # In a chain (astream) and in a graph node (ainvoke, which streams because astream_events
    # attached a streaming handler), the events belong to the chat-model run itself.
    for events in (chain_events, graph_events):
        model_run = next(e["run_id"] for e in events if e["event"] == "on_chat_model_start")
        custom = [e for e in events if e["event"] == "on_custom_event"]
        check_slow_steps(_statuses(events), space_tier)
        assert {e["run_id"] for e in custom} == {model_run}
    node_run = next(
        e["run_id"] for e in graph_events if e["event"] == "on_chain_start" and e["name"] == "janus"
    )
    graph_custom = [e for e in graph_events if e["event"] == "on_custom_event"]
    assert node_run in graph_custom[0]["parent_ids"]
    assert graph_custom[0]["metadata"]["langgraph_node"] == "janus"
    assert parse_understanding_report(final["messages"][-1].text).question == "c"


async def test_progress_and_tokens_reach_callback_handlers(space_url: str, space_tier: str) -> None:
    recorder = _Recorder()
    async with ChatJanus(base_url=space_url) as llm:
        await llm.ainvoke("one [slow:3]", {"callbacks": [recorder]})
        invoke_run = recorder.starts[-1][0]
        invoke_events = list(recorder.custom)
        chunks = list(llm.stream("two [slow:3]", {"callbacks": [recorder]}))  # sync, in a loop
        stream_run = recorder.starts[-1][0]
    check_slow_steps([d["status"] for _, d, _ in invoke_events], space_tier)
    assert {run for _, _, run in invoke_events} == {invoke_run}
    stream_events = recorder.custom[len(invoke_events) :]
    assert {run for _, _, run in stream_events} == {stream_run}
    check_slow_steps([d["status"] for _, d, _ in stream_events], space_tier)
    assert len(chunks) == 1 and chunks[0].chunk_position == "last"
    answer_tokens = [c for c in recorder.tokens if c is not None and c.message.content]
    assert len(answer_tokens) == 1  # the answer reached on_llm_new_token once, not twice
    assert parse_understanding_report(answer_tokens[0].message.text).question == "two [slow:3]"


async def test_progress_reaches_handlers_when_invoke_streams(
    space_url: str, space_tier: str
) -> None:
    # streaming=True makes ainvoke go through _astream, which langchain-core calls without
    # the run manager: the events must still reach the handler, on the model's run.
    recorder = _Recorder()
    async with ChatJanus(base_url=space_url, streaming=True) as llm:
        reply = await llm.ainvoke("three [slow:3]", {"callbacks": [recorder]})
    ((run_id, _, _),) = recorder.starts
    assert {name for name, _, _ in recorder.custom} == {STATUS_EVENT}
    check_slow_steps([data["status"] for _, data, _ in recorder.custom], space_tier)
    assert {run for _, _, run in recorder.custom} == {run_id}
    assert [c.message.text for c in recorder.tokens if c is not None and c.message.content] == [
        reply.text
    ]


# --- image generation --------------------------------------------------------------------------


async def test_image_generation_returns_text_and_standard_image_blocks(space_url: str) -> None:
    messages = [SystemMessage("watercolour"), HumanMessage("a red fox in snow")]
    async with ChatJanus(
        base_url=space_url, model="janus-pro-7b-image", seed=7, guidance=3.5, temperature=0.5
    ) as llm:
        reply = await llm.ainvoke(messages)
        chunks = [c async for c in llm.astream(messages)]
    assert reply.text == "Generated 5 images for the prompt: watercolour\na red fox in snow"
    blocks = reply.content_blocks
    assert [b["type"] for b in blocks] == ["text"] + ["image"] * 5
    for index, block in enumerate(blocks[1:]):
        assert block["mime_type"] == "image/webp"
        report = read_generation_report(base64.b64decode(block["base64"]))
        assert (report.index, report.seed, report.guidance, report.temperature) == (
            index,
            7,
            3.5,
            0.5,
        )
        assert report.prompt_crc32 == prompt_checksum("watercolour\na red fox in snow")
    assert reply.response_metadata["image_count"] == 5
    assert reply.response_metadata["model_name"] == "janus-pro-7b-image"
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert chunks[-1].chunk_position == "last"
    assert [b["type"] for b in merged.content_blocks] == ["text"] + ["image"] * 5
    assert merged.text == reply.text


def test_per_call_model_switches_to_generation(space_url: str) -> None:
    with ChatJanus(base_url=space_url) as llm:
        reply = llm.invoke("a lighthouse", model="janus-pro-7b-image", seed=11)
    assert reply.response_metadata["model_name"] == "janus-pro-7b-image"
    images = [b for b in reply.content_blocks if b["type"] == "image"]
    assert read_generation_report(base64.b64decode(images[0]["base64"])).seed == 11


# --- sharing clients ---------------------------------------------------------------------------


async def test_batches_share_one_backend_with_one_session_per_event_loop(
    space_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    real_build = ChatJanus._build_backend

    def counting_build(self: ChatJanus) -> Any:
        made.append(real_build(self))
        return made[-1]

    monkeypatch.setattr(ChatJanus, "_build_backend", counting_build)
    async with ChatJanus(base_url=space_url) as llm:
        # (A job that waits for a concurrency slot joins while another job's event stream may
        # or may not still be open; cassettes cannot replay that, hence 1 here, and batches
        # whose calls all start together below.)
        first = await llm.abatch(["q1", "q2", "q3"], config={"max_concurrency": 1})
        second = await llm.abatch(["q4", "q5"])
        threaded = await asyncio.to_thread(llm.batch, ["q6", "q7"], {"max_concurrency": 2})
        assert len(made) == 1  # one backend for async and sync calls alike
        assert made[0]._connection.open_loops == 2  # a session here and one on the sync loop
    assert all(client.closed for client in made)
    questions = [parse_understanding_report(m.text).question for m in [*first, *second, *threaded]]
    assert questions == ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]


async def test_sync_calls_work_inside_a_running_loop_and_from_threads(
    space_url: str, space_tier: str
) -> None:
    # Concurrent threads share one session whose event-stream reopenings depend on timing,
    # which a cassette cannot replay; the recorded tiers call from one worker thread.
    workers = 2 if space_tier == "live" else 1
    async with ChatJanus(base_url=space_url) as llm:
        inside_loop = llm.invoke("from a notebook cell")  # a running loop, as in Jupyter
        with ThreadPoolExecutor(max_workers=workers) as pool:
            answers = list(pool.map(lambda q: llm.invoke(q).text, ["worker a", "worker b"]))
    assert parse_understanding_report(inside_loop.text).question == "from a notebook cell"
    assert [parse_understanding_report(a).question for a in answers] == ["worker a", "worker b"]


# --- errors and secrets ------------------------------------------------------------------------


async def test_space_failures_surface_as_typed_errors(space_url: str) -> None:
    async with ChatJanus(base_url=space_url, max_retries=0) as llm:
        with pytest.raises(AppError, match="Something bad happened"):
            await llm.ainvoke("fail [apperror]")
        with pytest.raises(QuotaExceededError) as quota:
            await llm.ainvoke("too much [quota]")
    assert quota.value.retry_after == 7


async def test_the_token_stays_out_of_traces_and_events(space_url: str) -> None:
    recorder = _Recorder()
    async with ChatJanus(
        base_url=space_url, api_key=TOKEN, default_headers={"x-ip-token": TOKEN}
    ) as llm:
        events = [
            e async for e in llm.astream_events("hi", {"callbacks": [recorder]}, version="v2")
        ]
        await llm.ainvoke("hi", {"callbacks": [recorder]})
    assert recorder.starts and events
    for _, serialized, kwargs in recorder.starts:
        assert TOKEN not in repr(serialized) and TOKEN not in repr(kwargs)
    assert TOKEN not in repr(events)
