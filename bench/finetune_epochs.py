"""Greedy WER on a held-out set of every epoch a fine-tune kept, and of the mean of its last epochs' weights: does
an earlier epoch, or an average, hear a new speaker better than the best.pt that dev (the training speakers) chose?

    bash recipes/finetune/run.sh --data ../shared/data/fsdd --exp exp/ft/george --test-speakers george \
        --stop-stage 3 --train-args "--average-last 15"      # keeps each epoch's weights in train/epochs/
    python bench/finetune_epochs.py exp/ft/george/train exp/ft/george/sets/test.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from _manifests import require_manifests, run_main  # bench/_manifests.py

from asr.checkpoint import load_model
from asr.decoding import Decoder, DecodingConfig
from asr.manifest import read_manifest
from asr.metrics import score
from asr.recognizer import utterance_log_probs
from asr.training.average import averaged_weights, snapshots

LAST = (3, 5, 8, 15)  # the averages of the last N epochs scored


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("train", help="the fine-tune's train folder (best.pt, epochs/epoch-E.pt)")
    p.add_argument("manifest", help="the held-out set, e.g. EXP/sets/test.jsonl")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    require_manifests(args.manifest, how="a fine-tune's EXP/sets/test.jsonl (recipes/finetune/run.sh stage 2)")
    out = Path(args.train)
    if not snapshots(out):
        print(f"error: {out / 'epochs'}: no epoch weights (run the fine-tune with --train-args "
              "\"--average-last N\")", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    rec, utts = load_model(out / "best.pt"), read_manifest(args.manifest)
    decoder = Decoder(DecodingConfig(decoder="greedy"), rec.vocab)

    def wer() -> float:
        return score(utts, decoder.transcripts(utterance_log_probs(rec, utts, 60.0)))["wer"]

    print(f"best.pt (chosen on dev, after epoch {rec.metadata.get('epochs', '?')}): {wer():.2f}")
    for epoch, path in snapshots(out):
        try:
            rec.model.load_state_dict(torch.load(path, weights_only=True))
        except Exception as e:  # unpickling, or weights of another model: torch's errors run to many lines
            print(f"error: {path}: not this model's weights ({str(e).strip().splitlines()[0][:120]})", file=sys.stderr)
            return 2
        print(f"epoch {epoch}: {wer():.2f}")
    for last in LAST:
        weights, epochs = averaged_weights(out, last)
        if weights is not None:
            rec.model.load_state_dict(weights)
            print(f"mean of epochs {epochs[0]}-{epochs[-1]}: {wer():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
