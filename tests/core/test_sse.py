"""The SSE decoder: framing rules the Space's stream relies on."""

from __future__ import annotations

import pytest

from janus_space.sse import SSEDecoder


def decode(*chunks: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_one_event_per_blank_line() -> None:
    assert decode(b'data: {"a":1}\n\ndata: {"b":2}\n\n') == ['{"a":1}', '{"b":2}']


def test_crlf_and_cr_line_endings() -> None:
    assert decode(b"data: x\r\n\r\ndata: y\r\rdata: z\n\n") == ["x", "y", "z"]


def test_cr_lf_split_across_chunks_is_one_line_end() -> None:
    assert decode(b"data: x\r", b"\n\r", b"\n") == ["x"]


def test_multi_line_data_is_joined_with_newline() -> None:
    assert decode(b"data: first\ndata: second\n\n") == ["first\nsecond"]


def test_comments_and_other_fields_are_ignored() -> None:
    assert decode(b": keep-alive\n\nevent: message\nid: 3\ndata: payload\n\n") == ["payload"]


def test_no_space_after_colon_and_empty_data() -> None:
    assert decode(b"data:tight\n\ndata\n\n") == ["tight", ""]


def test_unterminated_event_is_not_emitted() -> None:
    assert decode(b"data: half") == []


def test_byte_by_byte_feeding_gives_the_same_events() -> None:
    raw = b'data: {"msg":"estimation"}\r\n\r\n: ping\n\ndata: \xc3\xa9t\xc3\xa9\n\n'
    assert decode(*[raw[i : i + 1] for i in range(len(raw))]) == decode(raw)
    assert decode(raw)[-1] == "été"


def test_oversized_line_raises_value_error() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(ValueError, match="longer than 64"):
        list(decoder.feed(b"data: " + b"x" * 100))


def test_oversized_event_across_lines_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(ValueError, match="larger than 64"):
        list(decoder.feed(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n"))
