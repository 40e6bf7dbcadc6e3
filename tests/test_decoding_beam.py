"""asr.decoding.beam: CTC prefix beam search, hand-built log-probs with known answers, LM shallow fusion."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from asr.decoding import (
    BeamSearchConfig,
    CTCBeamSearch,
    beam_decode,
    beam_search,
    greedy_decode,
)
from asr.lm import load_lm, write_arpa
from asr.lm.kneser_ney import build_kneser_ney
from asr.text import BLANK, CharVocab

VOCAB = CharVocab()
V = len(VOCAB)
EXHAUSTIVE = BeamSearchConfig(beam_size=10_000, token_top_k=V, token_min_logprob=-1e9, beam_threshold=1e9,
                              blank_skip_threshold=0.0, nbest=10_000)  # recombination on, as by default


def frames_of(*dists: dict[str, float], floor: float = 1e-6) -> torch.Tensor:
    """(1, T, V) log-probs from per-frame {character or BLANK: probability}; the rest shares `floor`."""
    out = torch.full((len(dists), V), floor, dtype=torch.float64)
    for t, dist in enumerate(dists):
        for ch, p in dist.items():
            out[t, VOCAB.index[ch]] = p
    return (out / out.sum(-1, keepdim=True)).log()[None]


def random_log_probs(batch: int, frames: int, seed: int, peaky: bool) -> torch.Tensor:
    """(B, T, V) random log-probs; peaky ones look like a trained CTC model's: one class stands out
    per frame, mostly the blank, often by far."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, V, generator=gen) * 1.5
    if peaky:
        winner = torch.randint(1, V, (batch, frames), generator=gen)
        winner[torch.rand(batch, frames, generator=gen) < 0.7] = 0
        margin = 4.0 + 12.0 * torch.rand(batch, frames, generator=gen)
        logits.scatter_add_(2, winner[..., None], margin[..., None])
    return logits.log_softmax(-1)


def test_beam_finds_the_sum_of_paths_that_greedy_misses():
    # Two frames, each blank 0.6 / 'a' 0.4: the best path is blank-blank (0.36), but the three
    # paths 'a a', 'a -', '- a' all read "a" and sum to 0.64.
    lp = frames_of({BLANK: 0.6, "a": 0.4}, {BLANK: 0.6, "a": 0.4}, floor=0.0)
    lengths = torch.tensor([2])
    assert greedy_decode(lp, lengths, VOCAB) == [""]
    hyps = beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=4))[0]
    assert [h.text for h in hyps] == ["a", ""]
    assert hyps[0].acoustic_score == pytest.approx(math.log(0.64))
    assert hyps[1].acoustic_score == pytest.approx(math.log(0.36))


def test_scores_are_exact_sums_over_alignments_without_pruning():
    vocab = CharVocab([BLANK, " ", "a", "b"])
    decoder = CTCBeamSearch(vocab, EXHAUSTIVE)
    gen = torch.Generator().manual_seed(0)
    for frames in range(1, 6):
        lp = (torch.randn(frames, 4, generator=gen) * 2).log_softmax(-1).double().numpy()
        exact: dict[str, float] = {}
        for path in itertools.product(range(4), repeat=frames):  # every alignment
            ids = [c for t, c in enumerate(path) if c and (t == 0 or c != path[t - 1])]
            text = " ".join(vocab.decode(ids).split())
            exact[text] = np.logaddexp(exact.get(text, -np.inf), sum(lp[t, c] for t, c in enumerate(path)))
        found = {h.text: h.acoustic_score for h in decoder(lp)}
        assert found.keys() == exact.keys()
        for text, score in exact.items():
            assert found[text] == pytest.approx(score, abs=1e-9), (frames, text)


def test_recombination_drops_a_closed_prefix_that_cannot_win():
    # "a" and "b" (pruned once the space is near-certain) become "a " and "b ": same key without an LM,
    # "a " ahead in both endings, "b " closed. Every text through "b " scores below its "a " twin.
    lp = frames_of({"a": 0.5, "b": 0.4}, {" ": 0.99}, {BLANK: 0.99}, {"c": 0.99}, {BLANK: 0.99})
    lengths = torch.tensor([5])
    kept = beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8, nbest=10))[0]
    every = beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8, nbest=10, recombine=False))[0]
    assert [h.text for h in every] == ["a c", "b c"]
    assert kept == every[:1]


def test_recombination_waits_while_a_parent_can_still_feed_the_prefix():
    # After frame 1 "a " is ahead of "b " (0.3 against 0.2), but "b" (0.2, its 'b' repeated) is still
    # in the beam and pours its mass into "b " at frame 2: "b c" (0.36) beats "a c" (0.27).
    lp = frames_of({"a": 0.6, "b": 0.4}, {" ": 0.5, "b": 0.5}, {" ": 0.9, "e": 0.1}, {"c": 0.99}, {BLANK: 0.99})
    lengths = torch.tensor([5])
    every = beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8, nbest=10, recombine=False))[0]
    best = beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8))[0][0]
    assert every[0].text == "b c" and every[0].acoustic_score == pytest.approx(math.log(0.36), abs=1e-3)
    assert best == every[0]


def greedy_emissions(log_probs: torch.Tensor, n: int) -> list[tuple[int, int]]:
    """(token, frame) of each token the best path emits, minus leading, trailing and repeated spaces."""
    best, out = log_probs[:n].argmax(-1).tolist(), []
    for t, c in enumerate(best):
        if c != VOCAB.blank and (t == 0 or c != best[t - 1]):
            if not (c == VOCAB.index[" "] and (not out or out[-1][0] == c)):
                out.append((c, t))
    return out[:-1] if out and out[-1][0] == VOCAB.index[" "] else out


@pytest.mark.parametrize("peaky", [False, True])
@pytest.mark.parametrize("cfg", [BeamSearchConfig(beam_size=1),
                                 BeamSearchConfig(beam_size=1, token_top_k=1, token_min_logprob=0.0),
                                 BeamSearchConfig(beam_size=1, blank_skip_threshold=0.0, recombine=False)])
def test_width_one_is_greedy(peaky, cfg):
    for seed in range(6):
        lp = random_log_probs(4, 50, seed, peaky)
        lengths = torch.tensor([50, 37, 1, 0])
        assert beam_decode(lp, lengths, VOCAB, cfg) == greedy_decode(lp, lengths, VOCAB)
        for b, hyps in enumerate(beam_search(lp, lengths, VOCAB, cfg)):
            assert list(zip(hyps[0].tokens, hyps[0].frames)) == greedy_emissions(lp[b], int(lengths[b]))


@pytest.mark.parametrize("unk_penalty", [-10.0, 0.0])
def test_language_model_picks_the_word_it_knows(unk_penalty):
    lm = build_kneser_ney(["the cat sat", "a cat", "the cat ran", "my cat"], order=2)
    # Acoustically "cet" is a little more likely than "cat" (e 0.55 against a 0.45).
    lp = frames_of({"c": 0.99}, {BLANK: 0.99}, {"e": 0.55, "a": 0.45}, {BLANK: 0.99}, {"t": 0.99})
    lengths = torch.tensor([5])
    assert greedy_decode(lp, lengths, VOCAB) == ["cet"]
    assert beam_decode(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8)) == ["cet"]
    cfg = BeamSearchConfig(beam_size=8, alpha=0.5, beta=1.0, unk_penalty=unk_penalty, beam_threshold=30.0)
    hyps = beam_search(lp, lengths, VOCAB, cfg, lm=lm)[0]
    assert hyps[0].text == "cat"
    cet = next(h for h in hyps if h.text == "cet")
    assert cet.acoustic_score > hyps[0].acoustic_score  # the LM, not the acoustics, decided
    assert hyps[0].lm_score == pytest.approx(0.5 * (lm.logprob(["<s>"], "cat") + lm.logprob(["cat"], "</s>")) + 1.0)


def test_kenlm_backend_decodes_like_the_python_one(tmp_path):
    pytest.importorskip("kenlm")
    write_arpa(build_kneser_ney(["the cat sat", "a cat", "the dog sat", "my dog ran"], order=3), tmp_path / "lm.arpa")
    lp = random_log_probs(3, 50, seed=17, peaky=True)
    lengths = torch.tensor([50, 40, 30])
    cfg = BeamSearchConfig(beam_size=16, nbest=4, beam_threshold=12.0)
    python = beam_search(lp, lengths, VOCAB, cfg, lm=load_lm(tmp_path / "lm.arpa", "python"))
    kenlm = beam_search(lp, lengths, VOCAB, cfg, lm=load_lm(tmp_path / "lm.arpa", "kenlm"))
    for a, b in zip(python, kenlm):
        assert [h.text for h in a] == [h.text for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-3)


def test_nbest_is_sorted_distinct_and_adds_up():
    lm = build_kneser_ney(["the cat sat", "a cat", "the dog sat"], order=2)
    lp = random_log_probs(3, 40, seed=3, peaky=True)
    lengths = torch.tensor([40, 25, 12])
    cfg = BeamSearchConfig(beam_size=16, nbest=8, recombine=False)
    for hyps in beam_search(lp, lengths, VOCAB, cfg, lm=lm):
        assert 1 < len(hyps) <= 8
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({h.text for h in hyps}) == len(hyps)
        for h in hyps:
            assert h.score == pytest.approx(h.acoustic_score + h.lm_score)


def test_frames_are_increasing_within_the_length_and_mark_the_spikes():
    lp = frames_of({BLANK: 0.9}, {"h": 0.9}, {"h": 0.9}, {BLANK: 0.9}, {"i": 0.9}, {" ": 0.9},
                   {BLANK: 0.9}, {"y": 0.9}, {BLANK: 0.9}, {BLANK: 0.9})
    hyps = beam_search(lp, torch.tensor([10]), VOCAB, BeamSearchConfig(beam_size=8))[0]
    assert hyps[0].text == "hi y" and hyps[0].frames == (1, 4, 5, 7)
    lp = random_log_probs(3, 60, seed=5, peaky=True)
    lengths = torch.tensor([60, 33, 7])
    for hyps, n in zip(beam_search(lp, lengths, VOCAB, BeamSearchConfig(beam_size=8, nbest=4)), lengths.tolist()):
        for h in hyps:
            assert len(h.frames) == len(h.tokens)
            assert all(0 <= f < n for f in h.frames)
            assert list(h.frames) == sorted(set(h.frames))  # strictly increasing


def test_impossible_tokens_are_fine():
    lp = random_log_probs(2, 40, seed=13, peaky=True)
    lp[:, :, VOCAB.index["q"]] = -math.inf  # e.g. masked outputs
    lp[1, 5:9] = -math.inf
    lp[1, 5:9, 0] = 0.0  # certain blanks
    lengths = torch.tensor([40, 40])
    for cfg in (BeamSearchConfig(beam_size=1), BeamSearchConfig(beam_size=16, blank_skip_threshold=0.0)):
        hyps = beam_search(lp, lengths, VOCAB, cfg)
        assert all(math.isfinite(h[0].score) for h in hyps)
        assert all("q" not in h.text for hs in hyps for h in hs)
    assert beam_decode(lp, lengths, VOCAB, BeamSearchConfig(beam_size=1)) == greedy_decode(lp, lengths, VOCAB)


def test_padding_and_batching_do_not_change_results():
    lp = random_log_probs(3, 45, seed=7, peaky=True)
    lengths = torch.tensor([45, 30, 10])
    cfg = BeamSearchConfig(beam_size=8, nbest=3)
    batched = beam_search(lp, lengths, VOCAB, cfg)
    for b, n in enumerate(lengths.tolist()):
        assert beam_search(lp[b:b + 1, :n], torch.tensor([n]), VOCAB, cfg)[0] == batched[b]


def test_skipping_blank_frames_changes_little():
    lp = random_log_probs(4, 80, seed=11, peaky=True)
    lengths = torch.full((4,), 80)
    skip, exact = BeamSearchConfig(beam_size=16), BeamSearchConfig(beam_size=16, blank_skip_threshold=0.0)
    skipped = (lp[..., 0] > math.log(0.999)).float().mean()
    assert skipped > 0.2  # the inputs do exercise the skipping
    for a, b in zip(beam_search(lp, lengths, VOCAB, skip), beam_search(lp, lengths, VOCAB, exact)):
        assert a[0].text == b[0].text
        assert a[0].acoustic_score == pytest.approx(b[0].acoustic_score, abs=0.08)  # <= 80 frames x 0.001


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 5), "must be \\(B, T, V\\)"),
    (torch.zeros(1, 5, V + 1).log_softmax(-1), "has 30 classes"),
    (torch.full((1, 5, V), float("nan")), "no NaN"),
    (torch.randn(1, 5, V), "log_softmax"),
])
def test_bad_inputs_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        beam_search(bad, torch.tensor([bad.shape[1]] if bad.ndim == 3 else [5]), VOCAB)
    with pytest.raises(ValueError, match="exceeds"):
        beam_search(torch.zeros(1, 3, V).log_softmax(-1), torch.tensor([4]), VOCAB)
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        BeamSearchConfig(beam_size=0)
