"""Where v1's level guard (asr.features.level_guard) comes from, and what range it leaves alone.

    python bench/level_guard.py [--train manifests/an4/train.jsonl] [--dev manifests/an4/dev.jsonl]
                                [--test manifests/an4/test.jsonl] [--every 8]

1. The speech levels of AN4's training clips (asr.features.speech_level_db of one clip in --every): their 1st,
   50th and 99th percentiles, beside the constants asr/features.py holds (V1_LEVELS_DB, V1_LEVEL_DB).
2. On dev (chooses): WER greedy / default at 0, -10 and -20 dB (16-bit) for ranges left alone between the
   training levels' 1st-99th, 2nd-98th, 3rd-97th and 5th-95th percentiles, and with every clip brought to the
   median ("none"). The shipped range is the widest: it leaves clips at v1's own levels exactly as they were.
3. On test (scored): the shipped guard at -40, -50 and -60 dB (greedy), where 16-bit quantisation takes over
   (asr.longform.notes.QUIET_DB).
Clips are decoded as transcribe decodes one short file (asr.longform.decode_segments, the model's recommended
decoding for "default"). Prints `name=value` lines.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import asr.features as features
from asr.audio import load_audio
from asr.checkpoint import DEFAULT_MODEL, load_recognizer
from asr.data import read_manifest
from asr.decoding import Decoder, decoding_config
from asr.longform import decode_segments
from asr.longform.segment import Segment
from asr.metrics import wer
from asr.text import normalize_text

from _manifests import require_manifests, run_main  # bench/_manifests.py

RANGES = {"1-99": (1, 99), "2-98": (2, 98), "3-97": (3, 97), "5-95": (5, 95), "none": (50, 50)}


def at_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """The clip `gain_db` louder, written as 16-bit PCM would hold it."""
    x = np.clip(wave * 10 ** (gain_db / 20), -1, 1)
    return (np.round(x * 32767) / 32767).astype(np.float32)


def score(rec, decoder: Decoder, waves: list[np.ndarray], refs: list[str]) -> float:
    words = decode_segments(rec, [Segment(0, w, None) for w in waves], decoder)
    return wer(refs, [" ".join(w.word for w in ws) for ws in words])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--train", default="manifests/an4/train.jsonl")
    p.add_argument("--dev", default="manifests/an4/dev.jsonl")
    p.add_argument("--test", default="manifests/an4/test.jsonl")
    p.add_argument("--every", type=int, default=8, help="one training clip in this many is measured")
    args = p.parse_args()
    require_manifests(args.train, args.dev, args.test)
    torch.set_num_threads(1)
    model = str(DEFAULT_MODEL)
    rec = load_recognizer(model, "torch")
    decoders = {name: Decoder(decoding_config(argparse.Namespace(**flags), rec.metadata, model), rec.vocab)
                for name, flags in (("greedy", {"decoder": "greedy"}), ("default", {}))}
    levels = [features.speech_level_db(load_audio(u.audio)) for u in read_manifest(args.train)[:: args.every]]
    low, mid, high = np.percentile(levels, [1, 50, 99])
    print(f"train_levels_dbfs p1={low:.1f} p50={mid:.1f} p99={high:.1f} (asr/features.py: V1_LEVELS_DB "
          f"{features.V1_LEVELS_DB}, V1_LEVEL_DB {features.V1_LEVEL_DB})")
    shipped = features.V1_LEVELS_DB
    for name, path, gains, ranges in (("dev", args.dev, (0, -10, -20), RANGES), ("test", args.test, (-40, -50, -60),
                                                                                {"shipped": None})):
        utts = read_manifest(path)
        waves, refs = [load_audio(u.audio) for u in utts], [normalize_text(u.text) for u in utts]
        for label, pct in ranges.items():
            features.V1_LEVELS_DB = shipped if pct is None else tuple(float(v) for v in np.percentile(levels, pct))
            for gain in gains:
                degraded = [at_gain(w, gain) if gain else w for w in waves]
                decs = decoders if name == "dev" else {"greedy": decoders["greedy"]}
                figures = " ".join(f"{d}={score(rec, dec, degraded, refs):.2f}" for d, dec in decs.items())
                print(f"{name} range={label} gain_db={gain}: {figures}", flush=True)
    features.V1_LEVELS_DB = shipped


if __name__ == "__main__":
    sys.exit(run_main(main))
