"""Token ids → text deltas, and stop sequences, over many generated inputs (no model needed)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from janus_space.local.streaming import IncrementalDecoder, StopScanner
from janus_space.prompt import cut_at_stop

# Pure functions: no deadline, and no "slow input" check, which a garbage collection of the
# model tests' tensors can trip on a busy machine.
calm = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _utf8(ids: Sequence[int]) -> str:
    """A byte-level tokenizer: every token is one byte of UTF-8."""
    return bytes(ids).decode("utf-8", errors="replace")


def _chunks(items: Sequence[int] | str, cuts: list[int]) -> list[Sequence[int] | str]:
    points = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(points)]


@calm
@given(st.text(), st.lists(st.integers(min_value=0)))
def test_deltas_join_to_the_whole_text_and_never_show_half_a_character(
    text: str, cuts: list[int]
) -> None:
    ids = list(text.encode("utf-8"))
    decoder = IncrementalDecoder(_utf8)
    deltas = [decoder.push(chunk) for chunk in _chunks(ids, cuts)]  # type: ignore[arg-type]
    deltas.append(decoder.flush())
    assert "".join(deltas) == text
    assert all("\ufffd" not in delta for delta in deltas)


def test_a_character_split_over_tokens_waits_for_its_last_byte() -> None:
    decoder = IncrementalDecoder(_utf8)
    euro = list("€".encode())
    assert decoder.push(euro[:1]) == ""
    assert decoder.push(euro[1:2]) == ""
    assert decoder.push(euro[2:]) == "€"


def test_a_cut_character_at_the_end_is_flushed_as_the_tokenizer_decodes_it() -> None:
    decoder = IncrementalDecoder(_utf8)
    assert decoder.push([*b"ok", 0xE2]) == ""
    assert decoder.flush() == "ok\ufffd"


stop_text = st.text(alphabet="abc ", max_size=40)


stops = st.lists(st.text(alphabet="abc", min_size=1, max_size=4), max_size=3)


@calm
@given(stop_text, stops, st.lists(st.integers(min_value=0)))
def test_released_text_is_the_answer_cut_at_the_first_stop(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    scanner = StopScanner(stops)
    released = [scanner.feed(chunk) for chunk in _chunks(text, cuts)]  # type: ignore[arg-type]
    released.append(scanner.finish())
    assert "".join(released) == cut_at_stop(text, stops)
    assert scanner.stopped == any(stop in text for stop in stops)


def test_text_that_may_begin_a_stop_is_held_until_it_cannot() -> None:
    scanner = StopScanner(["</answer>"])
    assert scanner.feed("yes </ans") == "yes "
    assert scanner.feed("wer") == ""
    assert scanner.feed("ed") == "</answered"
    assert scanner.feed(" fine </answer> more") == " fine "
    assert scanner.stopped
    assert scanner.feed("after") == ""
    assert scanner.finish() == ""
