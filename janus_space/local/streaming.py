"""Token ids → text deltas as they are generated, held back where a stop sequence may begin.

``IncrementalDecoder`` turns a growing list of token ids into the new text each token adds
(the prefix/read-offset scheme of text-generation servers: only a short window is re-decoded,
and text ending in an incomplete UTF-8 character waits for the next token). ``StopScanner``
cuts the answer at the first stop sequence and never releases text that could be the start of
one, so the deltas a caller sees always join to the final answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["IncrementalDecoder", "StopScanner"]

Decode = Callable[[Sequence[int]], str]
_INCOMPLETE = "\ufffd"  # what a tokenizer decodes half a UTF-8 character to


class IncrementalDecoder:
    """The text each new token adds, decoding only the last few tokens each time."""

    def __init__(self, decode: Decode) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # start of the window that is re-decoded for context
        self._read = 0  # tokens before this have been turned into text already

    def push(self, token_ids: Sequence[int]) -> str:
        """Add tokens; return the text they complete (may be empty while a character is cut)."""
        self._ids.extend(token_ids)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith(_INCOMPLETE):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """The text still held back at the end of generation (e.g. a cut character)."""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :] if len(after) > len(before) else ""


class StopScanner:
    """Releases answer text up to the first stop sequence, holding back possible stop starts."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False
        """True once a stop sequence was seen: nothing more will be released."""

    def feed(self, text: str) -> str:
        """Add generated text; return what can be shown now."""
        if self.stopped or not text:
            return ""
        if not self._stops:
            return text
        pending = self._pending + text
        cut = min((i for i in (pending.find(s) for s in self._stops) if i != -1), default=-1)
        if cut != -1:
            self.stopped = True
            self._pending = ""
            return pending[:cut]
        hold = self._held_back(pending)
        self._pending = pending[len(pending) - hold :] if hold else ""
        return pending[: len(pending) - hold]

    def finish(self) -> str:
        """Generation ended without a stop sequence: release what was held back."""
        rest, self._pending = ("" if self.stopped else self._pending), ""
        return rest

    def _held_back(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop sequence."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
