"""Word timestamps from CTC alignments, on hand-built log-probs with a known best path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.decoding import Alignment, greedy_alignments, greedy_ids
from asr.features import FeatureConfig
from asr.longform.timestamps import WordSpan, snap_to_speech, timed_words, word_spans
from asr.model import output_frame_seconds
from asr.text import CharVocab

VOCAB = CharVocab()
FRAME_SECONDS = output_frame_seconds(FeatureConfig())  # 0.04 s


def log_probs_for(path: str, peak: float = 0.9) -> torch.Tensor:
    """(T, V) log-probs whose best class at frame t is path[t] ("." is blank), with probability `peak`."""
    v = len(VOCAB)
    probs = torch.full((len(path), v), (1 - peak) / (v - 1))
    for t, ch in enumerate(path):
        probs[t, 0 if ch == "." else VOCAB.index[ch]] = peak
    return probs.log()


def test_words_from_the_greedy_path():
    #                    0123456789012345
    lp = log_probs_for(".hh.i. ..yyou...")
    (alignment,) = greedy_alignments(lp[None], torch.tensor([lp.shape[0]]))
    assert alignment.tokens == tuple(VOCAB.index[c] for c in "hi you")
    assert alignment.frames == (1, 4, 6, 9, 11, 12)
    words = timed_words(lp, alignment, VOCAB, FRAME_SECONDS, offset_s=10.0)
    assert [w.word for w in words] == ["hi", "you"]
    # "hi": from h's first frame (1) to i's last (4) + 1; "you": y lasts frames 9-10, u ends at 12.
    assert words[0].start == pytest.approx(10.0 + 1 * FRAME_SECONDS)
    assert words[0].end == pytest.approx(10.0 + 5 * FRAME_SECONDS)
    assert words[1].start == pytest.approx(10.0 + 9 * FRAME_SECONDS)
    assert words[1].end == pytest.approx(10.0 + 13 * FRAME_SECONDS)
    assert all(w.confidence == pytest.approx(0.9) for w in words)


def test_confidence_is_the_mean_probability_at_the_emitting_frames():
    lp = log_probs_for(".a.b.")
    lp[3] = log_probs_for("b", peak=0.5)[0]  # b emitted with probability 0.5
    (alignment,) = greedy_alignments(lp[None], torch.tensor([5]))
    (word,) = timed_words(lp, alignment, VOCAB, FRAME_SECONDS)
    assert word.word == "ab" and word.confidence == pytest.approx((0.9 + 0.5) / 2)


def test_tokens_agree_with_greedy_ids():
    torch.manual_seed(0)
    lp = torch.randn(3, 40, len(VOCAB)).log_softmax(-1)
    lengths = torch.tensor([40, 17, 1])
    aligned = greedy_alignments(lp, lengths)
    assert [list(a.tokens) for a in aligned] == greedy_ids(lp, lengths)
    assert all(all(f < n for f in a.frames) for a, n in zip(aligned, lengths.tolist()))


def test_an_alignment_from_another_decoder_is_timed_at_its_frames():
    """A beam search may emit a token at a frame where it is not the best class: it lasts that one frame."""
    lp = log_probs_for("........")
    alignment = Alignment((VOCAB.index["o"], VOCAB.index[" "], VOCAB.index["k"]), (2, 4, 6))
    words = timed_words(lp, alignment, VOCAB, FRAME_SECONDS)
    assert [(w.word, round(w.start / FRAME_SECONDS), round(w.end / FRAME_SECONDS)) for w in words] == [
        ("o", 2, 3), ("k", 6, 7)]
    assert words[0].confidence == pytest.approx(0.1 / (len(VOCAB) - 1))


def test_bpe_pieces_make_words_at_word_start_marks():
    class Pieces:  # CharVocab's interface with SentencePiece-style tokens
        tokens = ["<blank>", "▁he", "llo", "▁wor", "ld"]
        blank = 0

    lp = torch.full((6, 5), -10.0)
    for t, tok in enumerate([1, 2, 0, 3, 4, 0]):
        lp[t, tok] = 0.0
    (alignment,) = greedy_alignments(lp[None], torch.tensor([6]))
    spans = word_spans(lp, alignment, Pieces())
    assert [(s.word, s.first, s.last) for s in spans] == [("hello", 0, 1), ("world", 3, 4)]


def test_no_tokens_no_words():
    lp = log_probs_for("......")
    (alignment,) = greedy_alignments(lp[None], torch.tensor([6]))
    assert timed_words(lp, alignment, VOCAB, FRAME_SECONDS) == []


def test_snap_moves_edges_onto_speech_but_not_into_neighbours():
    voiced = np.zeros(30, dtype=bool)
    voiced[3:12] = True  # the first word's speech: starts before its spike, ends after it
    voiced[14:25] = True  # runs on past the second word
    spans = [WordSpan("a", 5, 6, 1.0), WordSpan("b", 13, 16, 1.0), WordSpan("c", 27, 28, 1.0)]
    snapped = snap_to_speech(spans, voiced)
    assert [(s.first, s.last) for s in snapped] == [(3, 11), (14, 24), (27, 28)]  # "c" has no speech: unchanged
    bounded = snap_to_speech(spans, voiced, max_stretch=2)
    assert [(s.first, s.last) for s in bounded] == [(3, 8), (14, 18), (27, 28)]
    joined = np.ones(30, dtype=bool)
    touching = snap_to_speech(spans, joined)
    assert all(a.last < b.first for a, b in zip(touching, touching[1:]))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(T, V\)"):
        word_spans(torch.zeros(1, 4, len(VOCAB)), Alignment((), ()), VOCAB)
    with pytest.raises(ValueError, match="frames"):
        word_spans(torch.zeros(4, len(VOCAB)), Alignment((3,), (9,)), VOCAB)
