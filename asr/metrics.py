"""Word and character error rates (jiwer), per utterance and over a corpus; scoring a manifest's hypotheses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jiwer

from asr.text import normalize_text

if TYPE_CHECKING:
    from asr.data import Utterance


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int  # words (or characters) in the reference

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Edit-distance counts between two word sequences (an empty reference counts every word as inserted)."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return ErrorCounts(0, 0, len(hyp), 0)
    if not hyp:
        return ErrorCounts(0, len(ref), 0, len(ref))
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(ref))


def char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Edit-distance counts between two character sequences (spaces count as characters)."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    if not ref:
        return ErrorCounts(0, 0, len(hyp), 0)
    if not hyp:
        return ErrorCounts(0, len(ref), 0, len(ref))
    out = jiwer.process_characters(ref, hyp)
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(ref))


def error_rate(counts: list[ErrorCounts]) -> float:
    """Total errors / total reference length, in percent."""
    ref = sum(c.reference_length for c in counts)
    errs = sum(c.errors for c in counts)
    return 100.0 * errs / ref if ref else (0.0 if errs == 0 else float("inf"))


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate in percent."""
    return error_rate([word_errors(r, h) for r, h in zip(references, hypotheses, strict=True)])


def cer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus character error rate in percent."""
    return error_rate([char_errors(r, h) for r, h in zip(references, hypotheses, strict=True)])


def score(utts: list[Utterance], hyps: list[str]) -> dict:
    """Per-utterance rows and corpus WER/CER (percent) of hypotheses against normalised references."""
    rows, words, chars = [], [], []
    for u, hyp in zip(utts, hyps, strict=True):
        ref = normalize_text(u.text)
        w, c = word_errors(ref, hyp), char_errors(ref, hyp)
        words.append(w)
        chars.append(c)
        rows.append({
            "id": u.id, "ref": ref, "hyp": hyp, "words": w.reference_length, "word_errors": w.errors,
            "sub": w.substitutions, "del": w.deletions, "ins": w.insertions, "char_errors": c.errors,
        })
    return {"wer": error_rate(words), "cer": error_rate(chars), "utterances": rows}
