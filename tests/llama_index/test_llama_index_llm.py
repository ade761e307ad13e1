"""JanusPro as a LlamaIndex LLM against the Space (replayed cassettes and the live replica)."""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import gc
import json
import pickle
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from li_support import EventRecorder, make_png
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
)
from llama_index.core.instrumentation.events.llm import LLMChatStartEvent
from llama_index.core.schema import ImageDocument, ImageNode

from janus_space import (
    AppError,
    BackendHandle,
    ImagesDroppedWarning,
    InvalidInputError,
    Progress,
    QuotaExceededError,
    UnderstandingResult,
)
from janus_space.replica import parse_understanding_report
from llama_index_janus import CONTEXT_WINDOW, JanusPro, JanusStatusEvent

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: a request would fail loudly


def user(text: str, *images: ImageBlock) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, blocks=[*images, TextBlock(text=text)])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- no network ------------------------------------------------------------------------------


def test_metadata_and_identity() -> None:
    llm = JanusPro(base_url=UNREACHABLE)
    meta = llm.metadata
    assert (meta.context_window, meta.num_output) == (CONTEXT_WINDOW, 512)  # see test_..._budget
    assert meta.is_chat_model is True
    assert meta.is_function_calling_model is False
    assert meta.model_name == "deepseek-ai/Janus-Pro-7B"
    assert JanusPro.class_name() == "janus_pro_llm"
    assert llm.to_dict()["class_name"] == "janus_pro_llm"


def test_init_defaults_match_the_documented_fields() -> None:
    llm = JanusPro()
    for name in (
        "space",
        "base_url",
        "hf_token",
        "temperature",
        "top_p",
        "seed",
        "image_seed",
        "guidance",
        "image_temperature",
        "timeout",
        "connect_timeout",
        "max_retries",
        "text_only",
        "extra_images",
        "max_image_side",
        "status_chunks",
    ):
        assert getattr(llm, name) == JanusPro.model_fields[name].default, name
    assert llm.extra_headers == {}
    assert JanusPro("someone/janus-copy").metadata.model_name == "someone/janus-copy"


def test_token_and_headers_never_serialized() -> None:
    llm = JanusPro(hf_token="hf_secretsecretsecret1234", extra_headers={"x-ip-token": "ipsecret"})
    for text in (repr(llm), str(llm), llm.to_json(), json.dumps(llm.to_payload())):
        assert "hf_secretsecretsecret1234" not in text
        assert "ipsecret" not in text
    assert "hf_token" not in llm.to_dict()


def _sync_loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "janus-space-sync"]


def test_garbage_collection_closes_the_backend_it_built() -> None:
    llm = JanusPro(base_url=UNREACHABLE)
    backend = llm.janus_backend
    assert BackendHandle.run(asyncio.sleep(0, "ran")) == "ran"  # the shared sync loop runs
    ref = weakref.ref(llm)
    del llm
    gc.collect()
    assert ref() is None
    for _ in range(100):  # closing is scheduled on the sync loop, not awaited by the finalizer
        if backend.closed:
            break
        time.sleep(0.05)
    assert backend.closed
    assert len(_sync_loop_threads()) == 1  # one loop thread for the whole process


def test_copies_get_their_own_connections() -> None:
    llm = JanusPro(base_url=UNREACHABLE, hf_token="hf_secretsecretsecret1234", temperature=0.3)
    backend = llm.janus_backend
    twin = copy.deepcopy(llm)
    assert twin._handle.built is None and twin.janus_backend is not backend
    assert (twin.temperature, twin.base_url) == (0.3, UNREACHABLE)
    assert twin.hf_token is not None
    assert twin.hf_token.get_secret_value() == "hf_secretsecretsecret1234"
    revived = pickle.loads(pickle.dumps(llm))
    assert revived.janus_backend is not backend
    shallow = copy.copy(llm)
    assert shallow.janus_backend is not backend
    shallow.close()
    assert revived.temperature == 0.3
    llm.close()
    twin.close()
    revived.close()


def test_unsupported_block_raises_before_any_request() -> None:
    llm = JanusPro(base_url=UNREACHABLE)
    message = ChatMessage(
        role="user", blocks=[AudioBlock(audio=b"RIFF0000WAVE"), TextBlock(text="q")]
    )
    with pytest.raises(InvalidInputError, match=r"messages\[0\]\.blocks\[0\].*'audio'"):
        llm.chat([message])
    with pytest.raises(InvalidInputError, match="'audio'"):
        llm.stream_chat([message])
    llm.close()


async def test_unsupported_block_raises_before_any_request_async() -> None:
    llm = JanusPro(base_url=UNREACHABLE)
    message = ChatMessage(
        role="user", blocks=[AudioBlock(audio=b"RIFF0000WAVE"), TextBlock(text="q")]
    )
    with pytest.raises(InvalidInputError):
        await llm.achat([message])
    with pytest.raises(InvalidInputError):
        await llm.astream_chat([message])
    await llm.aclose()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"temperature": 5}, "temperature"), ({"top_p": -1}, "top_p"), ({"seed": -3}, "seed")],
)
async def test_bad_parameters_are_invalid_input(kwargs: dict[str, float], match: str) -> None:
    llm = JanusPro(base_url=UNREACHABLE)
    with pytest.raises(InvalidInputError, match=match):
        await llm.achat([user("q")], **kwargs)
    await llm.aclose()


async def test_conversation_errors_are_invalid_input() -> None:
    llm = JanusPro(base_url=UNREACHABLE, text_only="error")
    with pytest.raises(InvalidInputError, match="needs an image"):
        await llm.achat([user("no picture here")])
    with pytest.raises(InvalidInputError, match="last message must come from the user"):
        await llm.achat(
            [
                user("q", ImageBlock(image=make_png(4, 4))),
                ChatMessage(role="assistant", content="a"),
            ]
        )
    with pytest.raises(InvalidInputError, match="2 images"):
        await JanusPro(base_url=UNREACHABLE, extra_images="error").achat(
            [user("q", ImageBlock(image=make_png(4, 4)), ImageBlock(image=make_png(5, 5)))]
        )
    await llm.aclose()


def test_invalid_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError):
        JanusPro(temperature=3)
    with pytest.raises(ValueError):
        JanusPro(extra_images="first")  # type: ignore[arg-type]


# -- chat ------------------------------------------------------------------------------------


def test_chat_sends_the_image_and_flattened_system_prompt(llm: JanusPro) -> None:
    reply = llm.chat(
        [
            ChatMessage(role="system", content="Answer briefly."),
            user("What is in the picture?", ImageBlock(image=make_png(40, 30))),
        ]
    )
    report = parse_understanding_report(reply.message.content or "")
    assert (report.width, report.height) == (40, 30)
    assert report.question == "Answer briefly.\n\nWhat is in the picture?"
    assert (report.seed, report.top_p, report.temperature) == ("42", "0.95", "0.1")
    assert reply.message.role == MessageRole.ASSISTANT
    assert isinstance(reply.raw, UnderstandingResult)
    assert reply.additional_kwargs["dropped_images"] == 0
    assert reply.additional_kwargs["trimmed_messages"] == 0


def test_chat_reads_image_paths_and_data_urls(llm: JanusPro, tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(make_png(21, 13))
    by_path = llm.chat([user("path?", ImageBlock(path=path))])
    assert parse_understanding_report(by_path.message.content or "").width == 21
    data_url = "data:image/png;base64," + b64(make_png(17, 11))
    by_url = llm.chat([user("url?", ImageBlock(url=data_url))], seed=7, temperature=0.5)
    report = parse_understanding_report(by_url.message.content or "")
    assert (report.width, report.height, report.seed, report.temperature) == (17, 11, "7", "0.5")


@pytest.fixture
def image_url(space_tier: str, tmp_path: Path) -> Iterator[str]:
    """An http URL of a 23x19 PNG: a local file server, or (replay) the cassette answers."""
    if space_tier == "replay":
        yield "http://127.0.0.1:7862/picture.png"
        return
    (tmp_path / "picture.png").write_bytes(make_png(23, 19))
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/picture.png"
        server.shutdown()
        thread.join()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_chat_fetches_http_image_urls_through_the_core(llm: JanusPro, image_url: str) -> None:
    reply = llm.chat([user("Remote picture?", ImageBlock(url=image_url))])
    report = parse_understanding_report(reply.message.content or "")
    assert (report.width, report.height) == (23, 19)


async def test_achat_flattens_history_and_keeps_the_conversation_image(llm: JanusPro) -> None:
    reply = await llm.achat(
        [
            ChatMessage(role="system", content="You are terse."),
            user("Look at this.", ImageBlock(image=make_png(33, 22))),
            ChatMessage(role="assistant", content="A red rectangle."),
            user("How wide is it?"),
        ]
    )
    report = parse_understanding_report(reply.message.content or "")
    assert (report.width, report.height) == (33, 22)
    assert report.question == (
        "You are terse.\n\nEarlier conversation:\nUser: Look at this.\n"
        "Assistant: A red rectangle.\n\nHow wide is it?"
    )


def test_text_only_question_gets_the_placeholder_image(llm: JanusPro) -> None:
    report = parse_understanding_report(llm.chat([user("Just text.")]).message.content or "")
    assert (report.width, report.height) == (384, 384)


# -- streaming and status events -------------------------------------------------------------


def test_stream_chat_yields_status_chunks_then_the_answer(
    llm: JanusPro, events: EventRecorder
) -> None:
    chunks = list(llm.stream_chat([user("Slowly please [slow:2]")]))
    *status, last = chunks
    assert parse_understanding_report(last.delta or "").question == "Slowly please [slow:2]"
    assert last.message.content == last.delta
    assert status, "the replica's progress should arrive before the answer"
    assert all(chunk.delta == "" and chunk.message.content == "" for chunk in status)
    kinds = [chunk.additional_kwargs["janus_status"].kind for chunk in status]
    assert kinds.count("progress") == 2
    assert "started" in kinds
    dispatched = events.of(JanusStatusEvent)
    assert [event.kind for event in dispatched] == kinds
    assert all(event.task == "understanding" for event in dispatched)
    assert isinstance(dispatched[kinds.index("progress")].status, Progress)


async def test_astream_chat_with_and_without_status_chunks(
    llm: JanusPro, events: EventRecorder
) -> None:
    stream = await llm.astream_chat([user("Async stream [slow:1]")])
    chunks = [chunk async for chunk in stream]
    assert [c.additional_kwargs.get("janus_status") is not None for c in chunks[:-1]] == [True] * (
        len(chunks) - 1
    )
    assert parse_understanding_report(chunks[-1].delta or "").question == "Async stream [slow:1]"

    llm.status_chunks = False
    before = len(events.of(JanusStatusEvent))
    stream = await llm.astream_chat([user("Quiet stream [slow:1]")])
    quiet = [chunk async for chunk in stream]
    assert len(quiet) == 1
    assert parse_understanding_report(quiet[0].delta or "").question == "Quiet stream [slow:1]"
    assert len(events.of(JanusStatusEvent)) > before, "events are dispatched even without chunks"


def test_status_events_belong_to_the_chat_span(llm: JanusPro, events: EventRecorder) -> None:
    llm.chat([user("Span check [slow:1]")])
    (start,) = events.of(LLMChatStartEvent)
    statuses = events.of(JanusStatusEvent)
    assert statuses
    assert start.span_id is not None
    assert {event.span_id for event in statuses} == {start.span_id}


# -- completion, including the legacy multimodal signature ----------------------------------


def test_complete_and_stream_complete(llm: JanusPro) -> None:
    done = llm.complete("Describe it.", image_documents=[ImageNode(image=b64(make_png(12, 9)))])
    assert parse_understanding_report(done.text).width == 12
    chunks = list(llm.stream_complete("Stream it."))
    assert parse_understanding_report(chunks[-1].text).question == "Stream it."
    assert chunks[-1].delta == chunks[-1].text


async def test_acomplete_and_astream_complete_legacy_positional_images(llm: JanusPro) -> None:
    doc = ImageDocument(image=b64(make_png(14, 6)))
    done = await llm.acomplete("Legacy call.", [doc])  # complete(prompt, image_documents)
    report = parse_understanding_report(done.text)
    assert (report.width, report.height, report.question) == (14, 6, "Legacy call.")
    stream = await llm.astream_complete(
        "Async legacy.", image_documents=[ImageBlock(image=make_png(8, 5))]
    )
    last = [chunk async for chunk in stream][-1]
    assert parse_understanding_report(last.text).width == 8


def test_several_image_documents_send_the_first(llm: JanusPro) -> None:
    docs = [ImageNode(image=b64(make_png(31, 7))), ImageNode(image=b64(make_png(9, 31)))]
    with pytest.warns(ImagesDroppedWarning, match="dropping 1"):
        done = llm.complete("Most relevant first.", image_documents=docs)
    assert parse_understanding_report(done.text).width == 31
    assert done.additional_kwargs["dropped_images"] == 1


# -- where sync and async code runs ----------------------------------------------------------


async def test_async_methods_run_natively_on_the_callers_loop(
    llm: JanusPro, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(*args: Any) -> None:
        raise AssertionError("an async method used the sync loop thread")

    monkeypatch.setattr(BackendHandle, "iterate", no_thread)
    monkeypatch.setattr(BackendHandle, "run", no_thread)
    assert (await llm.achat([user("native 1")])).message.content
    stream = await llm.astream_chat([user("native 2")])
    assert [chunk async for chunk in stream][-1].delta
    assert (await llm.acomplete("native 3")).text
    stream_c = await llm.astream_complete("native 4")
    assert [chunk async for chunk in stream_c][-1].text
    assert llm.janus_backend._connection.open_loops == 1  # type: ignore[attr-defined]


async def test_sync_methods_work_inside_a_running_loop(space_url: str) -> None:
    async with JanusPro(base_url=space_url, max_retries=0) as llm:
        reply = llm.chat([user("Sync inside a loop.")])
        question = parse_understanding_report(reply.message.content or "").question
        assert question == "Sync inside a loop."
        backend = llm.janus_backend
        assert len(_sync_loop_threads()) == 1
    assert backend.closed  # `async with` also closed the sync side's session


def test_sync_methods_work_from_worker_threads(llm: JanusPro) -> None:
    # One thread after another: concurrent jobs share one event stream, whose interleaving a
    # cassette cannot replay; the concurrent case runs against the replica below.
    for n in range(2):
        with ThreadPoolExecutor(max_workers=1) as pool:
            reply = pool.submit(llm.chat, [user(f"From thread {n}.")]).result()
        assert (
            parse_understanding_report(reply.message.content or "").question == f"From thread {n}."
        )


def test_concurrent_threads_and_abandoned_streams_share_one_client(replica_url: str) -> None:
    """Live replica only: a cassette cannot replay an abandoned or interleaved event stream."""
    with JanusPro(base_url=replica_url, max_retries=0) as llm:
        stream = llm.stream_chat([user("Abandon me [slow:3]")])
        first = next(stream)
        assert first.additional_kwargs.get("janus_status") is not None
        stream.close()  # cancels the job; nothing may stay unclosed (ResourceWarning is an error)
        questions = [f"Concurrent {n}." for n in range(3)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            replies = list(pool.map(lambda q: llm.chat([user(q)]), questions))
        answers = [parse_understanding_report(r.message.content or "").question for r in replies]
        assert answers == questions


# -- the Space's failures arrive as the core's typed errors ---------------------------------


def test_app_error_is_typed(llm: JanusPro) -> None:
    with pytest.raises(AppError, match="bad"):
        llm.chat([user("Fail please [apperror]")])


async def test_quota_error_is_typed_in_streams(llm: JanusPro) -> None:
    stream = await llm.astream_chat([user("Over quota [quota]")])
    with pytest.raises(QuotaExceededError) as caught:
        async for _ in stream:
            pass
    assert caught.value.retry_after is not None
