"""End-to-end speed of `transcribe` over AN4 test: model load + audio reading + features + model + decoding.

    python bench/transcribe_speed.py [--model asr/assets/an4.pt] [--manifest manifests/an4/test.jsonl] [--threads N]

Reports the real-time factor (processing seconds / audio seconds) at batch 1 (file by file) and batched
(all files in one call), with the decoding a user gets by default (the model's recommended one: beam
search + LM for the shipped model) and with greedy decoding, and prints `speed_x_realtime=X` (default
decoding, batched, 1 / RTF) last. Torch runs on the threads `python -m asr.transcribe` takes: --threads N, or
by default asr.cli.default_threads() (1 on 2 usable cores or fewer).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from asr.audio import AudioError
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.cli import apply_threads, default_threads, positive_int
from asr.data import read_manifest
from asr.decoding import Decoder, DecodingConfig, decoding_config
from asr.transcribe import transcribe_files

from _manifests import require_manifests, run_main  # bench/_manifests.py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: as asr.transcribe chooses them)")
    args = p.parse_args()
    apply_threads(args.threads or default_threads())
    require_manifests(args.manifest)
    utts = read_manifest(args.manifest)
    paths = [u.audio for u in utts]
    audio = sum(u.duration for u in utts)

    start = time.perf_counter()
    rec = load_model(args.model)
    load_seconds = time.perf_counter() - start
    default = Decoder(decoding_config(argparse.Namespace(), rec.metadata, args.model), rec.vocab)
    greedy = Decoder(DecodingConfig("greedy"), rec.vocab)
    # a first pass over every file: the warm-up (allocators, thread pools), and no speed for audio that cannot be read
    if failed := next((r for r in transcribe_files(rec, paths, decoder=greedy) if "error" in r), None):
        raise AudioError(failed["error"])

    def best_of(run) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return min(times)

    print(f"{len(paths)} files, {audio:.1f} s of audio, {torch.get_num_threads()} threads; model load {load_seconds:.2f} s")
    for name, decoder in (("greedy", greedy), (f"default ({default.cfg.decoder})", default)):
        batch1 = best_of(lambda: [transcribe_files(rec, [path], decoder=decoder) for path in paths])
        batched = best_of(lambda: transcribe_files(rec, paths, decoder=decoder))
        print(f"{name}: batch 1: {batch1:.2f} s  RTF {batch1 / audio:.4f}  ({audio / batch1:.0f}x real time);  "
              f"batched: {batched:.2f} s  RTF {batched / audio:.4f}  ({audio / batched:.0f}x real time)")
    end_to_end = load_seconds + batched
    print(f"batched incl. model load: RTF {end_to_end / audio:.4f}  ({audio / end_to_end:.0f}x real time)")
    print(f"speed_x_realtime_batch1={audio / batch1:.0f}")
    print(f"speed_x_realtime={audio / batched:.0f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
