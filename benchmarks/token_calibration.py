"""Calibration of ``janus_space.estimate_tokens``: ``python benchmarks/token_calibration.py``.

DeepSeek-LLM's tokenizer (Janus-Pro's; a 100k-vocabulary byte-level BPE) is not available
offline, so the reference is built from what is:

* **cl100k** — tiktoken's cl100k_base from llama-index-core's bundled cache, which is also the
  counter LlamaIndex packs prompts with;
* **pieces** — DeepSeek-LLM's published pre-tokenizer (five isolating regex splits: line
  breaks, letter runs, punctuation runs, trailing space, CJK runs; then every digit alone),
  re-implemented here with ``re``. BPE never merges across pieces, so the piece count is an
  exact lower bound on DeepSeek's token count;
* **reference** — cl100k's merges applied inside those pieces (the sum of cl100k counts of the
  pieces): a 100k byte-level BPE held to DeepSeek's boundaries; never below the piece count.

The estimator is fitted to be close to, and not below, the reference on every sample of the
classes the budget promises (English, code, CJK, mixed, data). It prints tokens per byte by
sample class, the estimator's error per sample, the reference's rates by character class, the
template's cost and the budget derived from all this. Exit status 1 if a promise fails.
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow `python benchmarks/token_calibration.py`
    sys.path.insert(0, str(ROOT))

from janus_space import tokens  # noqa: E402

SAMPLES = ROOT / "benchmarks" / "samples"
CLASSES = {  # file -> (class, calibrated: the estimate must not read below the reference)
    "english.txt": ("English prose", True),
    "code_python.txt": ("Python code", True),
    "chinese.txt": ("Chinese prose", True),
    "japanese.txt": ("Japanese prose", True),
    "mixed.md": ("Markdown en+zh+code", True),
    "data.csv": ("CSV data (digits)", True),
    "european.txt": ("French/German/Russian*", False),  # reported, not promised
}
SPACE_SYSTEM_PROMPT = (  # Janus's VLChatProcessor.system_prompt, which the Space's template uses
    "You are a helpful language and vision assistant. You are able to understand the visual "
    "content that the user provides, and assist the user with a variety of tasks using natural "
    "language."
)

# DeepSeek-LLM's pre-tokenizer (its tokenizer.json "pre_tokenizer": a Sequence of Splits with
# behavior "Isolated", then Digits(individual_digits=True), then ByteLevel without a regex).
_DS_LETTERS = (
    "A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1"
    "\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5"
    "\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a"
    "\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d"
    "\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3"
    "\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115"
    "\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
    "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
    "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
    "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
    "\U000118a0-\U000118df\U0001e900-\U0001e943"
)
DEEPSEEK_SPLITS = (
    re.compile("[\r\n]"),
    re.compile(rf"\s?[{_DS_LETTERS}]+"),
    re.compile("\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+"),
    re.compile(r"\s+$"),
    re.compile("[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"),
)


def _isolate(pieces: list[str], pattern: re.Pattern[str]) -> list[str]:
    """A tokenizers ``Split(behavior="isolated")``: every match and every gap is a piece."""
    out: list[str] = []
    for piece in pieces:
        start = 0
        for match in pattern.finditer(piece):
            if match.start() > start:
                out.append(piece[start : match.start()])
            if match.end() > match.start():
                out.append(match.group())
            start = match.end()
        if start < len(piece):
            out.append(piece[start:])
    return out


def _split_digits(pieces: list[str]) -> list[str]:
    """``Digits(individual_digits=True)``: every numeric character (Nd, Nl, No) alone."""
    out: list[str] = []
    for piece in pieces:
        run = ""
        for char in piece:
            if unicodedata.category(char) in ("Nd", "Nl", "No"):
                if run:
                    out.append(run)
                    run = ""
                out.append(char)
            else:
                run += char
        if run:
            out.append(run)
    return out


def deepseek_pieces(text: str) -> list[str]:
    """The pieces DeepSeek-LLM's pre-tokenizer cuts ``text`` into (each is >= 1 token)."""
    pieces = [text] if text else []
    for pattern in DEEPSEEK_SPLITS:
        pieces = _isolate(pieces, pattern)
    return _split_digits(pieces)


def cl100k() -> Callable[[str], list[int]]:
    """LlamaIndex's own token counter: tiktoken cl100k_base from llama-index-core's cache."""
    from llama_index.core.utils import get_tokenizer

    return get_tokenizer()


def reference_tokens(text: str, encode: Callable[[str], list[int]]) -> int:
    """cl100k's count inside DeepSeek's pieces: the calibration reference."""
    return sum(len(encode(piece)) for piece in deepseek_pieces(text))


def _check_against_tokenizers(texts: list[str]) -> str:
    """Compare ``deepseek_pieces`` with the real pipeline built in ``tokenizers``, if installed."""
    try:
        from tokenizers import Regex, pre_tokenizers
    except ImportError:
        return "tokenizers not installed: pre-tokenizer not cross-checked"
    splits = [pre_tokenizers.Split(Regex(p.pattern), "isolated") for p in DEEPSEEK_SPLITS]
    pipeline = pre_tokenizers.Sequence(
        [
            *splits,
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    for text in texts:
        theirs = [text[a:b] for _, (a, b) in pipeline.pre_tokenize_str(text)]
        if theirs != deepseek_pieces(text):
            return "MISMATCH with the tokenizers pipeline"
    return "pre-tokenizer identical to the `tokenizers` pipeline on every sample"


@dataclass(frozen=True)
class Sample:
    """One calibration text and its counts."""

    name: str
    label: str
    calibrated: bool
    text: str
    cl100k: int
    pieces: int
    reference: int
    estimate: int

    @property
    def nbytes(self) -> int:
        return len(self.text.encode("utf-8"))


def load_samples(encode: Callable[[str], list[int]]) -> Iterator[Sample]:
    """Every sample under benchmarks/samples, counted every way."""
    for name, (label, calibrated) in CLASSES.items():
        text = (SAMPLES / name).read_text(encoding="utf-8")
        yield Sample(
            name,
            label,
            calibrated,
            text,
            cl100k=len(encode(text)),
            pieces=len(deepseek_pieces(text)),
            reference=reference_tokens(text, encode),
            estimate=tokens.estimate_tokens(text),
        )


_CHAR_CLASSES = (
    ("line breaks", re.compile(r"[\r\n]")),
    ("digits", re.compile(r"\d")),
    ("Han", re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")),
    ("kana", re.compile("[\u3040-\u30ff]")),
    ("ASCII letters", re.compile(r"\s?[A-Za-z]+")),
    ("punctuation", re.compile(r"\s?(?:[^\w\s]|_)+")),
    ("space runs", re.compile(r"\s+")),
)


def class_rates(texts: list[str], encode: Callable[[str], list[int]]) -> dict[str, tuple[int, int]]:
    """Reference tokens and bytes per character class, over the DeepSeek pieces of all texts."""
    rates: dict[str, tuple[int, int]] = {}
    for text in texts:
        for piece in deepseek_pieces(text):
            for name, pattern in _CHAR_CLASSES:
                if pattern.fullmatch(piece) or (name in ("Han", "kana") and pattern.match(piece)):
                    tok, nbytes = rates.get(name, (0, 0))
                    rates[name] = (tok + len(encode(piece)), nbytes + len(piece.encode()))
                    break
    return rates


def template_tokens(encode: Callable[[str], list[int]]) -> int:
    """The Space's chat template around the question, by the reference, + BOS + 2 image tags."""
    template = f"{SPACE_SYSTEM_PROMPT}\n\n<|User|>: \n\n\n<|Assistant|>:"
    return reference_tokens(template, encode) + 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    encode = cl100k()
    samples = list(load_samples(encode))
    failures: list[str] = []

    print("Reference: cl100k_base (llama-index-core's cache) inside DeepSeek-LLM's pre-tokenizer")
    print("pieces. DeepSeek's own tokenizer was not available; its count was not measured.")
    print(_check_against_tokenizers([s.text for s in samples]))
    print()
    header = (
        f"{'sample':24} {'bytes':>6} {'cl100k':>6} {'tok/B':>6} {'pieces':>6} {'ref':>6}"
        f" {'tok/B':>6} {'old':>6} {'old err':>8} {'est':>6} {'est err':>8} {'est/cl':>7}"
    )
    print(header)
    print("-" * len(header))
    worst_cl = 0.0
    for s in samples:
        old = -(-s.nbytes // 3)
        err = s.estimate / s.reference - 1
        ratio = s.estimate / s.cl100k
        worst_cl = max(worst_cl, ratio)
        print(
            f"{s.label:24} {s.nbytes:6} {s.cl100k:6} {s.cl100k / s.nbytes:6.3f} {s.pieces:6}"
            f" {s.reference:6} {s.reference / s.nbytes:6.3f} {old:6} {old / s.reference - 1:+8.1%}"
            f" {s.estimate:6} {err:+8.1%} {ratio:7.3f}"
        )
        if s.calibrated and s.estimate < s.reference:
            failures.append(f"{s.label}: estimate {s.estimate} below the reference {s.reference}")
        if s.estimate < s.pieces:
            failures.append(f"{s.label}: estimate {s.estimate} below DeepSeek's {s.pieces} pieces")
    calibrated = [s for s in samples if s.calibrated]
    low = min(s.estimate / s.reference - 1 for s in calibrated)
    high = max(s.estimate / s.reference - 1 for s in calibrated)
    print("* not calibrated: long French and German words split finer than English ones")
    print(f"\nmargin over the reference on calibrated samples: {low:+.1%} .. {high:+.1%}")
    print(f"estimate / cl100k at most {worst_cl:.3f} (CL100K_RATIO = {tokens.CL100K_RATIO})")
    if worst_cl > tokens.CL100K_RATIO:
        failures.append(f"estimate/cl100k {worst_cl:.3f} exceeds CL100K_RATIO")

    print("\nReference tokens per byte by character class (all samples, DeepSeek pieces):")
    for name, (tok, nbytes) in class_rates([s.text for s in samples], encode).items():
        print(f"  {name:14} {tok:6} tokens / {nbytes:6} bytes = {tok / nbytes:.3f} per byte")

    measured = template_tokens(encode)
    print(
        f"\nThe Space's template: {measured} tokens by the reference (reserved: "
        f"{tokens.TEMPLATE_TOKENS})"
    )
    if measured > tokens.TEMPLATE_TOKENS:
        failures.append(f"template {measured} tokens exceeds TEMPLATE_TOKENS")
    print(
        f"Budget: {tokens.CONTEXT_TOKENS} context - {tokens.ANSWER_TOKENS} answer - "
        f"{tokens.IMAGE_TOKENS} image - {tokens.TEMPLATE_TOKENS} template = "
        f"{tokens.DEFAULT_TOKEN_BUDGET} estimated tokens for the question"
    )
    print(
        f"Advertised to cl100k counters (LlamaIndex): context_window "
        f"{tokens.CL100K_CONTEXT_WINDOW}, num_output {tokens.ANSWER_TOKENS} -> prompts up to "
        f"{tokens.CL100K_CONTEXT_WINDOW - tokens.ANSWER_TOKENS} cl100k tokens"
    )
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
