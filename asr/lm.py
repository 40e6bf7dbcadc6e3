"""Word n-gram language models: read and write ARPA files, score words for the beam search.

    python -m asr.lm build --order 3 corpus.txt lm.arpa                      # one sentence a line
    python -m asr.lm build --order 3 --manifest manifests/an4/train.jsonl exp/an4_lm/3gram.arpa
    python -m asr.lm score lm.arpa sentences.txt                             # log-probs, perplexity

ARPA files hold log10 probabilities; every score this module returns is a natural log.
A scorer (`NgramLM`, or `KenLMScorer` when the optional `kenlm` module is installed) offers what
the beam search needs: `begin_state()`, `score(state, word) -> (logprob, new_state)` and
`final_score(state)` for </s>. Words are matched as they are: an LM for this package's
vocabulary is lower-case (text normalised with asr.text.normalize_text, as `build` does).
Building an LM (interpolated modified Kneser-Ney, pure Python: fine for transcripts of a few
million words; for larger corpora use KenLM's lmplz) is in asr/kneser_ney.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path
from typing import Hashable, Iterable, Iterator, Protocol

from asr.arpa import EOS, LN10, LMError, NgramLM, arpa_vocabulary, numbered_lines, read_arpa, write_arpa
from asr.text import normalize_text

__all__ = ["LMError", "LanguageModel", "NgramLM", "KenLMScorer", "load_lm", "read_arpa", "write_arpa"]

AUTO_KENLM_BYTES = 50_000_000  # backend="auto" hands ARPA files larger than this to kenlm, if installed
_CACHE_LIMIT = 1 << 20  # cached (state, word) scores before the cache is emptied


class LanguageModel(Protocol):
    """What the beam search needs from a word language model (natural-log scores)."""

    order: int
    vocabulary: frozenset[str] | None  # the LM's words (None: unknown, e.g. a KenLM binary)

    def begin_state(self) -> Hashable: ...
    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]: ...
    def final_score(self, state: Hashable) -> float: ...


class KenLMScorer:
    """The same interface as NgramLM over a `kenlm.Model` (ARPA or KenLM binary; natural-log scores)."""

    def __init__(self, path: str | Path):
        try:
            import kenlm  # optional: pip install kenlm (or the package's [kenlm] extra)
        except ImportError as e:
            raise LMError(f"{path}: the kenlm backend needs the kenlm module (pip install kenlm)") from e
        self._kenlm = kenlm
        try:
            self.model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as e:
            raise LMError(f"{path}: kenlm cannot load it ({e})") from e
        self.order = self.model.order
        self.vocabulary = None if _is_kenlm_binary(Path(path)) else arpa_vocabulary(path)
        self._cache: dict = {}

    def begin_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def score(self, state, word: str):
        key = (state, word)
        hit = self._cache.get(key)
        if hit is None:
            out = self._kenlm.State()
            hit = (self.model.BaseScore(state, word, out) * LN10, out)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def final_score(self, state) -> float:
        return self.score(state, EOS)[0]


def _is_kenlm_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"mmap lm "  # KenLM's binary files start "mmap lm http://kheafield.com/code"


def _kenlm_installed() -> bool:
    return importlib.util.find_spec("kenlm") is not None


def load_lm(path: str | Path, backend: str = "auto") -> LanguageModel:
    """An ARPA (plain/gzip) or KenLM binary file -> a scorer.

    backend: "python" (NgramLM, ARPA only), "kenlm" (needs the kenlm module), or "auto": kenlm for
    binaries and for ARPA files over AUTO_KENLM_BYTES when kenlm is installed, else python.
    """
    path = Path(path)
    if backend not in ("auto", "python", "kenlm"):
        raise ValueError(f"backend must be 'auto', 'python' or 'kenlm', got {backend!r}")
    if not path.is_file():
        raise LMError(f"{path}: no such language model file")
    binary = _is_kenlm_binary(path)
    if backend == "auto":
        big = binary or path.stat().st_size > AUTO_KENLM_BYTES
        backend = "kenlm" if big and _kenlm_installed() else "python"
    if backend == "kenlm":
        return KenLMScorer(path)
    if binary:
        raise LMError(f"{path}: a KenLM binary; load it with backend='kenlm' (pip install kenlm)")
    return read_arpa(path)


def read_sentences(path: str | Path, manifest: bool = False) -> Iterator[str]:
    """Lines of a text file, or the "text" fields of a JSONL manifest (manifest=True)."""
    if manifest:
        from asr.data import ManifestError, read_jsonl  # lazy: asr.data pulls in torch

        try:
            rows = read_jsonl(path, required=("text",))
        except ManifestError as e:
            raise LMError(str(e)) from e
        yield from (str(row["text"]) for row in rows)
        return
    for _, line in numbered_lines(Path(path)):
        yield line


def sentence_logprob(lm: LanguageModel, words: Iterable[str]) -> float:
    """Natural-log probability of a whole sentence, </s> included."""
    state, total = lm.begin_state(), 0.0
    for w in words:
        lp, state = lm.score(state, w)
        total += lp
    return total + lm.final_score(state)


def _build(args: argparse.Namespace) -> None:
    from asr.kneser_ney import build_kneser_ney

    lm = build_kneser_ney(read_sentences(args.corpus, args.manifest), args.order)
    write_arpa(lm, args.out)
    counts = " ".join(f"{n}-grams={c}" for n, c in enumerate(lm.counts(), 1))
    print(f"wrote {args.out}: order {lm.order}, {len(lm.vocabulary)} words, {counts}")


def _score(args: argparse.Namespace) -> None:
    lm = load_lm(args.lm, args.backend)
    total, tokens, oov, sentences = 0.0, 0, 0, 0
    for text in map(normalize_text, read_sentences(args.text, args.manifest)):
        words = text.split()
        lp = sentence_logprob(lm, words)
        print(f"{lp:.4f}\t{text}")
        total, tokens, sentences = total + lp, tokens + len(words) + 1, sentences + 1
        oov += sum(w not in lm.vocabulary for w in words) if lm.vocabulary is not None else 0
    ppl = math.exp(-total / tokens) if tokens else float("nan")
    print(f"sentences={sentences} words={tokens - sentences} oov={oov} logprob={total:.3f} ppl={ppl:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.lm", description="Build or score word n-gram LMs (ARPA).")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="estimate an interpolated modified Kneser-Ney model, write ARPA")
    b.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    b.add_argument("--manifest", action="store_true", help="CORPUS is a JSONL manifest: use its \"text\" fields")
    b.add_argument("corpus", help="text, one sentence a line (normalised with asr.text.normalize_text)")
    b.add_argument("out", help="ARPA file to write (.gz for gzip)")
    s = sub.add_parser("score", help="natural-log probability of each sentence, and the perplexity")
    s.add_argument("lm", help="ARPA file (or KenLM binary with --backend kenlm)")
    s.add_argument("text", help="text, one sentence a line")
    s.add_argument("--manifest", action="store_true", help="TEXT is a JSONL manifest")
    s.add_argument("--backend", default="auto", choices=["auto", "python", "kenlm"])
    args = p.parse_args(argv)
    try:
        _build(args) if args.command == "build" else _score(args)
    except (LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
