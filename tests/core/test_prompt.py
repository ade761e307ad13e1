"""Conversation flattening: format, trimming oldest-first, one image, clear errors."""

from __future__ import annotations

import warnings

import pytest

from janus_space import (
    HistoryTrimmedWarning,
    ImagesDroppedWarning,
    InvalidInputError,
    Message,
    flatten_conversation,
)
from janus_space.prompt import DEFAULT_TOKEN_BUDGET, estimate_tokens


def test_single_user_message_is_sent_verbatim() -> None:
    prompt = flatten_conversation([Message("user", "What is in the picture?")])
    assert prompt.question == "What is in the picture?"
    assert (prompt.image, prompt.trimmed_messages, prompt.dropped_images) == (None, 0, 0)


def test_system_and_history_are_flattened_in_the_documented_format() -> None:
    prompt = flatten_conversation(
        [
            Message("system", "Answer briefly."),
            Message("user", "Hi"),
            Message("assistant", "Hello!"),
            Message("user", "What colour is it?"),
        ]
    )
    assert prompt.question == (
        "Answer briefly.\n\nEarlier conversation:\nUser: Hi\nAssistant: Hello!\n\n"
        "What colour is it?"
    )


def test_most_recent_image_is_sent_and_the_rest_reported() -> None:
    with pytest.warns(ImagesDroppedWarning, match="dropping 1"):
        prompt = flatten_conversation(
            [
                Message("user", "first", (b"old",)),
                Message("assistant", "ok"),
                Message("user", "now", (b"new",)),
            ]
        )
    assert prompt.image == b"new" and prompt.dropped_images == 1


def test_image_from_an_earlier_turn_is_still_sent() -> None:
    prompt = flatten_conversation(
        [Message("user", "look", (b"img",)), Message("assistant", "ok"), Message("user", "and?")]
    )
    assert prompt.image == b"img"


def test_extra_images_error_policy() -> None:
    with pytest.raises(InvalidInputError, match="2 images"):
        flatten_conversation([Message("user", "two", (b"a", b"b"))], extra_images="error")


def test_history_is_trimmed_oldest_first_and_reported() -> None:
    turns = [Message("system", "Be kind.")]
    for i in range(40):
        turns.append(Message("user", f"question {i} " + "x" * 300))
        turns.append(Message("assistant", f"answer {i} " + "y" * 300))
    turns.append(Message("user", "final question"))
    with pytest.warns(HistoryTrimmedWarning):
        prompt = flatten_conversation(turns)
    assert prompt.trimmed_messages > 0
    assert prompt.question.startswith("Be kind.") and prompt.question.endswith("final question")
    assert "question 39" in prompt.question and "question 0 " not in prompt.question
    assert estimate_tokens(prompt.question) <= DEFAULT_TOKEN_BUDGET


def test_no_warning_when_nothing_is_changed() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flatten_conversation([Message("user", "short", (b"one",))])


def test_last_user_message_is_never_cut() -> None:
    with pytest.raises(InvalidInputError, match="tokens"):
        flatten_conversation([Message("user", "z" * (DEFAULT_TOKEN_BUDGET * 4))])


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ([Message("system", "rules")], "only system"),
        ([Message("user", "q"), Message("assistant", "a")], "last message must come from the user"),
        ([Message("user", "   ")], "no text"),
        (["just a string"], "not a janus_space.Message"),
    ],
)
def test_bad_conversations_are_refused(messages: list[Message], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        flatten_conversation(messages)


def test_bad_roles_and_text_types() -> None:
    with pytest.raises(InvalidInputError, match="role"):
        Message("tool", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="string"):
        Message("user", 5)  # type: ignore[arg-type]
