"""Word timestamps from CTC alignments, on hand-built log-probs with a known best path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.decoding import Alignment, greedy_alignments, greedy_ids
from asr.features import FeatureConfig, log_mel
from asr.longform.segment import voiced_frames
from asr.longform.timestamps import WordSpan, kept_tokens, snap_to_speech, timed_words, word_spans
from asr.model import AcousticModel, ModelConfig, output_frame_seconds
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
    # Frame k spans (k - 1/2, k + 1/2) frames: "hi" from h's first frame (1) to i's last (4), "you" from
    # y's first frame (9) to u's last (12).
    assert words[0].start == pytest.approx(10.0 + 0.5 * FRAME_SECONDS)
    assert words[0].end == pytest.approx(10.0 + 4.5 * FRAME_SECONDS)
    assert words[1].start == pytest.approx(10.0 + 8.5 * FRAME_SECONDS)
    assert words[1].end == pytest.approx(10.0 + 12.5 * FRAME_SECONDS)
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
    assert [(w.word, w.start / FRAME_SECONDS, w.end / FRAME_SECONDS) for w in words] == [
        ("o", pytest.approx(1.5), pytest.approx(2.5)), ("k", pytest.approx(5.5), pytest.approx(6.5))]
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


def test_a_word_at_the_first_frame_does_not_start_before_its_segment():
    lp = log_probs_for("a...")
    (alignment,) = greedy_alignments(lp[None], torch.tensor([4]))
    (word,) = timed_words(lp, alignment, VOCAB, FRAME_SECONDS, offset_s=3.0)
    assert word.start == pytest.approx(3.0) and word.end == pytest.approx(3.0 + 0.5 * FRAME_SECONDS)


def test_a_click_at_a_known_time_is_timed_at_that_time():
    """A click at 1.000 s peaks in feature frame 100 (centred STFT frames, 10 ms hop); the convolutions map
    feature frame 4k to output frame k (checked with centre-tap kernels), and a token emitted at that
    frame is a word centred on 1.000 s, not 20 ms later. (v1's absolute log floor: the running level of
    today's features makes the click's first frame, out of silence, the one that stands out most.)"""
    cfg = FeatureConfig(relative_floor=0.0)
    wave = np.zeros(2 * cfg.sample_rate, dtype=np.float32)
    wave[cfg.sample_rate] = 1.0  # the click: sample 16000, t = 1.000 s
    feats = log_mel(wave, cfg)  # (T, n_mels)
    peak_feature_frame = int(feats.sum(1).argmax())
    assert peak_feature_frame == 100
    model = AcousticModel(ModelConfig(n_mels=cfg.n_mels, vocab_size=len(VOCAB), conv_channels=1, hidden=8, layers=1))
    with torch.no_grad():
        for conv in (model.conv1, model.conv2):
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = 1.0  # centre tap: output i looks at input 2 i only
            conv.bias.zero_()
    seen = {}
    model.conv2.register_forward_hook(lambda m, i, out: seen.update(out=out))
    impulse = torch.zeros(1, feats.shape[0], cfg.n_mels)
    impulse[0, peak_feature_frame] = 1.0
    model(impulse, torch.tensor([feats.shape[0]]))
    peak_output_frame = int(seen["out"][0].sum((0, 2)).argmax())  # (C, T', F') -> T'
    assert peak_output_frame == 25
    lp = log_probs_for("." * 50)
    alignment = Alignment((VOCAB.index["a"],), (peak_output_frame,))
    (word,) = timed_words(lp, alignment, VOCAB, output_frame_seconds(cfg))
    assert (word.start + word.end) / 2 == pytest.approx(1.000, abs=1e-9)


def test_snapped_edges_land_on_the_speech_to_10_ms():
    """A word spelt at output frames 26-33 (1.02-1.34 s) inside speech voiced from 1.01 to 1.37 s (10 ms
    frames 101-136, off the 40 ms grid of the output frames) is snapped to exactly 1.01-1.37 s."""
    lp = log_probs_for("." * 26 + "a" * 8 + "." * 16)
    (alignment,) = greedy_alignments(lp[None], torch.tensor([50]))
    voiced = np.zeros(200, dtype=bool)
    voiced[101:137] = True
    (word,) = timed_words(lp, alignment, VOCAB, FRAME_SECONDS, voiced=voiced)
    assert (word.start, word.end) == (pytest.approx(1.01), pytest.approx(1.37))
    (unsnapped,) = timed_words(lp, alignment, VOCAB, FRAME_SECONDS)
    assert (unsnapped.start, unsnapped.end) == (pytest.approx(25.5 * 0.04), pytest.approx(33.5 * 0.04))


def test_a_word_in_the_overlap_of_two_windows_is_kept_once_with_its_times():
    """Two windows decoded over the same audio overlap around a cut at frame 8; both hear "cat" and "dog".
    Each keeps only the tokens emitted in its own part, so the file gets each word once, at its times in the
    file (both windows agree on "dog": 0.38-0.50 s)."""
    path = "..cat. ...dog.."  # frames 0-14 of the file; the cut is at frame 8
    cut, right_start = 8, 4  # frames; the left window is frames 0-12, the right one frames 4-14
    left, right = log_probs_for(path[:13]), log_probs_for(path[right_start:])
    words = []
    for lp, first, end, offset in ((left, 0, cut, 0.0), (right, cut - right_start, 99, right_start * FRAME_SECONDS)):
        (alignment,) = greedy_alignments(lp[None], torch.tensor([lp.shape[0]]))
        both = timed_words(lp, alignment, VOCAB, FRAME_SECONDS, offset)
        assert [w.word for w in both] == (["cat", "dog"] if offset == 0.0 else ["t", "dog"])  # each hears "dog"
        words += timed_words(lp, kept_tokens(alignment, first, end), VOCAB, FRAME_SECONDS, offset)
    assert [w.word for w in words] == ["cat", "dog"]
    assert words[0].start == pytest.approx(0.06) and words[0].end == pytest.approx(0.18)
    assert words[1].start == pytest.approx(0.38) and words[1].end == pytest.approx(0.50)


def test_a_click_before_the_speech_and_a_dip_inside_it_do_not_move_the_word_edges():
    """Seen in AN4 clips: a word's CTC span that starts early took its start from a 10 ms click 0.2 s before
    the speech (rubout: 0.21 s early), and a last word's end stopped at one 10 ms frame just under the voiced
    level inside its vowel (ville: 0.23 s short). Speech here is a tone from 0.60 to 1.20 s (10 ms frames 60-119)
    with frame 100 silent, and a click fills frame 40; the word is spelt at output frames 10 (the click) and
    24 (just before the dip). It is timed 0.60-1.20 s."""
    wave = np.zeros(150 * 160, dtype=np.float32)  # 1.5 s at 16 kHz
    wave[60 * 160 : 120 * 160] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(60 * 160) / 16000)
    wave[100 * 160 : 101 * 160] = 0.0  # a one-frame dip inside the tone
    wave[40 * 160 : 41 * 160] = 0.3  # the click
    voiced = voiced_frames(wave, voiced_db=-30.0)
    lp = log_probs_for("." * 37)
    alignment = Alignment((VOCAB.index["a"], VOCAB.index["b"]), (10, 24))
    (word,) = timed_words(lp, alignment, VOCAB, FRAME_SECONDS, voiced=voiced)
    assert (word.word, word.start, word.end) == ("ab", pytest.approx(0.60), pytest.approx(1.20))


def test_voiced_stretches_and_pauses_of_a_few_frames_are_kept():
    """What voiced_frames leaves as it is: a 30 ms syllable on its own and a 30 ms pause inside speech."""
    wave = np.zeros(100 * 160, dtype=np.float32)
    tone = 0.3 * np.sin(2 * np.pi * 200 * np.arange(100 * 160) / 16000).astype(np.float32)
    for lo, hi in ((20, 23), (50, 60), (63, 80)):  # 10 ms frames
        wave[lo * 160 : hi * 160] = tone[lo * 160 : hi * 160]
    voiced = voiced_frames(wave, voiced_db=-30.0)
    assert np.array_equal(np.flatnonzero(voiced), np.r_[20:23, 50:60, 63:80])
