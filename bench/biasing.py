"""Steering on AN4 test: hotwords against an LM that lacks them, a grammar of commands and digits, n-best lists.

    python bench/biasing.py [--manifest manifests/an4/test.jsonl] [--train manifests/an4/train.jsonl]

The model's log-probs are computed once; every row decodes the same (T, V) arrays with the model's
recommended beam search (width, alpha, beta from its metadata) and a word LM rebuilt here from --train's
transcripts (Kneser-Ney, --order), so that "full" and "reduced" differ only in the words taken out.

Hotwords: the --words rarest words of --train (two letters or more, ties alphabetical) that occur in the test
transcripts are taken out of every training sentence and the LM rebuilt ("reduced": to it they are unknown
words, with the unk_penalty). Their recall (occurrences found, per utterance, over occurrences said) with the
full LM, the reduced LM alone, and the reduced LM with them as hotwords (--score per character): target, the
hotwords give >= 90% of the full LM's recall; WER on the utterances without them moves <= 0.2 points. Time:
CPU seconds (time.process_time, best of --repeats) to decode the test set with 0, 100 and 1000 hotwords (the
targets and seeded made-up words and word pairs; one Steering per run, as a request makes one): targets,
<= +15% and <= +30%; what making a 1000-phrase Steering costs is printed beside.
Grammar: GRAMMAR (commands, digits, [unk]): every output must be a sequence of its phrases or [unk]; on the
test utterances it covers, WER <= half of the unconstrained default's (full LM). Alternatives: the 5 best
(no recombination, as Decoder lists them): oracle WER <= 0.6 x 1-best WER; confidences in [0, 1], sorted.
The grammar's WER against every reference with [unk] for the words outside it says whether heard words are kept
(--grammar-unk-penalty: the penalty per [unk]; the toolkit's default was chosen on dev with it).
Last lines: every figure as JSON, then the headline `hotword_recall_of_full_lm=<%>` (with --parts grammar alone:
`grammar_wer_with_unks=<%>`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections import Counter

import numpy as np
import torch

from _manifests import require_manifests, run_main
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.data import read_manifest
from asr.decoding import CTCBeamSearch, decoding_config, make_steering
from asr.decoding.steering import DEFAULT_HOTWORD_SCORE, GRAMMAR_UNK_PENALTY
from asr.lm import LMError
from asr.lm.kneser_ney import build_kneser_ney
from asr.metrics import wer, word_errors
from asr.recognizer import utterance_log_probs
from asr.text import normalize_text

GRAMMAR = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh",
           "rubout", "erase", "enter", "stop", "yes", "no", "help", "repeat", "start", "go", "[unk]"]


def target_words(train: list[str], test: list[str], count: int) -> list[str]:
    """The `count` rarest words of the training transcripts (ties alphabetical) among the test's, of 2+ letters."""
    seen = Counter(w for t in train for w in t.split())
    said = {w for t in test for w in t.split() if len(w) > 1}
    return sorted(said, key=lambda w: (seen[w], w))[:count]


def filler_phrases(count: int, seed: int = 0) -> list[str]:
    """Seeded made-up words of 3-10 letters, one in five a pair of them: hotwords the audio never says."""
    rng, letters = random.Random(seed), "abcdefghijklmnopqrstuvwxyz"
    word = lambda: "".join(rng.choice(letters) for _ in range(rng.randint(3, 10)))  # noqa: E731
    return [f"{word()} {word()}" if i % 5 == 0 else word() for i in range(count)]


def recall(refs: list[str], hyps: list[str], words: set[str]) -> tuple[int, int]:
    """(occurrences of `words` found, occurrences said): per utterance min(said, found) of each word."""
    found = said = 0
    for ref, hyp in zip(refs, hyps):
        r, h = Counter(w for w in ref.split() if w in words), Counter(hyp.split())
        said += sum(r.values())
        found += sum(min(n, h[w]) for w, n in r.items())
    return found, said


def decode(search: CTCBeamSearch, lps: list[np.ndarray], steering=None, nbest: int = 1) -> list:
    return [search(lp, steering, nbest) for lp in lps]


def texts(results: list) -> list[str]:
    return [hyps[0].text if hyps else "" for hyps in results]


def timed(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def hotwords_part(args, beam, lps, refs, train) -> dict:
    targets = target_words(train, refs, args.words)
    reduced_train = [" ".join(w for w in t.split() if w not in targets) for t in train]
    full = CTCBeamSearch(beam.vocab, beam.cfg, build_kneser_ney(train, args.order))
    reduced = CTCBeamSearch(beam.vocab, beam.cfg, build_kneser_ney(reduced_train, args.order))
    hot = make_steering(beam.vocab, [(w, args.score) for w in targets])
    rows = {"full LM": texts(decode(full, lps)), "reduced LM": texts(decode(reduced, lps)),
            "reduced LM + hotwords": texts(decode(reduced, lps, hot))}
    print(f"hotwords ({len(targets)}): {' '.join(targets)}")
    out = {}
    without = [i for i, r in enumerate(refs) if not set(r.split()) & set(targets)]
    for name, hyps in rows.items():
        found, said = recall(refs, hyps, set(targets))
        other = wer([refs[i] for i in without], [hyps[i] for i in without])
        out[name] = (ratio(found, said), other)
        print(f"  {name:24s} recall {found}/{said} = {100 * ratio(found, said):5.1f}%   WER without them "
              f"({len(without)} utts) {other:.2f}%")
    recovered = ratio(out["reduced LM + hotwords"][0], out["full LM"][0])
    moved = out["reduced LM + hotwords"][1] - out["reduced LM"][1]
    print(f"  hotwords give {100 * recovered:.1f}% of the full LM's recall (target >= 90%); WER without them "
          f"moves {moved:+.2f} points (target within 0.2)")
    times = {}
    for n in (0, 100, 1000):
        phrases = [(w, args.score) for w in (targets + filler_phrases(n - len(targets)))[:n]]
        steering = make_steering(beam.vocab, phrases) if n else None
        times[n] = timed(lambda: decode(reduced, lps, steering), args.repeats)
    build = timed(lambda: make_steering(beam.vocab, [(w, args.score) for w in filler_phrases(1000)]), 3)
    print(f"  decoding time: {times[0]:.3f} s; 100 hotwords {times[100]:.3f} s ({100 * (times[100] / times[0] - 1):+.1f}%, "
          f"target <= +15%); 1000 {times[1000]:.3f} s ({100 * (times[1000] / times[0] - 1):+.1f}%, target <= +30%); "
          f"making a 1000-phrase Steering {1000 * build:.1f} ms")
    return {"recall_recovered": recovered, "wer_moved": moved, "time_100": times[100] / times[0] - 1,
            "time_1000": times[1000] / times[0] - 1}


def ratio(a: float, b: float) -> float:
    """a / b, or nan where b is 0 (a baseline already perfect, or nothing said: no ratio to speak of)."""
    return a / b if b else math.nan


def grammar_part(beam, lps, refs, unk_penalty: float = GRAMMAR_UNK_PENALTY) -> dict:
    grammar = make_steering(beam.vocab, phrase_list=GRAMMAR, unk_penalty=unk_penalty)
    listed = set(GRAMMAR) - {"[unk]"}
    constrained, default = texts(decode(beam, lps, grammar)), texts(decode(beam, lps))
    inside = sum(all(w in listed or w == "[unk]" for w in h.split()) for h in constrained)
    covered = [i for i, r in enumerate(refs) if all(w in listed for w in r.split())]
    with_grammar = wer([refs[i] for i in covered], [constrained[i] for i in covered])
    without = wer([refs[i] for i in covered], [default[i] for i in covered])
    print(f"grammar ({len(listed)} phrases + [unk]): {inside}/{len(refs)} outputs in it (target all); on the "
          f"{len(covered)} utterances it covers WER {with_grammar:.2f}% vs {without:.2f}% unconstrained "
          f"(ratio {ratio(with_grammar, without):.2f}, target <= 0.5)")
    unks = [" ".join(w if w in listed else "[unk]" for w in r.split()) for r in refs]  # what the grammar can say
    with_unks = wer(unks, constrained)
    print(f"grammar, [unk] penalty {unk_penalty:g}: WER {with_unks:.2f}% against every reference with [unk] for the "
          f"words outside it ({sum(len(h.split()) for h in constrained)} words out, {sum(len(u.split()) for u in unks)} "
          "said: an [unk] dearer than a short word's acoustics drops the word)")
    return {"in_grammar": inside / len(refs), "grammar_wer_ratio": ratio(with_grammar, without),
            "grammar_wer_covered": with_grammar, "grammar_wer_with_unks": with_unks}


def alternatives_part(beam, lps, refs) -> dict:
    lists = decode(beam.replace(recombine=False), lps, nbest=5)
    one = sum(word_errors(r, h[0].text).errors for r, h in zip(refs, lists))
    oracle = sum(min(word_errors(r, x.text).errors for x in h) for r, h in zip(refs, lists))
    confidences = [[x.confidence for x in h] for h in lists]
    ok = all(c == sorted(c, reverse=True) and all(0 <= x <= 1 for x in c) for c in confidences)
    distinct = all(len({x.text for x in h}) == len(h) for h in lists)
    print(f"alternatives (5-best, {np.mean([len(h) for h in lists]):.2f} on average): oracle {oracle} word errors "
          f"vs {one} for the 1-best (ratio {ratio(oracle, one):.2f}, target <= 0.6); confidences in [0, 1] and sorted: "
          f"{ok}; texts distinct: {distinct}")
    return {"oracle_ratio": ratio(oracle, one)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--train", default="manifests/an4/train.jsonl")
    p.add_argument("--order", type=int, default=2, help="the LMs' order (the shipped AN4 LM is a bigram)")
    p.add_argument("--words", type=int, default=15, help="hotwords: the rarest words taken out of the LM")
    p.add_argument("--score", type=float, default=DEFAULT_HOTWORD_SCORE, help="hotword bonus per character")
    p.add_argument("--repeats", type=int, default=10, help="timed passes per hotword count; the fastest counts")
    p.add_argument("--grammar-unk-penalty", type=float, default=GRAMMAR_UNK_PENALTY,
                   help="the grammar's penalty per [unk] (natural log; the toolkit's default)")
    p.add_argument("--parts", default="hotwords,grammar,alternatives", help="which parts to run")
    args = p.parse_args()
    require_manifests(args.manifest, args.train)
    torch.set_num_threads(1)
    rec = load_model(args.model)
    cfg = decoding_config(argparse.Namespace(lm="none"), rec.metadata, args.model)
    utts, train = read_manifest(args.manifest), [normalize_text(u.text) for u in read_manifest(args.train)]
    refs = [normalize_text(u.text) for u in utts]
    lps = [lp.double().numpy() for lp in utterance_log_probs(rec, utts)]
    try:
        lm = build_kneser_ney(train, args.order)
    except ValueError as e:  # no words in the transcripts: say whose
        raise LMError(f"{args.train}: {e}") from None
    beam = CTCBeamSearch(rec.vocab, dataclasses.replace(cfg.beam, nbest=1), lm)
    print(f"{len(utts)} utterances, beam {cfg.beam.beam_size}, alpha {cfg.beam.alpha}, beta {cfg.beam.beta}, "
          f"{args.order}-gram LMs from {args.train}")
    parts = args.parts.split(",")
    results = {**(hotwords_part(args, beam, lps, refs, train) if "hotwords" in parts else {}),
               **(grammar_part(beam, lps, refs, args.grammar_unk_penalty) if "grammar" in parts else {}),
               **(alternatives_part(beam, lps, refs) if "alternatives" in parts else {})}
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))
    if "recall_recovered" in results:
        print(f"hotword_recall_of_full_lm={100 * results['recall_recovered']:.1f}")
    elif "grammar_wer_with_unks" in results:
        print(f"grammar_wer_with_unks={results['grammar_wer_with_unks']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
