"""Janus-Pro's context budget, stated once, and the token estimate it is measured in.

The budget. Janus-Pro-7B has a 4096-token context. Every call to the Space spends 576 of them
on the image (the Space always sends one; the client's placeholder too) and about 50 on the
Space's chat template (its system prompt, the role tags, BOS and the image's begin/end tags;
64 are reserved), and reserves 512 for the answer (the Space's fixed ``max_new_tokens``). What
is left, ``DEFAULT_TOKEN_BUDGET`` = 2944 tokens, is the question: the flattened conversation.

The estimate. DeepSeek-LLM's tokenizer (a 100k-vocabulary byte-level BPE) cannot be loaded
here, so ``estimate_tokens`` counts character classes the way that tokenizer's published
pre-tokenizer splits text (newlines, letter runs, punctuation runs and CJK runs apart; every
digit on its own) and prices each piece with rates fitted on English prose, Python code,
Chinese, Japanese, CSV data and mixed Markdown, then adds 5 %. The reference it was fitted to
is tiktoken's cl100k_base counted inside DeepSeek-LLM's pre-tokenizer pieces, which is never
below the number of pieces (an exact lower bound on DeepSeek's own count); on those samples
the estimate is 2-17 % above that reference (``benchmarks/token_calibration.py`` prints the
figures). DeepSeek's real count was not measured: it is likely lower on Chinese (its vocabulary
was trained on much more Chinese than cl100k's). Not calibrated: long French and German words
(about 5 and 18 % below the reference) and scripts other than Latin, Greek, Cyrillic and CJK
(priced high, unchecked).

Frameworks that count with tiktoken. LlamaIndex packs prompts up to ``context_window -
num_output`` tokens by cl100k_base. The estimate reads up to ``CL100K_RATIO`` times cl100k's
count (code and digit-heavy text read highest: DeepSeek splits every digit and newline), so
the window to advertise there is ``CL100K_CONTEXT_WINDOW``: a prompt that fills it still fits
``DEFAULT_TOKEN_BUDGET`` by the estimate.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import NamedTuple

__all__ = [
    "ANSWER_TOKENS",
    "CL100K_CONTEXT_WINDOW",
    "CL100K_RATIO",
    "CONTEXT_TOKENS",
    "DEFAULT_TOKEN_BUDGET",
    "IMAGE_TOKENS",
    "TEMPLATE_TOKENS",
    "estimate_tokens",
]

CONTEXT_TOKENS = 4096
"""Janus-Pro-7B's context window, in tokens (DeepSeek-LLM-7B's)."""
ANSWER_TOKENS = 512
"""Reserved for the answer: the Space's fixed ``max_new_tokens``."""
IMAGE_TOKENS = 576
"""What the image costs (24x24 SigLIP patches); every call carries one, the placeholder too."""
TEMPLATE_TOKENS = 64
"""Reserved for the Space's chat template: system prompt, role tags, BOS, image begin/end tags."""
DEFAULT_TOKEN_BUDGET = CONTEXT_TOKENS - ANSWER_TOKENS - IMAGE_TOKENS - TEMPLATE_TOKENS
"""Estimated tokens the question (the flattened conversation) may use: 2944."""

CL100K_RATIO = 1.4
"""The most the estimate reads above tiktoken cl100k_base's count, with room to spare: measured
up to 1.34 on the calibration samples (Markdown and code, then CSV data: DeepSeek makes a token
of every digit and every line break, cl100k of up to three digits and of runs of them)."""
_JOIN_TOKENS = 16
"""Text flattening adds around what a framework counted (blank lines between system and user)."""
CL100K_CONTEXT_WINDOW = ANSWER_TOKENS + math.floor(
    (DEFAULT_TOKEN_BUDGET - _JOIN_TOKENS) / CL100K_RATIO
)
"""The context window to advertise to frameworks that count with cl100k_base (LlamaIndex):
the answer plus the prompt tokens, by cl100k, whose estimate fits ``DEFAULT_TOKEN_BUDGET``."""

# Character classes. Han ideographs, kana and Hangul are priced per character.
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_KANA_HANGUL = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\uac00-\ud7af"
_CJK = _HAN + _KANA_HANGUL
_LETTER = rf"[^\W\d_{_CJK}]"  # a letter of any other script
# DeepSeek's punctuation split takes ASCII letters too, so a word is cut wherever it changes
# between ASCII and other letters ("march" + "é"): each such run is a piece of its own.
_NON_ASCII_LETTER = rf"[^\W\d_A-Za-z{_CJK}]"
_HSPACE = r"[^\S\r\n]"  # whitespace other than line breaks, which are tokens of their own
_ASCII_PUNCT = r"[!-/:-@\[-`{-~]"  # with the underscore: DeepSeek splits snake_case there
# What a single space before it joins (DeepSeek's letter and punctuation pieces take one).
_JOINS_SPACE = rf"{_LETTER}|[!-/:-@\[-`{{-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]"


class _Patterns(NamedTuple):
    """The estimate's regexes, compiled on first use (about 50 ms: not at import)."""

    word: re.Pattern[str]
    bare_word: re.Pattern[str]
    non_ascii_letter: re.Pattern[str]
    near_latin: re.Pattern[str]
    punct_run: re.Pattern[str]
    astral: re.Pattern[str]
    han: re.Pattern[str]
    kana: re.Pattern[str]
    digit: re.Pattern[str]
    space_run: re.Pattern[str]
    leading_space: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    return _Patterns(
        word=re.compile(rf"[A-Za-z]+|{_NON_ASCII_LETTER}+"),
        bare_word=re.compile(  # a word with no space before it
            rf"(?<![A-Za-z])(?<!{_HSPACE})[A-Za-z]+"
            rf"|(?<!{_NON_ASCII_LETTER})(?<!{_HSPACE}){_NON_ASCII_LETTER}+"
        ),
        non_ascii_letter=re.compile(_NON_ASCII_LETTER),
        # Accented Latin, Greek, Cyrillic letters: two UTF-8 bytes, priced apart.
        near_latin=re.compile(f"(?={_LETTER})[\u00c0-\u052f]"),
        # Runs of ASCII punctuation; any other symbol is a run of its own.
        punct_run=re.compile(rf"{_ASCII_PUNCT}+|[^\w\s]"),
        astral=re.compile("[\U00010000-\U0010ffff]"),
        han=re.compile(f"[{_HAN}]"),
        kana=re.compile(f"[{_KANA_HANGUL}]"),
        digit=re.compile(r"\d"),
        space_run=re.compile(rf"{_HSPACE}+"),
        # The single space before a word or punctuation belongs to it (no token of its own).
        leading_space=re.compile(rf"(?<!{_HSPACE}){_HSPACE}(?={_JOINS_SPACE})"),
    )


# Fitted rates, in tokens (benchmarks/token_calibration.py prints how well they fit).
_WORD_BASE = 0.7  # a letter run: 0.7 + 0.085 per ASCII letter, and at least one token
_ASCII_LETTER = 0.085
_SHORT_WORD_FLOOR = {1: 1 - 0.785, 2: 1 - 0.87, 3: 1 - 0.955}  # tops 1-3 letter runs up to 1
_BARE_WORD_LETTER = 0.045  # more per letter with no space before the word (code, CSV, line starts)
_LONG_WORD_LETTER = 0.2  # more per letter past 12: long identifiers split into several tokens
_NEAR_LATIN_LETTER = 0.5  # instead of 0.085: accented Latin, Greek, Cyrillic
_OTHER_LETTER = 1.0  # instead of 0.085: Devanagari, Thai, Hebrew, ... (not calibrated: priced high)
_PUNCT_BASE = 0.9  # a run of ASCII punctuation: 0.9 + 0.1 per character; other symbols alone
_PUNCT_CHAR = 0.1
_ASTRAL_CHAR = 2.0
_HAN_TOKENS = 1.3  # per Han character
_KANA_TOKENS = 1.1  # per kana or Hangul character
_MARGIN = 1.05  # on top of the fitted rates, so no calibration sample reads below the reference


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` is estimated to take for Janus-Pro (DeepSeek-LLM's tokenizer), rounded up.

    Reads 2-17 % above the calibration reference on English, code, CJK and data (see the
    module docstring), and never below the number of pieces DeepSeek's pre-tokenizer cuts
    ASCII, Latin, Greek, Cyrillic and CJK text into: every piece is at least one token. Linear
    in the text's length (a few regex passes, no Python loop over characters).
    """
    if not text:
        return 0
    pattern = _patterns()
    total = float(text.count("\n") + text.count("\r") + len(pattern.digit.findall(text)))
    total += _HAN_TOKENS * len(pattern.han.findall(text))
    total += _KANA_TOKENS * len(pattern.kana.findall(text))
    puncts = pattern.punct_run.findall(text)
    if puncts:
        total += _PUNCT_BASE * len(puncts) + _PUNCT_CHAR * sum(map(len, puncts))
        if not text.isascii():
            total += _ASTRAL_CHAR * len(pattern.astral.findall(text))
    # A run of spaces is a token unless it is the single space a word or punctuation takes.
    total += len(pattern.space_run.findall(text)) - len(pattern.leading_space.findall(text))
    words = pattern.word.findall(text)
    if words:
        total += _price_words(text, words, pattern)
    return math.ceil(total * _MARGIN)


def _price_words(text: str, words: list[str], pattern: _Patterns) -> float:
    """The letter runs' tokens (see the rates above)."""
    lengths = Counter(map(len, words))
    letters = sum(n * count for n, count in lengths.items())
    total = _WORD_BASE * len(words) + _ASCII_LETTER * letters
    total += sum(_SHORT_WORD_FLOOR[n] * lengths[n] for n in _SHORT_WORD_FLOOR)
    total += _LONG_WORD_LETTER * sum((n - 12) * c for n, c in lengths.items() if n > 12)
    total += _BARE_WORD_LETTER * sum(map(len, pattern.bare_word.findall(text)))
    if text.isascii():
        return total
    near = len(pattern.near_latin.findall(text))
    other = len(pattern.non_ascii_letter.findall(text)) - near
    total += (_NEAR_LATIN_LETTER - _ASCII_LETTER) * near
    total += (_OTHER_LETTER - _ASCII_LETTER) * other
    return total
