"""Two back-off n-gram models as one (static linear interpolation, as SRILM's `ngram -mix-lm`): every n-gram that
either model lists gets

    p(w | h) = weight * p_a(w | h) + (1 - weight) * p_b(w | h)

each model's probability taken with its own back-off (0 for a word it does not know); then each history's back-off
weight is set so that its distribution sums to one:

    bow(h) = (1 - sum_{w listed after h} p(w | h)) / (1 - sum_{w listed after h} p(w | h'))

Words not listed after h back off as usual: the approximation static mixing makes (the exact mixture would
need both models at decoding time).
"""

from __future__ import annotations

import math
from typing import Iterable

from asr.lm.arpa import BOS, EOS, UNK, NgramLM
from asr.lm.kneser_ney import BOS_LOGPROB10
from asr.lm.load import sentence_logprob
from asr.text import normalize_text

MAX_EXP = 709.0  # math.exp overflows a float just above this
MIN_MASS = 1e-12  # a history whose listed words leave less probability than this needs no back-off


def _p(lm: NgramLM, history: tuple[str, ...], word: str) -> float:
    return math.exp(lm.logprob(history, word)) if word in lm.ids else 0.0


def _listed(lm: NgramLM) -> set[tuple[str, ...]]:
    """The model's n-grams as word tuples, with every prefix of each (a history must be an n-gram to hold its
    back-off weight)."""
    grams = {tuple(lm.words[i] for i in key) for key in lm.logprob10}
    return grams | {g[:k] for g in grams for k in range(1, len(g))}


def interpolate(a: NgramLM, b: NgramLM, weight: float) -> NgramLM:
    """weight * a + (1 - weight) * b as one back-off model of the larger order (weight in (0, 1])."""
    if not 0 < weight <= 1:
        raise ValueError(f"weight must be in (0, 1], got {weight}")
    words = list(dict.fromkeys([BOS, EOS, UNK, *a.words, *b.words]))
    ids = {w: i for i, w in enumerate(words)}
    listed = sorted(_listed(a) | _listed(b), key=lambda g: (len(g), g))
    logprob10 = {}
    for gram in listed:
        history, word = gram[:-1], gram[-1]
        prob = weight * _p(a, history, word) + (1 - weight) * _p(b, history, word)
        logprob10[tuple(ids[w] for w in gram)] = BOS_LOGPROB10 if word == BOS or prob <= 0 else math.log10(prob)
    mix = NgramLM(max(a.order, b.order), words, logprob10, {})
    after: dict[tuple[str, ...], list[str]] = {}
    for gram in listed:
        if len(gram) > 1:
            after.setdefault(gram[:-1], []).append(gram[-1])
    for history in sorted(after, key=len):  # shorter histories first: longer ones back off to them
        key = tuple(ids[w] for w in history)
        left = 1 - sum(10 ** logprob10[key + (ids[w],)] for w in after[history] if w != BOS)
        lower = 1 - sum(math.exp(mix.logprob(history[1:], w)) for w in after[history] if w != BOS)
        mix.backoff10[key] = math.log10(left / lower) if left > MIN_MASS and lower > MIN_MASS else 0.0
    return NgramLM(mix.order, words, mix.logprob10, mix.backoff10)  # fresh: an empty score cache


def perplexity(lm: NgramLM, sentences: Iterable[str]) -> float:
    """exp(-mean natural-log probability per word, </s> included) over the normalised sentences."""
    total, tokens = 0.0, 0
    for text in map(normalize_text, sentences):
        words = text.split()
        total += sentence_logprob(lm, words)
        tokens += len(words) + 1
    return exp_perplexity(total, tokens) if tokens else float("nan")


def exp_perplexity(total: float, tokens: int) -> float:
    """exp(-total / tokens), inf where that overflows a float (a model giving words almost no probability)."""
    mean = -total / tokens
    return math.exp(mean) if mean < MAX_EXP else math.inf
