"""asr.decoding.beam against brute force: with pruning off, the default search (recombination on) finds
every text with the exact sum over its alignments, and the best text, with and without a word LM.
With pruning, recombination (PrefixSearch._recombine): hand-built cases where it must keep a prefix
(the best text is below it), checked against brute force, and a seeded search where every prefix it
drops is checked against the rule, computed here from the texts and the LM."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from asr.decoding import BeamSearchConfig, CTCBeamSearch
from asr.decoding.search import PrefixSearch
from asr.decoding.trie import PrefixTrie
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


def log_probs_of(*dists: dict[str, float], floor: float = 1e-6) -> np.ndarray:
    """(T, V) log-probs over VOCAB from per-frame {character or BLANK: probability}; the rest shares `floor`."""
    out = np.full((len(dists), len(VOCAB)), floor)
    for t, dist in enumerate(dists):
        for ch, p in dist.items():
            out[t, VOCAB.index[ch]] = p
    return np.log(out / out.sum(axis=1, keepdims=True))


def exact_best(log_probs: np.ndarray, lm: LanguageModel | None = None,
               cfg: BeamSearchConfig = UNPRUNED) -> tuple[str, float]:
    """The best text of a brute-force search over all alignments and its score: acoustic, + the fused
    LM score with cfg's weights if there is an LM."""
    paths, which, texts = alignment_texts(VOCAB, log_probs.shape[0])
    scores = exact_scores(log_probs, paths, which, len(texts))
    if lm is not None:
        scores += [fused_lm_score(t, lm, cfg.alpha, cfg.beta, cfg.unk_penalty) for t in texts]
    return texts[int(np.argmax(scores))], float(scores.max())


@pytest.fixture
def recombinations(monkeypatch) -> list[tuple[PrefixTrie, dict[int, list], set[int]]]:
    """Every PrefixSearch._recombine call while the test decodes: (the trie, the candidates
    {node: [p_blank, p_nonblank, link, link]} as they came in, the nodes it dropped)."""
    calls = []
    recombine = PrefixSearch._recombine

    def recording(self, out, rank):
        before = {node: list(entry) for node, entry in out.items()}
        recombine(self, out, rank)
        calls.append((self.trie, before, before.keys() - out.keys()))

    monkeypatch.setattr(PrefixSearch, "_recombine", recording)
    return calls


def text_of(trie: PrefixTrie, node: int) -> str:
    return "".join(VOCAB.tokens[t] for t in trie.tokens(node))


def is_closed(trie: PrefixTrie, candidates: dict[int, list], node: int) -> bool:
    """Neither the node's parent nor a prefix below it is among the candidates (the root never is closed)."""
    def ancestors(n: int):
        while n > 0:
            n = trie.info[n][0]
            yield n
    return node > 0 and trie.info[node][0] not in candidates and not any(node in ancestors(n) for n in candidates)


@pytest.mark.parametrize("lead", ["", "b "])
def test_a_prefix_is_not_dropped_while_a_prefix_below_it_is_in_the_beam(lead):
    # After the lead-in, 'a' then a near-certain space: lead + "a " (0.55) and lead itself (0.45, its
    # space repeated) share a key, and the "a" between them is pruned. lead + "a " is below lead and
    # holds part of the text lead + "a", which lead reaches by emitting 'a' at the last frame: that
    # text sums 0.45 * 0.6 + 0.55 * 0.4 = 0.49 and beats lead + "a a" (0.55 * 0.6 = 0.33), though
    # lead + "a " leads lead on both endings. Dropping lead loses the best text.
    lead_frames = [{"b": 1.0}, {" ": 1.0}] if lead else []
    lp = log_probs_of(*lead_frames, {"a": 0.55, BLANK: 0.45}, {" ": 1.0}, {"a": 0.6, BLANK: 0.4})
    text, score = exact_best(lp)
    assert text == lead + "a" and score == pytest.approx(math.log(0.49), abs=1e-4)
    best = CTCBeamSearch(VOCAB, BeamSearchConfig())(lp)[0]  # the default pruning and recombination
    assert best.text == text and best.acoustic_score == pytest.approx(score, abs=1e-4)


# "a" then a space while "b" is held a frame longer: "a a" starts a frame before "b a", which its
# parent "b " still feeds at frame 3. At frame 4 the threshold has taken "b " and the doubled-'a'
# children: both prefixes are closed and share a key (partial word "a" after one of two equally likely
# words; a unigram LM, whose words keep the doubled letters out), and each leads on one ending.
# Frame 5 repeats the 'a': the blank endings go on as "a aa" / "b aa", the letter endings stay "a a" /
# "b a". With "aa" a word, the best text goes through the blank ending of "a a"; without it, through
# the letter ending of "b a". Either way its prefix trails on the total: a rule comparing totals drops
# it, and one comparing a single ending drops it in one of the two cases.
SPLIT_CASES = {
    "blank ending wins": (["a b aa", "aa b a", "b aa a"], 1.25, "a aa", [
        {"a": 0.57, "b": 0.43}, {" ": 0.46, "b": 0.54}, {" ": 0.29, "a": 0.71},
        {BLANK: 0.41, "a": 0.59}, {BLANK: 0.65, "a": 0.35}, {"a": 1.0}]),
    "letter ending wins": (["a b", "b a"], 1.0, "b a", [
        {"a": 0.69, "b": 0.31}, {" ": 0.16, "b": 0.84}, {" ": 0.23, "a": 0.77},
        {BLANK: 0.43, "a": 0.57}, {BLANK: 0.54, "a": 0.46}, {"a": 1.0}]),
}


@pytest.mark.parametrize("case", SPLIT_CASES)
def test_recombination_keeps_two_prefixes_that_each_lead_on_one_ending(case, recombinations):
    sentences, threshold, expected, frames = SPLIT_CASES[case]
    lm = build_kneser_ney(sentences, order=1)  # one LM state: the partial word alone makes the key
    cfg = BeamSearchConfig(beam_size=100, beam_threshold=threshold, blank_skip_threshold=0.0,
                           alpha=0.5, beta=1.0, unk_penalty=-8.0)  # -8: doubled letters outside the LM's words go
    lp = log_probs_of(*frames)
    text, _ = exact_best(lp, lm, cfg)
    assert text == expected
    assert CTCBeamSearch(VOCAB, cfg, lm)(lp)[0].text == text
    winner, other = expected[:3], {"a a", "b a"}.difference([expected[:3]]).pop()
    splits = []  # per frame where the rule had to decide: did it keep both?
    for trie, before, dropped in recombinations:
        nodes = {text_of(trie, n): n for n in before}
        if winner in nodes and other in nodes:
            w, o = nodes[winner], nodes[other]
            if trie.key[w] == trie.key[o] and is_closed(trie, before, w) and is_closed(trie, before, o):
                ends_w, ends_o = (np.array(before[n][:2]) + trie.lm_rank[n] for n in (w, o))
                if (ends_w > ends_o).any() and np.logaddexp(*ends_w) < np.logaddexp(*ends_o):  # ahead on one ending
                    splits.append(w not in dropped and o not in dropped)
    assert splits and all(splits)


def test_recombination_compares_endings_with_their_lm_scores(recombinations):
    # "a " leads "b " acoustically on both endings (0.55 against 0.45), but "b" is the likelier word
    # (unigram: ln P(b) - ln P(a) = 1.16, times alpha 0.5): with the LM "b " dominates and "a " goes.
    lm = build_kneser_ney(["b", "b", "a b", "b b"], order=1)
    cfg = BeamSearchConfig(alpha=0.5, beta=1.0)
    lp = log_probs_of({"a": 0.55, "b": 0.45}, {" ": 1.0}, {"a": 1.0})
    text, _ = exact_best(lp, lm, cfg)
    assert text == "b a"
    assert CTCBeamSearch(VOCAB, cfg, lm)(lp)[0].text == text
    assert [text_of(trie, n) for trie, _, dropped in recombinations for n in dropped] == ["a "]


def lm_part(text: str, lm: LanguageModel | None, cfg: BeamSearchConfig) -> tuple[tuple, float]:
    """A prefix's text -> ((its partial word, the LM state after its words), the fused LM score the
    search adds to it: per word alpha * ln P + beta (+ unk_penalty if the LM lacks it), + unk_penalty
    while the partial word begins no LM word)."""
    *words, partial = text.split(" ")
    if lm is None:
        return (partial, None), 0.0
    state, score = lm.begin_state(), 0.0
    for word in words:
        logprob, state = lm.score(state, word)
        score += cfg.alpha * logprob + cfg.beta + (0.0 if word in lm.vocabulary else cfg.unk_penalty)
    if partial and not any(w.startswith(partial) for w in lm.vocabulary):
        score += cfg.unk_penalty
    return (partial, state), score


def test_recombination_under_pruning_drops_only_prefixes_that_cannot_win(recombinations):
    # Seeded peaky inputs, beams of 4 to 8, thresholds on, half with a bigram LM. Every prefix dropped
    # must be closed, and another candidate with the same partial word and LM state must score at
    # least as high on both endings (acoustic + LM, computed here from the texts): then no text below
    # the dropped prefix outscores the same text below the other. That the best hypothesis scores no
    # lower than without recombination is not implied: a freed beam slot changes what is pruned later,
    # and a text can hold mass through a dropped prefix and an ancestor of it still in the beam.
    bigram = build_kneser_ney(["a b", "ab ba", "ba a b", "b ab", "a ab ba b", "ba"], order=2)
    rng = np.random.default_rng(0)
    fired = [0, 0]  # inputs where the rule dropped something: without, with the LM
    for i in range(300):
        frames = int(rng.integers(10, 17))
        logits = rng.normal(size=(frames, len(VOCAB))) * 1.5
        winner = np.where(rng.random(frames) < 0.5, 0, rng.integers(1, len(VOCAB), frames))
        logits[np.arange(frames), winner] += rng.uniform(1.0, 6.0, frames)  # one class stands out, often the blank
        lp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        cfg = BeamSearchConfig(beam_size=int(rng.integers(4, 9)), beam_threshold=float(rng.uniform(1.5, 6.0)),
                               token_top_k=3, token_min_logprob=-6.0, alpha=0.8, beta=0.5, unk_penalty=-1.5)
        lm = bigram if i % 2 else None
        recombinations.clear()
        CTCBeamSearch(VOCAB, cfg, lm)(lp)
        fired[i % 2] += any(dropped for _, _, dropped in recombinations)
        for trie, before, dropped in recombinations:
            parts = {n: lm_part(text_of(trie, n), lm, cfg) for n in before}
            for node in dropped:
                assert is_closed(trie, before, node), (i, text_of(trie, node))
                key, rank = parts[node]
                assert any(parts[o][0] == key and all(before[o][e] + parts[o][1] >= before[node][e] + rank - 1e-9
                                                      for e in (0, 1))
                           for o in before.keys() - dropped), (i, text_of(trie, node))
    assert fired[0] >= 100 and fired[1] >= 40  # of 150 each (134 and 65 when written)
