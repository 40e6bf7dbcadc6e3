"""Training throughput of the AN4 recipe's configuration: seconds of audio trained per wall second.

    python bench/train_speed.py [--train manifests/an4/train.jsonl] [--steps 20]

Runs real optimiser steps (augmentation, features in a DataLoader worker, forward, CTC, backward, AdamW)
on the recipe's model and batch size, after a few warm-up steps. Prints `train_audio_seconds_per_second=X` last.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from asr.data import collate
from asr.training import TrainConfig, Trainer

from _manifests import require_manifests  # bench/_manifests.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--train", default="manifests/an4/train.jsonl")
    p.add_argument("--noise", default="../shared/data/noise/noise.jsonl", help="noise recordings; '': synthetic noise")
    p.add_argument("--rir", default="../shared/data/noise/rir.jsonl", help="room impulse responses; '': none")
    p.add_argument("--batch-seconds", type=float, default=90.0, help="as in recipes/an4/run.sh")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    require_manifests(args.train)
    require_manifests(args.noise, how="it comes with the shared data, or give --noise '' for synthetic noise")
    require_manifests(args.rir, how="it comes with the shared data, or give --rir '' for no reverberation")
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(train=args.train, dev=args.train, out=out, batch_seconds=args.batch_seconds,
                          noise=args.noise, rir=args.rir, device=args.device)
        trainer = Trainer(cfg)
        loader = torch.utils.data.DataLoader(trainer.dataset, batch_sampler=trainer.sampler, collate_fn=collate,
                                             num_workers=cfg.num_workers)
        trainer.rec.model.train()
        seconds, start = 0.0, None
        for i, batch in enumerate(loader):
            if i == args.warmup:
                start = time.perf_counter()
            trainer.train_step(batch)
            if i >= args.warmup:
                seconds += batch.seconds
            if i + 1 == args.warmup + args.steps:
                break
        elapsed = time.perf_counter() - start
    print(f"model: {trainer.rec.model.num_parameters() / 1e6:.2f}M parameters, threads: {torch.get_num_threads()}, "
          f"{args.steps} steps, {seconds:.0f} s of audio in {elapsed:.1f} s")
    print(f"train_audio_seconds_per_second={seconds / elapsed:.1f}")


if __name__ == "__main__":
    main()
