"""Grammars (asr.decoding.grammar: Vosk's phrase_list): the matcher against the language's definition, written
here, on every short text; the unpruned search against brute force; pruned searches never leave the language."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asr.decoding import BeamSearchConfig, CTCBeamSearch
from asr.decoding.grammar import Grammar
from asr.decoding.steering import make_steering
from asr.text import CharVocab
from test_decoding_exact import T, UNPRUNED, VOCAB, alignment_texts, exact_scores
from test_decoding_hotwords import pruned_inputs, texts_over

PENALTY = -1.5
LISTS = [["a", "b a", "[unk]"], ["ab", "a b", "b"], ["ba b", "a", "[unk]"]]


def fewest_unks(text: str, phrases: list[str]) -> float:
    """The definition: the text's words as a sequence of phrases, [unk] any one word -> the fewest [unk]s
    over such parses (inf if there is none; 0 for the empty text)."""
    words, listed = text.split(), [tuple(p.split()) for p in phrases if p != "[unk]"]
    best = [0.0] + [math.inf] * len(words)
    for i in range(len(words)):
        for p in listed:
            if tuple(words[i:i + len(p)]) == p:
                best[i + len(p)] = min(best[i + len(p)], best[i])
        if "[unk]" in phrases:
            best[i + 1] = min(best[i + 1], best[i] + 1)
    return best[-1]


@pytest.mark.parametrize("phrases", LISTS)
def test_the_matcher_keeps_exactly_the_prefixes_of_the_language(phrases):
    texts = texts_over("ab ", 8)
    members = [t for t in texts if fewest_unks(t, phrases) < math.inf]
    grammar = Grammar(phrases, VOCAB, PENALTY)
    for text in texts_over("ab ", 5):
        state, kept, alive = 0, 0.0, True
        for k, ch in enumerate(text, 1):
            step = grammar.step(state, VOCAB.index[ch])
            viable = any(m.startswith(text[:k]) for m in members)  # a text of the language goes on from here
            assert (step is not None) == viable, (phrases, text[:k])
            if step is None:
                alive = False
                break
            state, kept = step[0], kept + step[1]
        if alive:
            unks = fewest_unks(text, phrases)
            assert kept + grammar.end(state) == (unks * PENALTY if unks < math.inf else -math.inf), text


def test_labels_are_the_parse_with_the_fewest_unks():
    grammar = Grammar(["call home", "call", "yes", "[unk]"], CharVocab(), PENALTY)
    assert grammar.label("call home yes".split()) == ["call", "home", "yes"]
    assert grammar.label("call mom".split()) == ["call", "[unk]"]
    assert grammar.label("home call".split()) == ["[unk]", "call"]
    assert Grammar(["yes"], CharVocab(), PENALTY).label(["maybe"]) == ["maybe"]  # no parse: as it is


@pytest.mark.parametrize("phrases", [["ab", "a b", "b"], ["a", "b a", "[unk]"]])
def test_unpruned_search_with_a_grammar_is_exact(phrases):
    # Every text of the language is found with its acoustic score + the [unk] penalties; no other text is;
    # the best is the brute force's best, labelled.
    paths, which, texts = alignment_texts(VOCAB, T)
    unks = np.array([fewest_unks(t, phrases) for t in texts])
    members = unks < math.inf
    cfg = BeamSearchConfig(**{**UNPRUNED.__dict__, "unk_penalty": PENALTY})
    steering = make_steering(VOCAB, phrase_list=phrases, unk_penalty=PENALTY)
    decoder, rng = CTCBeamSearch(VOCAB, cfg), np.random.default_rng(0)
    for _ in range(60):
        logits = rng.normal(size=(T, len(VOCAB))) * rng.uniform(0.5, 4.0)
        log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        scores = exact_scores(log_probs, paths, which, len(texts)) + np.where(members, unks * PENALTY, -np.inf)
        hyps = decoder(log_probs, steering)
        best = texts[int(np.argmax(scores))]
        assert hyps[0].text == " ".join(steering.label(best.split()))
        assert hyps[0].score == pytest.approx(scores.max(), abs=1e-9)
        if "[unk]" not in phrases:  # no labels: one hypothesis per text of the language
            found = {h.text: h.score for h in hyps}
            assert found.keys() == {t for t, m in zip(texts, members) if m}
            assert all(found[t] == pytest.approx(s, abs=1e-9) for t, s in zip(texts, scores) if t in found)
        assert sum(h.confidence for h in hyps) == pytest.approx(1.0)


@pytest.mark.parametrize("phrases", [["ab", "a b", "b"], ["ba", "[unk]"]])
def test_pruned_searches_stay_in_the_language(phrases):
    steering = make_steering(VOCAB, phrase_list=phrases, unk_penalty=PENALTY)
    outputs = set()
    for lp, cfg in pruned_inputs(150, seed=2):
        for hyp in CTCBeamSearch(VOCAB, cfg)(lp, steering):
            # "[unk]" as a word no listed phrase has ("z"): only [unk] can spell it
            assert fewest_unks(hyp.text.replace("[unk]", "z"), phrases) < math.inf, hyp.text
            outputs.add(hyp.text)
    assert len(outputs) >= 5


def test_a_grammar_with_unk_keeps_clearly_heard_words_at_the_doors_penalty():
    """`--grammar` with "[unk]": each heard word outside the phrases is an [unk], not dropped. Its penalty was the
    LM's unknown-word one (-10 nats a word): dearer than the acoustics of a short word's few peaky frames, so the
    search dropped them (AN4 test an408, "b a o z five three" with a grammar of digits: one [unk] for "b a o z"; a
    review). Here each letter's frame says it at 0.6 against 0.005 for blank (4.8 nats each to drop)."""
    import torch

    from asr.decoding import Decoder, DecodingConfig

    frames = "a b a"  # letters and the spaces between them, one frame each, blank frames between
    rows = []
    for ch in frames:
        for token in (VOCAB.index[ch], VOCAB.blank):
            p = np.full(len(VOCAB), 0.005)
            p[token] = 0.6 if token != VOCAB.blank else 0.99
            rows.append(np.log(p / p.sum()))
    log_probs = torch.tensor(np.array(rows))[None]  # (1, T, V)
    decoder = Decoder(DecodingConfig("beam"), VOCAB)
    steering = decoder.steer(phrase_list=["b b", "[unk]"])
    (found,) = decoder(log_probs, torch.tensor([len(rows)]), steering)
    words = "".join(VOCAB.tokens[t] for t in found.tokens).split()
    assert len(words) == 3, words  # three words heard, three [unk]s (at -10 a word: none)
