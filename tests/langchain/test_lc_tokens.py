"""ChatJanus counts tokens with the core's estimate, so LangChain's trimming fits the Space.

``trim_messages(token_counter=llm)`` calls ``get_num_tokens_from_messages``; without an
override LangChain falls back to a GPT-2 tokenizer from transformers (an ImportError without
it, a download with it). The count is in the unit of the core's budget, which the model's
profile advertises, so a history trimmed to that budget is sent whole.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import trim_messages

from janus_space import estimate_tokens
from janus_space.replica import parse_understanding_report
from janus_space.tokens import ANSWER_TOKENS, DEFAULT_TOKEN_BUDGET
from langchain_janus import ChatJanus


@pytest.fixture
async def replica_chat(replica_url: str) -> AsyncIterator[ChatJanus]:
    model = ChatJanus(base_url=replica_url, max_retries=0)
    try:
        yield model
    finally:
        await model.aclose()
        model.close()


def long_conversation(turns: int = 60) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("You answer questions about lighthouses.")]
    for i in range(turns):
        messages.append(HumanMessage(f"Question {i}: what did the keeper note in year {i}? " * 3))
        messages.append(AIMessage(f"Answer {i}: the weather, the ships and the birds. " * 4))
    messages.append(HumanMessage("And in the last year?"))
    return messages


def test_profile_advertises_the_cores_budget() -> None:
    assert ChatJanus().profile == {
        "max_input_tokens": DEFAULT_TOKEN_BUDGET,
        "max_output_tokens": ANSWER_TOKENS,
    }


async def test_history_trimmed_by_the_model_is_sent_whole(replica_chat: ChatJanus) -> None:
    messages = long_conversation()
    budget = replica_chat.profile["max_input_tokens"] if replica_chat.profile else 0
    assert replica_chat.get_num_tokens_from_messages(messages) > budget  # it must be trimmed
    trimmed = trim_messages(
        messages,
        max_tokens=budget,
        token_counter=replica_chat,
        strategy="last",
        include_system=True,
        start_on="human",
    )
    assert 3 <= len(trimmed) < len(messages)
    assert replica_chat.get_num_tokens_from_messages(trimmed) <= budget
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the core trims nothing more: no HistoryTrimmedWarning
        answer = await replica_chat.ainvoke(trimmed)
    question = parse_understanding_report(str(answer.content)).question
    for message in trimmed:
        assert str(message.content).strip() in question


def test_counts_use_the_estimate_without_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_core.language_models.base as lm_base

    def no_gpt2(text: str) -> list[int]:
        raise ImportError("transformers is not installed")

    monkeypatch.setattr(lm_base, "_get_token_ids_default_method", no_gpt2)
    llm = ChatJanus()
    text = "The keeper lit the lamp at 6.42 and wrote it down. 灯塔守护者。"
    assert llm.get_num_tokens(text) == estimate_tokens(text)
    assert llm.get_num_tokens_from_messages([HumanMessage(text)]) >= estimate_tokens(text)
    with pytest.raises(NotImplementedError, match="custom_get_token_ids"):
        llm.get_token_ids(text)


def test_a_users_tokenizer_is_honoured() -> None:
    def by_word(text: str) -> list[int]:
        return list(range(len(text.split())))

    llm = ChatJanus(custom_get_token_ids=by_word)
    assert llm.get_token_ids("one two three") == [0, 1, 2]
    assert llm.get_num_tokens("one two three") == 3
    messages = [SystemMessage("be brief"), HumanMessage("one two three")]
    assert llm.get_num_tokens_from_messages(messages) == (2 + 1) + (3 + 1)
