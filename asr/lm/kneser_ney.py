"""Interpolated modified Kneser-Ney estimation (Chen & Goodman 1998) of a word n-gram model.

Each sentence is normalised (asr.text.normalize_text) and padded to `<s> w1 .. wk </s>`.
Counts c: raw counts at the highest order and for n-grams that start with <s>; otherwise the
continuation count N1+(. g), the number of different words seen just before g.
Per order, from the count-of-counts n1..n4 of those counts (Chen & Goodman, eq. 26):

    Y = n1 / (n1 + 2 n2),   D1 = 1 - 2 Y n2 / n1,   D2 = 2 - 3 Y n3 / n2,   D3+ = 3 - 4 Y n4 / n3

    p(w | h) = (c(h w) - D(c(h w))) / c(h .)  +  gamma(h) p(w | h'),    h' = h without its first word
    gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / c(h .)

The unigram level interpolates with the uniform distribution over the vocabulary (the corpus
words, </s> and <unk>; never <s>). gamma(h) is written as the ARPA back-off weight of h, so for
every history the probabilities over the vocabulary sum to one.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable

from asr.lm.arpa import BOS, EOS, UNK, NgramLM
from asr.text import normalize_text

FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # D1, D2, D3+ when a corpus is too small to estimate them (as KenLM)
BOS_LOGPROB10 = -99.0  # <s> is never predicted; ARPA convention for its 1-gram


def count_ngrams(sentences: Iterable[list[str]], order: int) -> list[Counter]:
    """Raw counts of the n-grams of each order 1..order over `<s> words </s>`: [Counter(tuple -> count)]."""
    counts: list[Counter] = [Counter() for _ in range(order)]
    for words in sentences:
        padded = (BOS, *words, EOS)
        for n, c in enumerate(counts, 1):
            c.update(padded[i:i + n] for i in range(len(padded) - n + 1))
    return counts


def kneser_ney_counts(raw: list[Counter]) -> list[Counter]:
    """Raw counts at the highest order and for n-grams starting with <s>; continuation counts otherwise."""
    out = list(raw)
    for n in range(len(raw) - 1):
        continuation = Counter(g[1:] for g in raw[n + 1])  # distinct words before each n-gram
        out[n] = Counter({g: c if g[0] == BOS else continuation[g] for g, c in raw[n].items()})
    return out


def discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the count-of-counts; FALLBACK_DISCOUNTS unless each Dk lies in (0, k)."""
    n = Counter(c for c in counts if c <= 4)
    try:
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS
    return d if all(0 < dk < k for k, dk in enumerate(d, 1)) else FALLBACK_DISCOUNTS


def _discount(d: tuple[float, float, float], count: int) -> float:
    return d[min(count, 3) - 1]


def _add_unigrams(lm: NgramLM, counts: Counter) -> None:
    """Unigram probabilities, interpolated with the uniform distribution over the vocabulary."""
    counts = Counter({g: c for g, c in counts.items() if g != (BOS,)})
    d = discounts(counts.values())
    total = sum(counts.values())
    gamma = sum(_discount(d, c) for c in counts.values()) / total
    predicted = [w for w in lm.words if w != BOS]
    for w in predicted:
        c = counts.get((w,), 0)
        p = (c - _discount(d, c) if c else 0.0) / total + gamma / len(predicted)
        lm.logprob10[(lm.ids[w],)] = math.log10(p)
    lm.logprob10[(lm.ids[BOS],)] = BOS_LOGPROB10


def _add_order(lm: NgramLM, counts: Counter) -> None:
    """Probabilities of one order >= 2, and the back-off weights of their histories."""
    d = discounts(counts.values())
    total: dict[tuple, int] = defaultdict(int)  # c(h .)
    discounted: dict[tuple, float] = defaultdict(float)  # D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)
    for g, c in counts.items():
        total[g[:-1]] += c
        discounted[g[:-1]] += _discount(d, c)
    gamma = {h: discounted[h] / total[h] for h in total}
    new: dict[tuple[int, ...], float] = {}
    for g, c in counts.items():
        key = tuple(lm.ids[w] for w in g)
        lower = 10.0 ** lm.logprob10_ids(key[1:-1], key[-1])
        new[key] = math.log10((c - _discount(d, c)) / total[g[:-1]] + gamma[g[:-1]] * lower)
    lm.logprob10.update(new)  # after the loop: the lower-order look-ups above must not see this order
    for h, g in gamma.items():
        lm.backoff10[tuple(lm.ids[w] for w in h)] = math.log10(g)


def build_kneser_ney(sentences: Iterable[str], order: int) -> NgramLM:
    """Estimate an interpolated modified Kneser-Ney model of `order` from raw sentences (one a string)."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    words = [t.split() for t in map(normalize_text, sentences)]
    words = [w for w in words if w]
    if not words:
        raise ValueError("no words in the corpus (after normalisation)")
    raw = count_ngrams(words, order)
    counts = kneser_ney_counts(raw)
    vocabulary = [BOS, EOS, UNK, *sorted({g[0] for g in raw[0]} - {BOS, EOS})]
    lm = NgramLM(order, vocabulary, {}, {})
    _add_unigrams(lm, counts[0])
    for n in range(2, order + 1):
        _add_order(lm, counts[n - 1])
    return NgramLM(order, vocabulary, lm.logprob10, lm.backoff10)  # fresh: vocabulary, empty cache
