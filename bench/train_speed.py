"""Training throughput of the AN4 recipe's configuration: seconds of audio trained per wall second, for the
layout training used to have (torch's default threads, one DataLoader worker, fp32) and the one asr.train now
chooses (asr.training.layout: threads and workers from the cores, --precision auto), in one run.

    python bench/train_speed.py [--train manifests/an4/train.jsonl] [--steps 20] [--busy]

Each layout runs real optimiser steps (augmentation, features in DataLoader workers, forward, CTC, backward,
AdamW) on the recipe's model and batch size, after a few warm-up steps. Beside them: the LSTM kernel's own
forward + backward rate in the chosen precision (GFLOP/s, asr.training.layout.lstm_step_rate), and the share
of it the training step reaches (the model's LSTM FLOPs per second over the kernel's). --busy measures each
layout again with one other CPU-bound process running (a busy loop). Prints `train_speedup=X` last: the new
layout over the old one, idle.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time

import torch

from asr.cli import apply_threads, usable_cores
from asr.data import collate
from asr.model import ModelConfig, subsampled_lengths
from asr.training import TrainConfig, Trainer
from asr.training.layout import choose_layout, choose_precision, lstm_flops, lstm_step_rate

from _manifests import require_manifests, run_main  # bench/_manifests.py


def model_flops(cfg: ModelConfig, batch) -> float:
    """The LSTM stack's FLOPs in one training step on `batch` (forward + backward ~ 3x forward; padded frames
    are computed too, so they count)."""
    steps = len(batch.ids) * int(subsampled_lengths(batch.feature_lengths.max()[None])[0])
    forward = sum(2 * lstm_flops(cfg.hidden if i == 0 else 2 * cfg.hidden, cfg.hidden, steps)  # both directions
                  for i in range(cfg.layers))
    return 3 * forward


def throughput(args, threads: int, workers: int, precision: str) -> tuple[float, float]:
    """(audio seconds per wall second, model GFLOP/s) of `args.steps` steps in this layout."""
    apply_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(train=args.train, dev=args.train, out=out, batch_seconds=args.batch_seconds, noise=args.noise,
                          rir=args.rir, device="cpu", num_workers=workers, amp=precision != "fp32",
                          amp_dtype=precision if precision != "fp32" else "auto")
        trainer = Trainer(cfg)
        loader = torch.utils.data.DataLoader(trainer.dataset, batch_sampler=trainer.sampler, collate_fn=collate,
                                             num_workers=workers, prefetch_factor=4 if workers else None)
        trainer.rec.model.train()
        seconds, flops, start = 0.0, 0.0, None
        for i, batch in enumerate(loader):
            if i == args.warmup:
                start = time.perf_counter()
            trainer.train_step(batch)
            if i >= args.warmup:
                seconds, flops = seconds + batch.seconds, flops + model_flops(trainer.rec.model.cfg, batch)
            if i + 1 == args.warmup + args.steps:
                break
        if start is None:
            print(f"error: {args.train}: fewer than --warmup {args.warmup} + 1 batches to time; give a larger "
                  "manifest or fewer --warmup steps", file=sys.stderr)
            sys.exit(2)
        elapsed = time.perf_counter() - start
    return seconds / elapsed, flops / elapsed / 1e9


def busy_loop() -> None:
    while True:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--train", default="manifests/an4/train.jsonl")
    p.add_argument("--noise", default="../shared/data/noise/noise.jsonl", help="noise recordings; '': synthetic noise")
    p.add_argument("--rir", default="../shared/data/noise/rir.jsonl", help="room impulse responses; '': none")
    p.add_argument("--batch-seconds", type=float, default=90.0, help="as in recipes/an4/run.sh")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--busy", action="store_true", help="also measure beside one other CPU-bound process")
    args = p.parse_args()
    require_manifests(args.train)
    require_manifests(args.noise, how="it comes with the shared data, or give --noise '' for synthetic noise")
    require_manifests(args.rir, how="it comes with the shared data, or give --rir '' for no reverberation")
    default_threads = torch.get_num_threads()  # what torch picks: the old layout's
    cores = usable_cores()
    layout = choose_layout(cores, "cpu")
    precision, why = choose_precision("auto", "cpu", ModelConfig().hidden, layout.threads)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    limit = lstm_step_rate(ModelConfig().hidden, dtype, layout.threads, repeats=5)
    print(f"{cores} usable cores; new layout: {layout.threads} thread(s), {layout.workers} worker(s), "
          f"{precision} ({why})")
    print(f"LSTM kernel limit ({precision}, {layout.threads} thread(s), forward + backward): {limit:.0f} GFLOP/s")
    layouts = {"old": (default_threads, 1, "fp32"), "new": (layout.threads, layout.workers, precision)}
    results = {}
    for load in ("idle", "busy") if args.busy else ("idle",):
        other = multiprocessing.Process(target=busy_loop, daemon=True) if load == "busy" else None
        if other is not None:
            other.start()
        try:
            for name, (threads, workers, prec) in layouts.items():
                rate, gflops = throughput(args, threads, workers, prec)
                results[name, load] = rate
                print(f"{load} {name}: {threads} thread(s), {workers} worker(s), {prec}: {rate:.1f} audio s/s, "
                      f"model {gflops:.0f} GFLOP/s = {100 * gflops / limit:.0f}% of the kernel limit")
        finally:
            if other is not None:
                other.terminate()
    if args.busy:
        for name in layouts:
            print(f"busy_over_idle_{name}={results[name, 'busy'] / results[name, 'idle']:.2f}")
    print(f"train_speedup={results['new', 'idle'] / results['old', 'idle']:.2f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
