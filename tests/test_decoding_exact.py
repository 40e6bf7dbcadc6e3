"""asr.decoding.beam against brute force: with pruning off, the default search (recombination on) finds
every text with the exact sum over its alignments, and the best text, with and without a word LM."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from asr.decoding import BeamSearchConfig, CTCBeamSearch
from asr.lm import LanguageModel
from asr.lm.kneser_ney import build_kneser_ney
from asr.text import BLANK, CharVocab, transcript

VOCAB = CharVocab([BLANK, " ", "a", "b"])
T = 6  # frames: 4 ** 6 = 4096 alignments per input
INPUTS = 300
UNPRUNED = BeamSearchConfig(beam_size=100_000, token_top_k=len(VOCAB) - 1, token_min_logprob=-math.inf,
                            beam_threshold=1e9, blank_skip_threshold=0.0, nbest=100_000)  # recombine: default
LM_WEIGHTS = dict(alpha=0.8, beta=0.5, unk_penalty=-1.5)


def alignment_texts(vocab: CharVocab, frames: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every alignment of `frames` frames: (A, frames) class ids, (A,) index of its text, the texts.
    A text collapses repeats, drops blanks and keeps single spaces between words: none leading,
    trailing or doubled (the decoder's rule)."""
    paths = np.array(list(itertools.product(range(len(vocab)), repeat=frames)))  # (A, frames)
    texts: dict[str, int] = {}
    which = []
    for path in paths.tolist():
        ids = [c for t, c in enumerate(path) if c != vocab.blank and (t == 0 or c != path[t - 1])]
        which.append(texts.setdefault(transcript(vocab, ids), len(texts)))
    return paths, np.array(which), list(texts)


def fused_lm_score(text: str, lm: LanguageModel, alpha: float, beta: float, unk_penalty: float) -> float:
    """What the search adds for the LM: per word alpha * ln P(word | history) + beta (+ unk_penalty for a
    word the LM does not list), then alpha * ln P(</s> | history)."""
    state, total = lm.begin_state(), 0.0
    for word in text.split():
        logprob, state = lm.score(state, word)
        total += alpha * logprob + beta + (0.0 if word in lm.vocabulary else unk_penalty)
    return total + alpha * lm.final_score(state)


def exact_scores(log_probs: np.ndarray, paths: np.ndarray, which: np.ndarray, n_texts: int) -> np.ndarray:
    """(T, V) log-probs -> (n_texts,) natural-log probability of each text: log-sum-exp over its alignments."""
    path_scores = log_probs[np.arange(log_probs.shape[0]), paths].sum(axis=1)  # (A,)
    peak = np.full(n_texts, -np.inf)
    np.maximum.at(peak, which, path_scores)
    mass = np.zeros(n_texts)
    np.add.at(mass, which, np.exp(path_scores - peak[which]))
    return peak + np.log(mass)


def disagreements(lm: LanguageModel | None, cfg: BeamSearchConfig, inputs: int = INPUTS, seed: int = 0):
    """Over `inputs` seeded random (T, V) log-probs: (inputs whose best text is wrong, inputs with any
    text missing or scored wrong, acoustic or LM score, the largest acoustic error over the texts returned)."""
    paths, which, texts = alignment_texts(VOCAB, T)
    lm_scores = np.array([fused_lm_score(t, lm, cfg.alpha, cfg.beta, cfg.unk_penalty) if lm else 0.0 for t in texts])
    decoder = CTCBeamSearch(VOCAB, cfg, lm)
    rng = np.random.default_rng(seed)
    wrong_best, wrong_list, worst = 0, 0, 0.0
    for _ in range(inputs):
        logits = rng.normal(size=(T, len(VOCAB))) * rng.uniform(0.5, 4.0)
        log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)  # (T, V)
        acoustic = exact_scores(log_probs, paths, which, len(texts))
        hyps = decoder(log_probs)
        wrong_best += hyps[0].text != texts[int(np.argmax(acoustic + lm_scores))]
        found = {h.text: h for h in hyps}
        errors = [abs(found[t].acoustic_score - acoustic[i]) for i, t in enumerate(texts) if t in found]
        lm_errors = [abs(found[t].lm_score - lm_scores[i]) for i, t in enumerate(texts) if t in found]
        worst = max([worst, *errors])
        wrong_list += len(found) != len(texts) or max(errors) > 1e-9 or max(lm_errors) > 1e-9
    return wrong_best, wrong_list, worst


def test_alignment_texts_follow_the_decoders_spacing():
    _, which, texts = alignment_texts(VOCAB, 3)
    assert len(texts) == len(set(texts))
    assert all(t == t.strip() and "  " not in t for t in texts)
    assert {"", "a", "ab", "a b", "aba", "b a"} <= set(texts) and "ba b" not in texts  # "ba b" needs 4 frames
    assert np.bincount(which).sum() == 4 ** 3


def test_brute_force_sums_to_one():
    paths, which, texts = alignment_texts(VOCAB, T)
    log_probs = np.log(np.random.default_rng(1).dirichlet(np.ones(len(VOCAB)), size=T))
    assert np.logaddexp.reduce(exact_scores(log_probs, paths, which, len(texts))) == pytest.approx(0.0, abs=1e-12)


def test_unpruned_default_search_is_exact_without_lm():
    assert UNPRUNED.recombine
    assert disagreements(None, UNPRUNED) == (0, 0, pytest.approx(0.0, abs=1e-9))


def test_unpruned_default_search_is_exact_with_a_bigram_lm():
    lm = build_kneser_ney(["a b", "ab ba", "ba a b", "b ab", "a ab ba b", "ba"], order=2)
    cfg = dataclasses.replace(UNPRUNED, **LM_WEIGHTS)
    assert disagreements(lm, cfg) == (0, 0, pytest.approx(0.0, abs=1e-9))
