"""LlamaIndex fills JanusPro's advertised window and the core accepts what it packs.

LlamaIndex packs prompts up to ``metadata.context_window - num_output`` tokens by its own
counter (tiktoken cl100k); the core measures them with its own estimate against its budget.
These tests run what users run — summarising query engines over a long document and a ReAct
agent with several documented tools — against the replica, and check every call was sent.
The replica is a stand-in, not a model: answers that must be short or ReAct-shaped are
scripted with ``reply_marker``; the checks are on what the Space received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from li_support import EventRecorder
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentOutput, ReActAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.tools import BaseTool, FunctionTool
from llama_index.core.utils import get_tokenizer

from janus_space import InvalidInputError
from janus_space.replica import parse_understanding_report, reply_marker
from janus_space.tokens import ANSWER_TOKENS, CL100K_CONTEXT_WINDOW, DEFAULT_TOKEN_BUDGET
from llama_index_janus import JanusPro

SAMPLES = Path(__file__).resolve().parents[2] / "benchmarks" / "samples"
DOCUMENTS = {"english": "english.txt", "code": "code_python.txt", "chinese": "chinese.txt"}


@pytest.fixture
async def replica_llm(replica_url: str) -> AsyncIterator[JanusPro]:
    model = JanusPro(base_url=replica_url, max_retries=0)
    try:
        yield model
    finally:
        await model.aclose()
        model.close()


def long_document(kind: str, tokens: int = 8000) -> str:
    """A sample repeated to about ``tokens`` cl100k tokens (several chunks' worth)."""
    sample = (SAMPLES / DOCUMENTS[kind]).read_text(encoding="utf-8")
    count = len(get_tokenizer()(sample))
    return "\n\n".join([sample] * (tokens // count + 1))


def index_of(text: str) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=text)], embed_model=MockEmbedding(8))


def sent_prompts(events: EventRecorder) -> list[str]:
    """The text of every chat call LlamaIndex made, as it counted it."""
    return [
        "\n".join(m.content or "" for m in event.messages) for event in events.of(LLMChatStartEvent)
    ]


def test_advertised_window_is_the_cores_budget_in_llamaindex_tokens(replica_llm: JanusPro) -> None:
    metadata = replica_llm.metadata
    assert (metadata.context_window, metadata.num_output) == (CL100K_CONTEXT_WINDOW, ANSWER_TOKENS)
    # Room for the prompt, by cl100k, is what remains of the budget after the estimate's margin.
    assert metadata.context_window - metadata.num_output < DEFAULT_TOKEN_BUDGET


@pytest.mark.parametrize("kind", list(DOCUMENTS))
async def test_simple_summarize_packs_the_window_and_is_sent(
    kind: str, replica_llm: JanusPro, events: EventRecorder
) -> None:
    engine = index_of(long_document(kind)).as_query_engine(
        llm=replica_llm, response_mode="simple_summarize", similarity_top_k=50
    )
    response = await engine.aquery("What is this document about?")
    report = parse_understanding_report(str(response))
    assert "What is this document about?" in report.question
    (prompt,) = sent_prompts(events)
    packed = len(get_tokenizer()(prompt))
    room = CL100K_CONTEXT_WINDOW - ANSWER_TOKENS
    # LlamaIndex filled most of the window it was given (truncating each retrieved chunk to an
    # equal share; its own accounting overfills by a few per cent, which CL100K_RATIO's
    # headroom over the measured ratio covers).
    assert packed >= 0.75 * room


@pytest.mark.parametrize("kind", ["english", "chinese"])
async def test_tree_summarize_over_a_long_document_runs_to_the_end(
    kind: str, replica_llm: JanusPro, events: EventRecorder
) -> None:
    summary = "The document tells of a keeper and a small shop."
    engine = index_of(long_document(kind, tokens=12000)).as_query_engine(
        llm=replica_llm, response_mode="tree_summarize", similarity_top_k=50
    )
    # Scripted short answers, or the stand-in's echo of each prompt would never shrink.
    response = await engine.aquery("Summarise the document. " + reply_marker(summary))
    assert str(response) == summary
    prompts = sent_prompts(events)
    assert len(prompts) >= 3  # several packed chunks, then the summary of their summaries
    assert len(events.of(LLMChatEndEvent)) == len(prompts)  # every call was answered
    room = CL100K_CONTEXT_WINDOW - ANSWER_TOKENS
    assert max(len(get_tokenizer()(p)) for p in prompts) >= 0.85 * room


def _tool(name: str, summary: str) -> FunctionTool:
    def run(query: str, limit: int = 5) -> str:
        return f"{name}: nothing found for {query!r}"

    description = (
        f"{name}(query: str, limit: int = 5) -> str\n{summary} The query is matched against "
        "titles, abstracts and full texts, with stemming and synonyms; quote a phrase to match "
        "it exactly, prefix a word with a minus sign to exclude it, and add a year range such "
        "as 2019..2023 to restrict the dates. Results are ranked by relevance, then by date, "
        "and each comes with its identifier, a one-line summary and the passage that matched. "
        "Use limit to ask for more or fewer results; at most 50 are returned. Prefer precise "
        "queries: broad ones return many weak matches and waste the context of the answer."
    )
    return FunctionTool.from_defaults(fn=run, name=name, description=description)


TOOLS: list[BaseTool | Callable[..., Any]] = [
    _tool("search_papers", "Search a library of scientific papers."),
    _tool("search_patents", "Search granted patents and published applications."),
    _tool("search_news", "Search news articles from the last ten years."),
    _tool("search_court_rulings", "Search rulings of the higher courts."),
    _tool("search_standards", "Search technical standards and their revisions."),
    _tool("search_theses", "Search doctoral and master's theses."),
    _tool("search_datasets", "Search public datasets by topic and licence."),
    _tool("search_manuals", "Search product manuals and service notes."),
    _tool("search_minutes", "Search the minutes of council meetings."),
]
TOOL_NAMES = [tool.metadata.name for tool in TOOLS if isinstance(tool, BaseTool)]


async def test_react_agent_first_call_is_sent(replica_llm: JanusPro) -> None:
    agent = ReActAgent(tools=TOOLS, llm=replica_llm, verbose=False)
    answer = "Thought: I can answer without using any tool.\nAnswer: {{report}}"
    question = "Which tool would find the 1987 council decision? " + reply_marker(answer)
    result: AgentOutput = await agent.run(user_msg=question)
    report = parse_understanding_report(json.loads(str(result.response.content)))
    # The whole ReAct prompt reached the Space: its header with every tool, then the question.
    assert all(f"> Tool Name: {name}" in report.question for name in TOOL_NAMES)
    assert report.question.rstrip().endswith(question)
    # A prompt the old rule (a token per 3 bytes) refused, as issue 10 saw: about 9 kB.
    assert len(report.question.encode()) / 3 > DEFAULT_TOKEN_BUDGET


async def test_a_prompt_over_the_window_is_refused_before_any_request() -> None:
    # A query engine cannot overfill, but a hand-written prompt can: it is refused up front.
    room = CL100K_CONTEXT_WINDOW - ANSWER_TOKENS
    text = long_document("code", tokens=2 * room)
    model = JanusPro(base_url="http://127.0.0.1:9", max_retries=0)  # nothing listens there
    try:
        with pytest.raises(InvalidInputError, match="tokens"):
            await model.acomplete(text)
    finally:
        await model.aclose()
        model.close()
