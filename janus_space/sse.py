"""Incremental parser for a server-sent-event byte stream: any chunking, CRLF, multi-line data."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["SSEDecoder"]

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEDecoder:
    """Feed bytes as they arrive; get the ``data`` payload of each complete event.

    Follows the WHATWG event-stream rules the Space needs: lines end in LF, CRLF or CR; ``data``
    fields of one event are joined with LF; comment lines (``:``) and other fields are ignored;
    an event ends at a blank line.  An event larger than ``max_event_bytes`` raises ``ValueError``.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._data_size = 0
        self._pending_cr = False
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> Iterator[str]:
        """Consume one chunk, yielding the data of every event it completes."""
        if not chunk:  # an empty chunk must not forget a CR that ended the previous one
            return
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._pending_cr = False
        self._buffer += chunk
        start = 0
        buf = self._buffer
        while True:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start)
            if lf < 0 and cr < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, nxt = lf, lf + 1
            elif cr + 1 < len(buf):
                end, nxt = cr, cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            else:  # CR at the end of the buffer: a following LF belongs to it
                end, nxt = cr, cr + 1
                self._pending_cr = True
            line = bytes(buf[start:end])
            start = nxt
            event = self._line(line)
            if event is not None:
                yield event
        del buf[:start]
        if len(buf) > self._max:
            raise ValueError(f"event-stream line longer than {self._max} bytes")

    def _line(self, raw: bytes) -> str | None:
        if not raw:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data.clear()
            self._data_size = 0
            return data
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value)
            if self._data_size > self._max:
                raise ValueError(f"event-stream event larger than {self._max} bytes")
            self._data.append(value)
        return None

    def close(self) -> Iterator[str]:
        """End of stream: an unterminated final event is discarded, as the spec says."""
        self._buffer.clear()
        self._data.clear()
        return iter(())
