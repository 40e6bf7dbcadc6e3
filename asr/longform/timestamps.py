"""Word timestamps from a CTC alignment: which frame emitted each token -> words with start, end, confidence.

    alignment = greedy_alignments(log_probs, lengths)[b]           # or a beam hypothesis' (tokens, frames)
    words = timed_words(log_probs[b, :lengths[b]], alignment, vocab, output_frame_seconds(cfg), seg.start_s)

A word is the run of tokens between word boundaries (a space token, or a BPE piece starting with "▁").
It spans the output frames from the first frame of its first token to the last frame of its last token
(a token lasts from the frame that emits it while the same token stays the best class). Output frame k
is centred at k * frame_s and spans half a frame either side; to_hops turns that into 10 ms steps. A
word's confidence is the mean probability of its tokens at the frames that emitted them. CTC spikes are
narrow and often early, so `snap_to_speech` can move the edges to the speech (energy, per 10 ms step)
around them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from asr.decoding import Alignment
from asr.model import SUBSAMPLING
from asr.text import Vocab

WORD_START = "▁"  # SentencePiece's mark on pieces that begin a word


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds in the original file
    end: float  # seconds, > start
    confidence: float  # 0..1, mean probability of the word's tokens where they were emitted


@dataclass(frozen=True)
class WordSpan:
    """A word in frames (output frames, or feature hops after to_hops), before conversion to seconds."""

    word: str
    first: int  # first frame
    last: int  # last frame (inclusive)
    confidence: float


def token_text(vocab: Vocab, token: int) -> str:
    """A token's characters, with word boundaries as spaces (CharVocab's " ", BPE's "▁")."""
    return vocab.tokens[token].replace(WORD_START, " ")


def word_spans(log_probs: torch.Tensor, alignment: Alignment, vocab: Vocab) -> list[WordSpan]:
    """One utterance's (T, V) log-probs and its alignment -> its words in frames."""
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got {tuple(log_probs.shape)}")
    if len(alignment.tokens) != len(alignment.frames):
        raise ValueError(f"{len(alignment.tokens)} tokens but {len(alignment.frames)} frames")
    if alignment.frames and not 0 <= alignment.frames[0] <= alignment.frames[-1] < log_probs.shape[0]:
        raise ValueError(f"frames must lie in [0, {log_probs.shape[0]}), got {alignment.frames[0]}..{alignment.frames[-1]}")
    best = log_probs.argmax(dim=-1).tolist()  # (T,)
    frames = list(alignment.frames) + [log_probs.shape[0]]
    spans: list[WordSpan] = []
    chars, first, last, probs = "", 0, 0, []

    def close() -> None:
        if chars:
            spans.append(WordSpan(chars, first, last, float(np.mean(probs))))

    for i, token in enumerate(alignment.tokens):
        frame, end = frames[i], frames[i] + 1
        while end < frames[i + 1] and best[end] == token:  # the token lasts while it stays the best class
            end += 1
        counted = False
        for ch in token_text(vocab, token):
            if ch == " ":
                close()
                chars, probs = "", []
                continue
            if not chars:
                first = frame
            chars += ch
            last = end - 1
            if not counted:  # one probability per token, in the word it (mostly) belongs to
                probs.append(float(log_probs[frame, token].exp()))
                counted = True
    close()
    return spans


def kept_tokens(alignment: Alignment, first: int, end: int) -> Alignment:
    """Only the tokens emitted at frames first <= frame < end: the part of a window that its segment keeps
    (the rest is context its neighbour keeps; each token is emitted in one place, so none is kept twice)."""
    pairs = [(t, f) for t, f in zip(alignment.tokens, alignment.frames) if first <= f < end]
    return Alignment(tuple(t for t, _ in pairs), tuple(f for _, f in pairs))


def snap_to_speech(spans: list[WordSpan], voiced: np.ndarray, max_stretch: int = 60) -> list[WordSpan]:
    """Move word edges onto the speech around them: a word's start goes to the onset of the voiced run
    it starts in (or to its first voiced frame), its end to the end of the voiced run it ends in (or to
    its last voiced frame), by at most `max_stretch` frames outwards, never into a neighbour. Words
    with no voiced frame stay as they are. spans and voiced ((N,) bool) in the same frames: feature hops."""
    out: list[WordSpan] = []
    n = len(voiced)
    for i, span in enumerate(spans):
        inside = np.flatnonzero(voiced[span.first : span.last + 1])
        if len(inside) == 0:
            out.append(span)
            continue
        first, last = span.first + int(inside[0]), span.first + int(inside[-1])
        lower = max(out[-1].last + 1 if out else 0, span.first - max_stretch)
        upper = min(spans[i + 1].first - 1 if i + 1 < len(spans) else n - 1, span.last + max_stretch)
        while first - 1 >= lower and voiced[first - 1]:
            first -= 1
        while last + 1 <= upper and voiced[last + 1]:
            last += 1
        out.append(replace(span, first=first, last=last))
    return out


def to_hops(spans: list[WordSpan], subsampling: int = SUBSAMPLING) -> list[WordSpan]:
    """Output frames -> 10 ms steps (hop h: [h, h + 1) x 10 ms, like the energy frames of segment.py).
    Output frame k is centred at subsampling * k hops (the centre of its receptive field) and spans half an
    output frame either side: hops subsampling * k - subsampling // 2 to subsampling * k + subsampling // 2 - 1
    (never before hop 0)."""
    half = subsampling // 2
    return [replace(s, first=max(0, s.first * subsampling - half), last=s.last * subsampling + half - 1)
            for s in spans]


def to_words(spans: list[WordSpan], hop_s: float, offset_s: float = 0.0) -> list[Word]:
    """Hops -> seconds: start = offset + first * hop_s, end = offset + (last + 1) * hop_s."""
    return [Word(s.word, offset_s + s.first * hop_s, offset_s + (s.last + 1) * hop_s, s.confidence) for s in spans]


def timed_words(
    log_probs: torch.Tensor,
    alignment: Alignment,
    vocab: Vocab,
    frame_s: float,
    offset_s: float = 0.0,
    voiced: np.ndarray | None = None,
) -> list[Word]:
    """One utterance's (T, V) log-probs and alignment -> words in seconds (frame_s seconds per output
    frame), snapped to `voiced` ((N,) bool, one per feature hop of frame_s / SUBSAMPLING) if given."""
    spans = to_hops(word_spans(log_probs, alignment, vocab))
    if voiced is not None:
        spans = snap_to_speech(spans, voiced)
    return to_words(spans, frame_s / SUBSAMPLING, offset_s)
