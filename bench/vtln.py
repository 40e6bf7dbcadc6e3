"""Test-time vocal tract length normalisation: does warping a new speaker's features towards the voices a model
knows, by the factor under which the model is most sure of itself, hear that speaker better?

    python bench/vtln.py --model exp/ft/george/model.pt --manifest exp/ft/george/sets/test.jsonl

For each warp factor (asr.augment.VocalTractWarp, fixed), the model's log-probs of every utterance; an utterance's
score under a factor is its greedy path's mean log-prob per frame. Prints greedy WER at each fixed factor, then
greedy and default-decoding (the model's recommended: beam + its LM) WER with factor 1, with the factor chosen per
utterance (its best score), and per speaker (the best total over the speaker's utterances, as
Kaldi's VTLN picks a speaker's warp by likelihood), with the mean of the posteriors over all factors (the warps keep
the timing, so frames align), and last `vtln_wer=<per utterance> vtln_baseline=<factor 1>` (default decoding).
No labels are used to choose.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict

import numpy as np
import torch

from _manifests import require_manifests, run_main  # bench/_manifests.py

from asr.augment import VocalTractWarp
from asr.checkpoint import load_model
from asr.decoding import Decoder, DecodingConfig, decoding_config
from asr.manifest import read_manifest
from asr.metrics import score
from asr.recognizer import utterance_log_probs
from asr.cli import speed_factor

FACTORS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)


class WarpedFrontend:
    """A front end whose features are warped by one fixed factor (1: the front end as it is)."""

    def __init__(self, frontend, factor: float):
        self.frontend, self.cfg = frontend, frontend.cfg
        self.warp = VocalTractWarp(frontend.cfg.f_min, frontend.cfg.f_max, factors=(factor, factor), p=1.0)

    def __call__(self, waveform):
        return self.warp(self.frontend(waveform))


def path_score(log_probs: torch.Tensor) -> float:
    """The greedy path's mean log-prob per frame: how sure the model is."""
    return float(log_probs.max(dim=-1).values.mean()) if log_probs.shape[0] else float("-inf")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True, help="a held-out set (its speaker field groups the utterances)")
    p.add_argument("--factors", type=speed_factor, nargs="+", default=FACTORS, help="warp factors, 0.5 < F <= 2")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    require_manifests(args.manifest, how="a fine-tune's EXP/sets/test.jsonl (recipes/finetune/run.sh stage 2)")
    torch.set_num_threads(args.threads)
    rec, utts = load_model(args.model), read_manifest(args.manifest)
    if not utts:
        print(f"error: {args.manifest}: no utterances to score", file=sys.stderr)
        return 2
    decoder = Decoder(DecodingConfig(decoder="greedy"), rec.vocab)
    log_probs_at, scores, summed = {}, {}, None
    factors = sorted(set(args.factors) | {1.0})  # 1: the baseline
    for factor in factors:
        warped = dataclasses.replace(rec, frontend=WarpedFrontend(rec.frontend, factor))
        log_probs = log_probs_at[factor] = utterance_log_probs(warped, utts, 60.0)
        probs = [lp.exp() for lp in log_probs]
        summed = probs if summed is None else [a + b for a, b in zip(summed, probs)]
        scores[factor] = [path_score(lp) for lp in log_probs]
        print(f"factor {factor:.2f}: greedy WER {score(utts, decoder.transcripts(log_probs))['wer']:.2f}, mean score "
              f"{np.mean(scores[factor]):.4f}")
    def surest(score_of) -> float:  # the factor with the best score; on a tie, the one nearest 1 (no warp)
        return max(factors, key=lambda f: (score_of(f), -abs(f - 1.0)))

    per_utt = [surest(lambda f: scores[f][i]) for i in range(len(utts))]
    by_speaker = defaultdict(list)
    for i, u in enumerate(utts):
        by_speaker[u.speaker].append(i)
    speaker_factor = {s: surest(lambda f: sum(scores[f][i] for i in idx)) for s, idx in by_speaker.items()}
    print(f"factors chosen per utterance: {({f: per_utt.count(f) for f in factors})}; per speaker: {speaker_factor}")
    ways = {  # way -> each utterance's log-probs
        "factor 1 (as transcribe does)": log_probs_at[1.0],
        "factor per utterance": [log_probs_at[f][i] for i, f in enumerate(per_utt)],
        "factor per speaker": [log_probs_at[speaker_factor[u.speaker]][i] for i, u in enumerate(utts)],
        "mean of the posteriors": [(p / len(factors)).log() for p in summed],  # warps keep timing: frames align
    }
    default = Decoder(decoding_config(argparse.Namespace(), rec.metadata, args.model), rec.vocab)
    result = {}
    for way, log_probs in ways.items():
        result[way] = [score(utts, d.transcripts(log_probs))["wer"] for d in (decoder, default)]
        print(f"{way}: greedy WER {result[way][0]:.2f}, default decoding {result[way][1]:.2f}")
    chosen, baseline = result["factor per utterance"][1], result["factor 1 (as transcribe does)"][1]
    print(f"vtln_wer={chosen:.2f} vtln_baseline={baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
