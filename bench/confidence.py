"""Mean word confidence per file of a model, in domain and out of it: what --min-confidence rests on.

    python bench/confidence.py [--manifest manifests/an4/test.jsonl] [--model asr/assets/an4.pt] [--greedy]

Each utterance of the manifest is transcribed as it is (in domain) and played backwards (the same voice,
level and channel, but no words the model knows: a stand-in for out-of-domain audio), decoded as `python -m
asr.transcribe` decodes by default (the model's recommended decoding: for the shipped one, beam search + LM; greedy
with --greedy), through the same pipeline. Prints the decoding, the range and median of the file means and the share
of each set below a few thresholds; last, `below_threshold_in_domain=<%>` and `below_threshold_backwards=<%>` at the
shipped default (asr.longform.pipeline.LOW_CONFIDENCE).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from _manifests import require_manifests, run_main
from asr.audio import SAMPLE_RATE, load_audio
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.cli import apply_threads, default_threads
from asr.data import read_manifest
from asr.decoding import Decoder, decoding_config
from asr.longform import transcribe_paths
from asr.longform.pipeline import LOW_CONFIDENCE

THRESHOLDS = (0.70, 0.75, 0.80, 0.85)


def file_means(rec, paths: list[str], decoder: Decoder) -> np.ndarray:
    """Mean word confidence of each file that gives words."""
    means = [r.mean_confidence for r in transcribe_paths(rec, paths, decoder=decoder)]
    return np.array([m for m in means if m is not None])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of the model's recommended one")
    args = p.parse_args()
    require_manifests(args.manifest)
    apply_threads(default_threads())  # as asr.transcribe chooses them: 1 on 2 cores (a second fights other jobs)
    rec = load_model(args.model)
    cfg = decoding_config(argparse.Namespace(decoder="greedy" if args.greedy else None), rec.metadata, args.model)
    decoder = Decoder(cfg, rec.vocab)
    print(f"decoding: {cfg.decoder}" + (f" (beam {cfg.beam.beam_size}, LM {cfg.lm}, alpha {cfg.beam.alpha}, beta "
                                        f"{cfg.beam.beta})" if cfg.decoder == "beam" else ""))
    utts = read_manifest(args.manifest)
    with tempfile.TemporaryDirectory() as tmp:
        reversed_paths = []
        for u in utts:
            path = Path(tmp) / f"{u.id}.wav"
            sf.write(path, load_audio(u.audio)[::-1], SAMPLE_RATE, subtype="FLOAT")
            reversed_paths.append(str(path))
        sets = {"in domain": file_means(rec, [u.audio for u in utts], decoder),
                "backwards": file_means(rec, reversed_paths, decoder)}
    for name, means in sets.items():
        shares = "  ".join(f"<{t:.2f}: {100 * np.mean(means < t):.1f}%" for t in THRESHOLDS)
        print(f"{name}: {len(means)} files with words, mean confidence {means.min():.2f}-{means.max():.2f}, "
              f"median {np.median(means):.2f}; {shares}")
    for name, means in sets.items():
        print(f"below_threshold_{name.replace(' ', '_')}={100 * np.mean(means < LOW_CONFIDENCE):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
