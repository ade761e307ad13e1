"""The context budget and its token estimate, checked against what users send.

The reference is ``benchmarks/token_calibration.py``'s: tiktoken cl100k_base (LlamaIndex's own
counter, from llama-index-core's bundled cache) counted inside the pieces DeepSeek-LLM's
pre-tokenizer cuts a text into; the piece count itself is an exact lower bound on Janus-Pro's
real token count. Prompts that fill the window the adapters advertise, by LlamaIndex's counter,
must pass the core's budget, in every sample class.
"""

from __future__ import annotations

import string
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from janus_space import (
    HistoryTrimmedWarning,
    InvalidInputError,
    JanusClient,
    Message,
    estimate_conversation_tokens,
    flatten_conversation,
)
from janus_space.replica import parse_understanding_report
from janus_space.tokens import (
    ANSWER_TOKENS,
    CL100K_CONTEXT_WINDOW,
    CL100K_RATIO,
    DEFAULT_TOKEN_BUDGET,
    TEMPLATE_TOKENS,
    estimate_tokens,
)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import token_calibration as calibration  # noqa: E402

PROMPT_TOKENS = CL100K_CONTEXT_WINDOW - ANSWER_TOKENS  # what LlamaIndex packs, by cl100k
SAMPLE_NAMES = list(calibration.CLASSES)
CALIBRATED = [name for name, (_, calibrated) in calibration.CLASSES.items() if calibrated]


@pytest.fixture(scope="module")
def cl100k() -> Callable[[str], list[int]]:
    pytest.importorskip("llama_index.core")
    return calibration.cl100k()


def _sample(name: str) -> str:
    return (calibration.SAMPLES / name).read_text(encoding="utf-8")


def text_of(tokens: int, name: str, encode: Callable[[str], list[int]]) -> str:
    """The longest prefix of the sample (repeated) that is at most ``tokens`` by cl100k."""
    source = _sample(name)
    while len(encode(source)) <= tokens:
        source += "\n\n" + _sample(name)
    low, high = 0, len(source)  # len(encode(source[:low])) <= tokens < len(encode(source[:high]))
    while high - low > 1:
        middle = (low + high) // 2
        if len(encode(source[:middle])) <= tokens:
            low = middle
        else:
            high = middle
    return source[:low]


# -- calibration ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CALIBRATED)
def test_estimate_is_close_to_and_not_below_the_reference(
    name: str, cl100k: Callable[[str], list[int]]
) -> None:
    text = _sample(name)
    reference = calibration.reference_tokens(text, cl100k)
    estimate = estimate_tokens(text)
    assert reference <= estimate <= 1.2 * reference
    assert estimate <= CL100K_RATIO * len(cl100k(text))


def test_uncalibrated_european_text_reads_at_most_a_little_low(
    cl100k: Callable[[str], list[int]],
) -> None:
    # French and German words split finer than English ones; Russian reads high. The sample as a
    # whole stays within 5 % of the reference (the module docstring says so).
    text = _sample("european.txt")
    reference = calibration.reference_tokens(text, cl100k)
    assert 0.95 * reference <= estimate_tokens(text) <= 1.2 * reference


def test_template_reserve_covers_the_spaces_template(cl100k: Callable[[str], list[int]]) -> None:
    assert calibration.template_tokens(cl100k) <= TEMPLATE_TOKENS


def test_pre_tokenizer_matches_the_tokenizers_library() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    assert tokenizers is not None
    texts = [_sample(name) for name in SAMPLE_NAMES]
    assert calibration._check_against_tokenizers(texts).startswith("pre-tokenizer identical")


# Text a user writes: ASCII, Latin, Greek and Cyrillic letters, CJK, and their punctuation.
_ACCENTED = "éèàçüöäßñøÅÉ"
_PLAIN_ALPHABET = (
    string.ascii_letters
    + string.digits
    + string.punctuation
    + " \t\n"
    + "αβγΩпривет"
    + "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就"
    + "あいうえおかきくけこアイウエオカキクケコー"
    + "，。、！？：；（）「」『』…—“”"
)
_ALPHABET = _PLAIN_ALPHABET + _ACCENTED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=400))
def test_estimate_is_never_below_deepseeks_pieces(text: str) -> None:
    # Every piece of DeepSeek-LLM's pre-tokenizer is at least one token of the real tokenizer.
    assert estimate_tokens(text) >= len(calibration.deepseek_pieces(text))


# -- prompts that fill the advertised window ---------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_prompt_filling_the_advertised_window_fits_the_budget(
    name: str, cl100k: Callable[[str], list[int]]
) -> None:
    text = text_of(PROMPT_TOKENS, name, cl100k)
    assert len(cl100k(text)) >= PROMPT_TOKENS - 2  # as full as cl100k's boundaries allow
    system = "Context information is below. Answer the query using only that information."
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing trimmed either
        prompt = flatten_conversation([Message("system", system), Message("user", text)])
    assert prompt.estimated_tokens <= DEFAULT_TOKEN_BUDGET
    assert prompt.question.endswith(text.strip())


@pytest.mark.parametrize("name", ["english.txt", "code_python.txt", "chinese.txt"])
async def test_client_sends_a_question_that_fills_the_window(
    name: str, cl100k: Callable[[str], list[int]], replica_url: str
) -> None:
    question = text_of(PROMPT_TOKENS, name, cl100k).strip()
    async with JanusClient(base_url=replica_url, max_retries=0) as client:
        result = await client.understand(question)
    assert parse_understanding_report(result.text).question == question


async def test_client_refuses_an_oversized_question_before_any_request(
    cl100k: Callable[[str], list[int]],
) -> None:
    question = text_of(round(PROMPT_TOKENS * 1.5), "english.txt", cl100k)
    assert estimate_tokens(question) > DEFAULT_TOKEN_BUDGET
    # Nothing listens on the discard port: a request would fail with a connection error.
    async with JanusClient(base_url="http://127.0.0.1:9", max_retries=0) as client:
        with pytest.raises(InvalidInputError, match="tokens"):
            await client.understand(question)


# -- conversations and trimming --------------------------------------------------------------


def _turns(alphabet: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    turn = st.tuples(
        st.sampled_from(["system", "user", "assistant"]),
        st.text(alphabet=alphabet, min_size=0, max_size=120),
    )
    return st.lists(turn, max_size=12)


def _conversation(turns: list[tuple[str, str]], last: str) -> list[Message]:
    return [Message(role, text) for role, text in turns] + [Message("user", last)]  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(_turns(_ALPHABET), st.text(alphabet=string.ascii_letters + " ", min_size=1))
def test_a_conversation_counted_within_the_budget_is_sent_whole(
    turns: list[tuple[str, str]], last: str
) -> None:
    messages = _conversation(turns, "q" + last)
    counted = estimate_conversation_tokens(messages)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        prompt = flatten_conversation(messages, token_budget=counted)
    assert prompt.trimmed_messages == 0
    assert prompt.estimated_tokens <= counted


@settings(max_examples=150, deadline=None)
@given(_turns(_PLAIN_ALPHABET), st.text(alphabet=string.ascii_letters, min_size=1))
def test_the_count_never_grows_when_the_oldest_message_goes(
    turns: list[tuple[str, str]], last: str
) -> None:
    # Without accented Latin letters: a text's share of them sets the rate of its ASCII letters
    # (French, German), so dropping an unaccented message can raise the rest's rate a little.
    messages = _conversation(turns, last)
    assert estimate_conversation_tokens(messages[1:]) <= estimate_conversation_tokens(messages)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet=string.ascii_letters + " .,", min_size=1, max_size=80), max_size=30),
    st.integers(min_value=20, max_value=400),
)
def test_trimming_keeps_the_longest_recent_history_that_fits(texts: list[str], budget: int) -> None:
    history = [
        Message("user" if i % 2 == 0 else "assistant", f"turn {i} {text}")
        for i, text in enumerate(texts)
    ]
    messages = [*history, Message("user", "and now?")]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", HistoryTrimmedWarning)
        try:
            prompt = flatten_conversation(messages, token_budget=budget)
        except InvalidInputError:
            return  # the question alone is over this tiny budget
    kept = history[prompt.trimmed_messages :]
    assert prompt.estimated_tokens <= budget
    assert all(m.text.strip() in prompt.question for m in kept)
    if prompt.trimmed_messages:  # one more (older) turn would not have fitted
        one_more = [*history[prompt.trimmed_messages - 1 :], Message("user", "and now?")]
        assert flatten_conversation(one_more, token_budget=10**6).estimated_tokens > budget


def test_long_history_is_trimmed_with_few_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    from janus_space import prompt as prompt_module

    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return estimate_tokens(text)

    monkeypatch.setattr(prompt_module, "estimate_tokens", counting)
    history = [Message("user", f"message {i}: " + "words " * 40) for i in range(1000)]
    with pytest.warns(HistoryTrimmedWarning):
        prompt = flatten_conversation([*history, Message("user", "last")])
    assert prompt.trimmed_messages > 900
    assert calls <= 20  # a bisection, not one estimate per dropped message
