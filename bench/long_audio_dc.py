"""Long files with a DC offset or mains hum: WER of the long-file path of `transcribe` on AN4 test utterances joined
into one file, clean and with a constant offset or a 50 Hz hum added, against the same utterances as short files.

    nice -n 19 python bench/long_audio_dc.py --manifest manifests/an4/test.jsonl [--count 60] [--threads 1]

The first --count utterances of the manifest are joined with --gap s of digital silence between them (60 AN4 test
utterances: about 196 s) and the references joined as the reference text. Each condition adds its offset or hum to
the whole file, and to each utterance on its own for the short-file figure (as `asr.evaluate` would hear them);
decoding is what the model recommends (the shipped model: beam search + its word LM), as `transcribe` decodes by
default. The segmenter cuts long files at pauses from 10 ms frame energies: an offset or hum that it takes for
energy raises its noise floor above quiet speech, whose words then fall outside every segment. Prints `name=value`
lines; the last is the headline: the worst condition's long-file WER minus the clean long file's (points).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.cli import apply_threads, positive_float, positive_int
from asr.data import read_manifest
from asr.decoding import Decoder, add_decoding_flags, decoding_config
from asr.longform import transcribe_paths
from asr.metrics import wer
from asr.text import normalize_text

from _manifests import require_manifests, run_main  # bench/_manifests.py

HUM_HZ = 50.0  # mains frequency of the hum condition (Europe; 60 Hz in the Americas)
CONDITIONS = {  # name -> (DC offset, hum amplitude), both in full scale
    "clean": (0.0, 0.0),
    "dc_0.01": (0.01, 0.0),
    "dc_0.03": (0.03, 0.0),
    "hum_50hz_0.03": (0.0, 0.03),
}


def disturb(wave: np.ndarray, dc: float, hum: float, start: int = 0) -> np.ndarray:
    """(N,) -> (N,) float32 with `dc` added and a HUM_HZ sine of amplitude `hum` (phase from sample `start` of the
    file it belongs to)."""
    t = (start + np.arange(len(wave))) / SAMPLE_RATE
    return (wave + dc + hum * np.sin(2 * np.pi * HUM_HZ * t)).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl", help="AN4 test (read only)")
    p.add_argument("--count", type=positive_int, default=60, help="utterances joined into the long file")
    p.add_argument("--gap", type=positive_float, default=0.5, help="seconds of silence between utterances")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: what torch picks)")
    add_decoding_flags(p)
    args = p.parse_args()
    require_manifests(args.manifest)
    apply_threads(args.threads)
    utts = read_manifest(args.manifest)[: args.count]
    waves = [load_audio(u.audio) for u in utts]
    gap = np.zeros(round(args.gap * SAMPLE_RATE), np.float32)
    joined = np.concatenate([piece for w in waves for piece in (w, gap)][:-1])
    starts = np.cumsum([0] + [len(w) + len(gap) for w in waves[:-1]])
    ref = " ".join(normalize_text(u.text) for u in utts)
    rec = load_model(args.model)
    decoder = Decoder(decoding_config(args, rec.metadata, args.model), rec.vocab)
    print(f"{len(utts)} utterances, {len(joined) / SAMPLE_RATE:.1f} s with {args.gap} s gaps; "
          f"decoding: {decoder.cfg.to_dict()}")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="long_audio_dc_") as tmp:
        for name, (dc, hum) in CONDITIONS.items():
            long_path = Path(tmp) / f"{name}.wav"
            sf.write(long_path, disturb(joined, dc, hum), SAMPLE_RATE, subtype="FLOAT")
            clips = []
            for k, (w, s) in enumerate(zip(waves, starts)):
                clips.append(Path(tmp) / f"{name}_{k}.wav")
                sf.write(clips[-1], disturb(w, dc, hum, int(s)), SAMPLE_RATE, subtype="FLOAT")
            (result,) = transcribe_paths(rec, [str(long_path)], decoder=decoder)
            alone = " ".join(r.text for r in transcribe_paths(rec, [str(c) for c in clips], decoder=decoder))
            figures[name] = wer([ref], [result.text])
            print(f"{name}: long file {figures[name]:.2f}% ({len(result.segments)} segments), "
                  f"utterances alone {wer([ref], [alone]):.2f}%", flush=True)
    for name, value in figures.items():
        print(f"wer_long_{name}={value:.2f}")
    print(f"wer_long_worst_minus_clean={max(figures.values()) - figures['clean']:.2f}")  # the headline, last


if __name__ == "__main__":
    sys.exit(run_main(main))
