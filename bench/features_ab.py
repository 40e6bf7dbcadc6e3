"""The cost of the level-independent front end in training: the AN4 recipe's run (its settings, its noise and
RIR split), once with today's features (the log floor relative to the running speech level) and once with v1's
absolute floor, each for the same wall-time budget, one after the other; prints each run's epochs side by side.

    python bench/features_ab.py [--train manifests/an4/train.jsonl] [--dev manifests/an4/dev.jsonl]
        [--noise-dir manifests/an4/noise] [--minutes 6.5] [--epochs 56] [--out exp/features_ab]

The epochs argument sets the learning-rate schedule (as `run.sh --epochs`), the budget where each run stops;
run it with the machine to itself. Prints per epoch: train loss and dev WER of both; last,
`train_loss_ratio_last_common_epoch=relative/absolute`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from asr.features import FeatureConfig
from asr.training import TrainConfig, Trainer

from _manifests import require_manifests, run_main  # bench/_manifests.py

FLOORS = {"relative": FeatureConfig().relative_floor, "absolute": 0.0}  # name -> FeatureConfig.relative_floor


def train(args, name: str) -> list[dict]:
    out = Path(args.out) / name
    shutil.rmtree(out, ignore_errors=True)
    noise = Path(args.noise_dir)
    cfg = TrainConfig(train=args.train, dev=args.dev, out=str(out), epochs=args.epochs, max_minutes=args.minutes,
                      batch_seconds=90, noise=str(noise / "noise_train.jsonl"), rir=str(noise / "rir_train.jsonl"),
                      features=FeatureConfig(relative_floor=FLOORS[name]))
    Trainer(cfg).run()
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--train", default="manifests/an4/train.jsonl")
    p.add_argument("--dev", default="manifests/an4/dev.jsonl")
    p.add_argument("--noise-dir", default="manifests/an4/noise", help="recipes/an4/split_noise.py's output")
    p.add_argument("--minutes", type=float, default=6.5, help="wall-time budget of each run")
    p.add_argument("--epochs", type=int, default=56, help="the schedule's length, as run.sh --epochs")
    p.add_argument("--out", default="exp/features_ab")
    args = p.parse_args()
    require_manifests(args.train, args.dev)
    noise = Path(args.noise_dir)
    require_manifests(noise / "noise_train.jsonl", noise / "rir_train.jsonl",
                      how="make it with: bash recipes/an4/run.sh --stage 1 --stop-stage 1")
    runs = {name: train(args, name) for name in FLOORS}
    print("| epoch | train loss, relative | train loss, absolute | dev WER %, relative | dev WER %, absolute |")
    print("|---:|---:|---:|---:|---:|")
    rel, ab = runs["relative"], runs["absolute"]
    for r, a in zip(rel, ab):
        print(f"| {r['epoch']} | {r['train_loss']:.3f} | {a['train_loss']:.3f} | {r['dev_wer']:.2f} | {a['dev_wer']:.2f} |")
    common = min(len(rel), len(ab))
    print(f"train_loss_ratio_last_common_epoch={rel[common - 1]['train_loss'] / ab[common - 1]['train_loss']:.3f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
