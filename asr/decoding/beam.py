"""CTC prefix beam search over (B, T, V) log-probs, with word n-gram shallow fusion.

    lm = load_lm("exp/an4/lm/3gram.arpa.gz")                   # asr.lm; None: no LM
    hyps = beam_search(log_probs, lengths, vocab, BeamSearchConfig(beam_size=32, alpha=0.3, beta=2.0), lm)
    hyps[b][0].text, hyps[b][0].frames                         # best of utterance b, frame of each token

A hypothesis is a prefix (a node of asr.decoding.trie.PrefixTrie) and whether its last frame was a
blank, as in flashlight and pyctcdecode; the alignments that reach it are summed (log-add).
Keeping one hypothesis (beam_size=1) without an LM is exactly greedy decoding (asr.decoding.greedy).
A space never starts a prefix nor follows a space: such a space leaves the prefix as it is.

Score = acoustic log-prob + for each completed word alpha * ln P_lm(word | history) + beta
(+ unk_penalty for a word outside the LM's vocabulary). A word is scored when the space after it
is emitted, and at the end of the utterance (the last word, then </s>). While a word is being
spelt, unk_penalty is added as soon as it is no prefix of an LM word.

Pruning, per frame: only the tokens above token_min_logprob (at most token_top_k, and always the
frame's best) are tried, repeats included; hypotheses more than beam_threshold below the best are
dropped, then all but the best beam_size. With `recombine`, a prefix is dropped, both endings at
once, when it is closed (neither its parent nor any prefix below it is in the beam: no alignment
enters it any more, and no other prefix holds mass of the texts below it) and another prefix with
the same key (same LM state, same partial word: every continuation adds the same score to both)
scores at least as high ending in blank and ending in its last token. Every text through the
dropped prefix then scores no more than the same continuation of the other, so the best text
survives; texts are never merged, so every hypothesis returned is scored by its own alignments.
Without pruning a prefix's parent never leaves the beam, no prefix is ever closed (the empty prefix
never is), and the search is exhaustive: every text with its exact score. Recombination pays once
pruning has removed the parents: "the cat " and "a cat " under a bigram LM, or without an LM any
two prefixes ending in a space, stop holding two beam slots. (pyctcdecode's prune_history and
flashlight keep the best hypothesis per LM state as soon as two meet, which loses the best text at
times and gives others' texts mass; not so here.)
With pruning, a dropped prefix can come back from an ancestor still in the beam, with only the
mass it gains from then on (mass through such ancestors is not in the comparison): approximate, as
all pruning is.
Frames whose blank log-prob is above blank_skip_threshold only continue with blank.

Steering, per call (asr/decoding/steering.py): hotwords add their bonus to a prefix's score while it spells
one (per token, taken back when the match breaks; a completed phrase keeps len x score), and a grammar keeps
out every prefix that leaves its language (and ends that are not whole phrases). Both read the prefix through
one matcher whose state is part of the key, so recombination stays exact; its steps are worked out once per
call, so the cost per token does not grow with the number of phrases.

The search (asr/decoding/search.py) is plain Python over dicts; numpy only plans the frames. It is
fast because it does little: most frames of a trained model try one token or none, a new prefix
is made only if it makes the beam, and the LM is asked once per prefix that completes a word.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from asr.decoding.config import BeamSearchConfig
from asr.decoding.greedy import check_log_probs
from asr.decoding.search import Hypothesis, PrefixSearch
from asr.decoding.steering import Steering
from asr.decoding.trie import Fusion, PrefixTrie
from asr.lm import LanguageModel
from asr.text import Vocab


class CTCBeamSearch:
    """A reusable decoder (vocabulary, configuration, LM), called on one utterance's (T, V) log-probs."""

    def __init__(self, vocab: Vocab, cfg: BeamSearchConfig = BeamSearchConfig(), lm: LanguageModel | None = None):
        if " " not in vocab.index or vocab.blank != 0:
            raise ValueError("the beam search needs a vocabulary with the blank at index 0 and a space ' '")
        self.vocab, self.cfg = vocab, cfg
        self.fusion = None if lm is None else Fusion.make(lm, vocab, cfg.alpha, cfg.beta, cfg.unk_penalty)

    def replace(self, **changes) -> CTCBeamSearch:
        """The same search (its LM and spelling shared, not rebuilt) with some BeamSearchConfig fields changed
        (not the LM weights, which the fusion holds)."""
        if changes.keys() & {"alpha", "beta", "unk_penalty"}:
            raise ValueError("the LM weights are the fusion's: make a new CTCBeamSearch to change them")
        search = copy.copy(self)
        search.cfg = dataclasses.replace(self.cfg, **changes)
        return search

    def frame_tokens(self, rows: np.ndarray) -> list[dict[int, float]]:
        """(F, V) log-probs -> per frame the non-blank {token: log-prob} to try: those above
        token_min_logprob, at most token_top_k of them, and the frame's best token if not blank."""
        cfg, nonblank = self.cfg, rows[:, 1:]  # (F, V - 1)
        tried = (nonblank >= cfg.token_min_logprob) | (nonblank >= rows.max(axis=1, keepdims=True))
        crowded = np.flatnonzero(tried.sum(axis=1) > cfg.token_top_k)
        if len(crowded):  # keep the top k
            kth = -np.partition(-nonblank[crowded], cfg.token_top_k - 1, axis=1)[:, cfg.token_top_k - 1, None]
            tried[crowded] &= nonblank[crowded] >= kth
        which, tokens = np.nonzero(tried)
        out: list[dict[int, float]] = [{} for _ in range(len(rows))]
        for w, token, value in zip(which.tolist(), (tokens + 1).tolist(), nonblank[which, tokens].tolist()):
            out[w][token] = value
        return out

    def plan(self, log_probs: np.ndarray) -> tuple[list[tuple[int, float | None, float, dict]], float | None]:
        """(T, V) -> [(frame, run, blank log-prob, {token: log-prob} to try)] for the frames searched,
        and the final run; a run sums the blank log-probs of the near-certain blank frames just before
        (None: there are none)."""
        blanks = log_probs[:, 0].tolist()
        skip = (log_probs[:, 0] > self.cfg.blank_skip_threshold).tolist()
        tokens = iter(self.frame_tokens(log_probs[[t for t, s in enumerate(skip) if not s]]))
        plan, run = [], None
        for t, (s, blank) in enumerate(zip(skip, blanks)):
            if s:
                run = blank if run is None else run + blank
            else:
                plan.append((t, run, blank, next(tokens)))
                run = None
        return plan, run

    def __call__(self, log_probs: np.ndarray, steering: Steering | None = None,
                 nbest: int | None = None) -> list[Hypothesis]:
        """(T, V) natural-log probabilities of one utterance -> up to `nbest` (default cfg.nbest) hypotheses,
        best first; `steering` (asr.decoding.steering: hotwords, a grammar) for this call only."""
        lp = np.ascontiguousarray(log_probs, dtype=np.float64)
        if lp.ndim != 2 or lp.shape[1] != len(self.vocab):
            raise ValueError(f"log_probs must be (T, {len(self.vocab)}), got {tuple(lp.shape)}")
        if np.isnan(lp).any() or (lp.size and lp.max() > 1e-4):
            raise ValueError("log_probs must be log-probabilities (<= 0, no NaN); apply log_softmax first")
        search = PrefixSearch(PrefixTrie(self.vocab, self.fusion, steering), self.cfg)
        plan, tail = self.plan(lp)
        for t, run, blank, tokens in plan:
            if run is not None:
                search.blank_run(run)
            search.step(t, blank, tokens)
        if tail is not None:
            search.blank_run(tail)
        return search.finish(self.vocab, nbest)


def beam_search(
    log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab,
    cfg: BeamSearchConfig = BeamSearchConfig(), lm: LanguageModel | None = None, steering: Steering | None = None,
) -> list[list[Hypothesis]]:
    """(B, T, V) log-probs + (B,) lengths -> per utterance up to cfg.nbest hypotheses, best first.

    Prepares the LM's spelling trie on each call: to decode batch after batch with a large LM,
    make one CTCBeamSearch and call it on each utterance's (T, V) log-probs instead.
    """
    check_log_probs(log_probs, lengths)
    if log_probs.shape[2] != len(vocab):
        raise ValueError(f"log_probs has {log_probs.shape[2]} classes, the vocabulary {len(vocab)}")
    decoder = CTCBeamSearch(vocab, cfg, lm)
    lp = log_probs.detach().to("cpu", torch.float64).numpy()  # (B, T, V)
    return [decoder(lp[b, :n], steering) for b, n in enumerate(lengths.tolist())]


def beam_decode(
    log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab,
    cfg: BeamSearchConfig = BeamSearchConfig(), lm: LanguageModel | None = None,
) -> list[str]:
    """Best beam-search transcript per utterance."""
    return [hyps[0].text for hyps in beam_search(log_probs, lengths, vocab, cfg, lm)]
