"""Hotwords (asr.decoding.hotwords, steering): the matcher against its definition, written here from the
docstring, and the beam search against brute force over every alignment: with pruning off, every text scores
its acoustic log-probability + the fused LM + the bonus of its whole-word hotword occurrences, exactly."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from asr.decoding import BeamSearchConfig, CTCBeamSearch
from asr.decoding.hotwords import Hotwords
from asr.decoding.steering import Steering, make_steering
from asr.lm.kneser_ney import build_kneser_ney
from asr.text import BLANK, CharVocab
from test_decoding_exact import INPUTS, LM_WEIGHTS, T, UNPRUNED, VOCAB, alignment_texts, exact_scores

PHRASES = {"ab": 1.0, "b a": 0.7, "a": 0.4, "bab": 0.3}


def word_starts(text: str) -> list[int]:
    return [i for i in range(len(text) + 1) if i == 0 or text[i - 1] == " "]


def occurrences(text: str, phrase: str, closed: bool) -> int:
    """Whole-word occurrences of `phrase` in `text`; closed: only those with the space after them emitted."""
    count = 0
    for i in word_starts(text):
        j = i + len(phrase)
        if text[i:j] == phrase and ((j < len(text) and text[j] == " ") or (not closed and j == len(text))):
            count += 1
    return count


def bonus(text: str, phrases: dict[str, float], closed: bool = False) -> float:
    """The definition: sum over phrases of score * len * whole-word occurrences."""
    return sum(score * len(p) * occurrences(text, p, closed) for p, score in phrases.items())


def partial(prefix: str, phrases: dict[str, float]) -> float:
    """The longest suffix starting at a word start that begins a phrase: its length * the best such phrase's score."""
    for i in word_starts(prefix):
        suffix = prefix[i:]
        scores = [score for p, score in phrases.items() if p.startswith(suffix)]
        if scores:
            return len(suffix) * max(scores)
    return 0.0


def texts_over(alphabet: str, longest: int) -> list[str]:
    """Every text of up to `longest` characters with no leading, trailing or doubled space."""
    out = [""]
    for n in range(1, longest + 1):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            if text == " ".join(text.split()):
                out.append(text)
    return out


@pytest.mark.parametrize("phrases", [PHRASES, {"a b a": 2.0, "b": 0.5}, {"ba": 1.0, "ab ba": 1.5, "bab ab": 0.25}])
def test_the_matcher_ranks_each_prefix_by_its_definition(phrases):
    # Running score after each token = bonus kept so far + the bonus of the match in progress; at the end
    # the bonus kept is the definition's. A broken match takes its tokens' bonus back: "ab" then "abb".
    hot = Hotwords(phrases, VOCAB)
    for text in texts_over("ab ", 7):
        state, kept = 0, 0.0
        for k, ch in enumerate(text, 1):
            state, gain = hot.step(state, VOCAB.index[ch])
            kept += gain
            prefix = text[:k]
            assert kept == pytest.approx(bonus(prefix, phrases, closed=True)), prefix
            assert hot.rank(state) == pytest.approx(partial(prefix, phrases)), prefix
        assert kept + hot.gain(state) == pytest.approx(bonus(text, phrases)), text


def test_a_broken_match_takes_its_bonus_back():
    hot = Hotwords({"abba": 1.0}, VOCAB)
    ranks = []
    state = 0
    for ch in "abbb":
        state, _ = hot.step(state, VOCAB.index[ch])
        ranks.append(hot.rank(state))
    assert ranks == [1.0, 2.0, 3.0, 0.0]


def fused(text: str, lm, cfg: BeamSearchConfig, known: set[str]) -> float:
    """The fused LM score, with no unk_penalty for the hotwords' words (`known`)."""
    if lm is None:
        return 0.0
    state, total = lm.begin_state(), 0.0
    for word in text.split():
        logprob, state = lm.score(state, word)
        total += cfg.alpha * logprob + cfg.beta + (0.0 if word in lm.vocabulary | known else cfg.unk_penalty)
    return total + cfg.alpha * lm.final_score(state)


@pytest.mark.parametrize("with_lm", [False, True])
def test_unpruned_search_with_hotwords_is_exact(with_lm):
    # "bab" is no word of the bigram LM: as a hotword it is spelt without the unk_penalty.
    lm = build_kneser_ney(["a b", "ab ba", "ba a b", "b ab", "a ab ba b", "ba"], order=2) if with_lm else None
    cfg = dataclasses.replace(UNPRUNED, **LM_WEIGHTS)
    steering = make_steering(VOCAB, hotwords=list(PHRASES.items()))
    paths, which, texts = alignment_texts(VOCAB, T)
    expected_lm = np.array([fused(t, lm, cfg, {"bab"}) + bonus(t, PHRASES) for t in texts])
    decoder = CTCBeamSearch(VOCAB, cfg, lm)
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(INPUTS // 3):
        logits = rng.normal(size=(T, len(VOCAB))) * rng.uniform(0.5, 4.0)
        log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        acoustic = exact_scores(log_probs, paths, which, len(texts))
        hyps = {h.text: h for h in decoder(log_probs, steering)}
        assert hyps.keys() == set(texts)
        for i, text in enumerate(texts):
            assert hyps[text].acoustic_score == pytest.approx(acoustic[i], abs=1e-9)
            assert hyps[text].lm_score == pytest.approx(expected_lm[i], abs=1e-9), text
        best = decoder(log_probs, steering, nbest=1)[0].text
        assert best == texts[int(np.argmax(acoustic + expected_lm))]
        changed += best != decoder(log_probs, nbest=1)[0].text
    assert changed >= 10  # the hotwords changed the answer (19 of 100 when written)


def test_hotwords_are_per_call():
    # The same decoder with and without: nothing of one call's hotwords is left in the next.
    lp = np.log(np.array([[0.1, 0.05, 0.45, 0.4], [0.9, 0.04, 0.03, 0.03]]))  # 'a' a little above 'b'
    decoder = CTCBeamSearch(VOCAB, BeamSearchConfig())
    assert decoder(lp)[0].text == "a"
    assert decoder(lp, make_steering(VOCAB, hotwords=[("b", 1.0)]))[0].text == "b"
    assert decoder(lp)[0].text == "a"


def test_a_hotword_the_lm_does_not_know_is_found_under_pruning():
    # The LM knows "a" and "b" only; "abba" is acoustically best but pays unk_penalty without the hotword.
    vocab = CharVocab([BLANK, " ", "a", "b"])
    lm = build_kneser_ney(["a b", "b a", "a", "b"], order=1)
    frames = [{"a": 0.7, "b": 0.3}, {"b": 0.7, "a": 0.3}, {BLANK: 0.9, "b": 0.1}, {"b": 0.7, "a": 0.3},
              {"a": 0.7, "b": 0.3}]
    lp = np.log(np.array([[d.get(BLANK, 0.0) + 1e-6, 1e-6, d.get("a", 0) + 1e-6, d.get("b", 0) + 1e-6]
                          for d in frames]))
    lp -= np.logaddexp.reduce(lp, axis=1, keepdims=True)
    cfg = BeamSearchConfig(alpha=0.5, beta=1.0, unk_penalty=-10.0)
    decoder = CTCBeamSearch(vocab, cfg, lm)
    assert decoder(lp)[0].text != "abba"
    assert decoder(lp, Steering(vocab, Hotwords({"abba": 1.0}, vocab)))[0].text == "abba"


BIGRAM = ["a b", "ab ba", "ba a b", "b ab", "a ab ba b", "ba"]


def matched(prefix: str, phrases: dict[str, float]) -> str | None:
    """The matcher's state by its definition: the longest suffix at a word start that begins a phrase."""
    return next((prefix[i:] for i in word_starts(prefix) if any(p.startswith(prefix[i:]) for p in phrases)), None)


def rank_of(text: str, lm, cfg: BeamSearchConfig, phrases: dict[str, float]) -> tuple[tuple, float]:
    """A prefix's text -> (what its future depends on: partial word, LM state, match in progress; what the
    search ranks it by besides its acoustics: fused LM so far, unk_penalty while the partial word begins no
    known word, hotwords kept and in progress). Hotword words count as known."""
    *words, part = text.split(" ")
    hot = bonus(text, phrases, closed=True) + partial(text, phrases)
    if lm is None:
        return (part, None, matched(text, phrases)), hot
    known = lm.vocabulary | {w for p in phrases for w in p.split()}
    state, score = lm.begin_state(), 0.0
    for word in words:
        logprob, state = lm.score(state, word)
        score += cfg.alpha * logprob + cfg.beta + (0.0 if word in known else cfg.unk_penalty)
    if part and not any(w.startswith(part) for w in known):
        score += cfg.unk_penalty
    return (part, state, matched(text, phrases)), score + hot


def pruned_inputs(count: int, seed: int = 0):
    """Seeded peaky (T, V) log-probs and small pruned configurations, as test_decoding_exact's."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        frames = int(rng.integers(10, 17))
        logits = rng.normal(size=(frames, len(VOCAB))) * 1.5
        winner = np.where(rng.random(frames) < 0.5, 0, rng.integers(1, len(VOCAB), frames))
        logits[np.arange(frames), winner] += rng.uniform(1.0, 6.0, frames)
        cfg = BeamSearchConfig(beam_size=int(rng.integers(4, 9)), beam_threshold=float(rng.uniform(1.5, 6.0)),
                               token_top_k=3, token_min_logprob=-6.0, alpha=0.8, beta=0.5, unk_penalty=-1.5)
        yield logits - np.logaddexp.reduce(logits, axis=1, keepdims=True), cfg


def text_of(trie, node: int, token: int | None = None) -> str:
    return "".join(VOCAB.tokens[t] for t in trie.tokens(node) + ([] if token is None else [token]))


def probs(*frames: dict[str, float]) -> np.ndarray:
    """(T, V) log-probs over VOCAB from per-frame {character or BLANK: probability} (the rest shares 1e-6)."""
    out = np.full((len(frames), len(VOCAB)), 1e-6)
    for t, frame in enumerate(frames):
        for ch, p in frame.items():
            out[t, VOCAB.index[ch]] = p
    return np.log(out / out.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("hotword, frames, expected", [
    # 'b' is 1.1 below 'a' at its first frame, past the threshold of 1.0: only the bonus of its first token,
    # counted before the prefix is made, keeps it.
    ("b", [{"a": 0.75, "b": 0.25}, {BLANK: 1.0}], "b"),
    # the space after "a" is 1.1 below the second 'a': only the bonus of "a " (kept and in progress) keeps it.
    ("a b", [{"a": 1.0}, {"a": 0.75, " ": 0.25}, {"b": 1.0}], "a b"),
])
def test_a_new_prefix_is_judged_with_its_hotword_bonus(hotword, frames, expected):
    lp, cfg = probs(*frames), BeamSearchConfig(beam_threshold=1.0, blank_skip_threshold=0.0)
    decoder = CTCBeamSearch(VOCAB, cfg)
    assert decoder(lp)[0].text != expected
    assert decoder(lp, make_steering(VOCAB, hotwords=[(hotword, 2.0)]))[0].text == expected


def test_recombination_with_hotwords_drops_only_prefixes_that_cannot_win(monkeypatch):
    # As test_decoding_exact's rule check, with the match in progress part of what must be equal: two prefixes
    # with the same words to come score alike only if their hotword matches are in the same state. Without an
    # LM and with a unigram, many prefixes share the rest of their key.
    from asr.decoding.search import PrefixSearch

    lms, phrases = [None, build_kneser_ney(BIGRAM, order=1)], {"bab": 1.0, "ab b": 2.0, "ba": 0.5, "b a": 1.0}
    calls, recombine = [], PrefixSearch._recombine

    def recording(self, out, rank):
        before = {node: list(entry) for node, entry in out.items()}
        recombine(self, out, rank)
        calls.append((self.trie, before, before.keys() - out.keys()))

    monkeypatch.setattr(PrefixSearch, "_recombine", recording)
    fired = 0
    for i, (lp, cfg) in enumerate(pruned_inputs(200, seed=1)):
        lm = lms[i % 2]
        calls.clear()
        CTCBeamSearch(VOCAB, cfg, lm)(lp, make_steering(VOCAB, hotwords=list(phrases.items())))
        for trie, before, dropped in calls:
            parts = {n: rank_of(text_of(trie, n), lm, cfg, phrases) for n in before}
            for node in dropped:
                key, rank = parts[node]
                assert any(parts[o][0] == key and all(before[o][e] + parts[o][1] >= before[node][e] + rank - 1e-9
                                                      for e in (0, 1)) for o in before.keys() - dropped)
            fired += bool(dropped)
    assert fired >= 30
