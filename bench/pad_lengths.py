"""Does padding each batch's length up to a multiple of M frames make a training step faster? Issue 18 asked: with
lengths that vary from batch to batch, oneDNN builds new primitives for each shape; a few fixed sizes might pay
for the padding they add.

    python bench/pad_lengths.py [--model asr/assets/an4.pt] [--train manifests/an4/train.jsonl]
        [--multiples 0 32 64] [--batches 30] [--rounds 2] [--threads 1] [--precision bf16]

The shipped model's forward, a loss and the backward (no optimiser step, no data loading: the model alone) on
random features shaped as the recipe's batches are: the training manifest's durations, sorted, cut into batches of
at most --batch-seconds of padded audio, in a shuffled order (seeded). Each multiple (0: no padding beyond the
batch's longest utterance) runs the same batches after a warm-up of 3, in turns, --rounds times; it prints the
audio seconds per wall second of each run, and last `pad_speedup=X`: the best multiple's best run over no
padding's best.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch

from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.cli import apply_threads, positive_float, positive_int
from asr.data import ManifestError, read_manifest

from _manifests import require_manifests, run_main  # bench/_manifests.py

FRAMES_PER_S = 100  # 10 ms feature frames


def batches_of(durations: list[float], batch_seconds: float, seed: int = 0) -> list[list[int]]:
    """Frame counts of each batch: sorted durations cut where the padded size (count x longest) would pass
    batch_seconds, the batches shuffled."""
    out, batch = [], []
    for seconds in sorted(durations):
        if batch and (len(batch) + 1) * seconds > batch_seconds:
            out.append(batch)
            batch = []
        batch.append(max(1, round(seconds * FRAMES_PER_S)))
    if batch:
        out.append(batch)
    random.Random(seed).shuffle(out)
    return out


def padded(frames: int, multiple: int) -> int:
    return -(-frames // multiple) * multiple if multiple else frames


def run(model, batches: list[list[int]], multiple: int, dtype: torch.dtype, n_mels: int) -> float:
    """Audio seconds per wall second of forward + backward over `batches` (after the first 3, a warm-up)."""
    audio, start = 0.0, None
    for i, lengths in enumerate(batches):
        if i == 3:
            start = time.perf_counter()
        x = torch.randn(len(lengths), padded(max(lengths), multiple), n_mels)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            log_probs, _ = model(x, torch.tensor(lengths))
            loss = log_probs.float().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        if i >= 3:
            audio += sum(lengths) / FRAMES_PER_S
    return audio / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--train", default="manifests/an4/train.jsonl", help="whose durations shape the batches")
    p.add_argument("--batch-seconds", type=positive_float, default=90.0, help="padded audio per batch (the recipe's)")
    p.add_argument("--multiples", type=int, nargs="+", default=[0, 32, 64], help="frames (0: no padding)")
    p.add_argument("--batches", type=positive_int, default=30, help="batches timed per run (after 3 of warm-up)")
    p.add_argument("--rounds", type=positive_int, default=2)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    args = p.parse_args()
    require_manifests(args.train)
    if any(m < 0 for m in args.multiples):
        p.error("--multiples must be 0 or more frames")
    apply_threads(args.threads)
    model = load_model(args.model).model.float().train()
    try:
        durations = [u.duration for u in read_manifest(args.train)]
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    batches = batches_of(durations, args.batch_seconds)[:args.batches + 3]
    if len(batches) < 4:
        print(f"error: {args.train}: {len(batches)} batch(es) of --batch-seconds {args.batch_seconds}; the bench "
              "needs 4 or more (3 to warm up)", file=sys.stderr)
        sys.exit(2)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    print(f"{len(batches) - 3} batches timed (+3 warm-up), {args.threads} thread(s), {args.precision}")
    best: dict[int, float] = {}
    for round_ in range(1, args.rounds + 1):
        for multiple in args.multiples:
            rate = run(model, batches, multiple, dtype, model.cfg.n_mels)
            best[multiple] = max(best.get(multiple, 0.0), rate)
            extra = sum(padded(max(b), multiple) * len(b) for b in batches) / sum(max(b) * len(b) for b in batches)
            print(f"round {round_}, lengths padded to a multiple of {multiple or 1} frame(s) "
                  f"({extra:.3f}x the frames): {rate:.1f} audio s/s", flush=True)
    padded_best = max((m for m in best if m), key=best.get, default=0)
    print(f"pad_speedup={best[padded_best] / best[0]:.3f}" if 0 in best else "pad_speedup=nan")


if __name__ == "__main__":
    sys.exit(run_main(main))
