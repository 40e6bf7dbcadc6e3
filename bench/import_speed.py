"""How fast `python -m asr.data import` takes a corpus in: utterances per second, durations given or probed.

    python bench/import_speed.py [--files 10000] [--seconds 0.25] [--repeats 3] [--data ../shared/data/fsdd]

Writes a corpus to a temporary folder: --files WAV files of --seconds each (16 kHz, 16-bit, a quiet tone), listed
twice, as a NeMo manifest with every duration given and as a Hugging Face audiofolder metadata.csv without
durations. Then imports them as the command line does (asr.corpora's prepare_* with an ImportSettings, each row
checked; no manifest written), best of --repeats, and prints per case the utterances per second:

    durations given, trusted (--trust-durations: each file only stat'ed)
    durations given, each file's header read to check them (the default), --workers as ImportSettings' / 1
    durations not given, each file's header read for them (probing), --workers as ImportSettings' / 1

(Headers go to the --workers threads only once a batch of reads is slow, as from a network disk:
asr.corpora.rows.probe.)

--data DIR adds a real audiofolder (metadata.csv or metadata.jsonl beside the audio; e.g. FSDD's 2000 clips). The
files were just written or read, so they come from the page cache: a corpus on a cold disk reads slower. The last
line is `import_utterances_per_second=<rate>` of the default import of a manifest whose durations are given (issue
22's goal: >= 1000).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.cli import positive_float, positive_int
from asr.corpora import CorpusError, ImportSettings, prepare_audiofolder, prepare_nemo

from _manifests import require_manifests, run_main  # bench/_manifests.py

RATE = 16000  # Hz, the generated files'
TONE_HZ = 440.0


def write_corpus(root: Path, files: int, seconds: float) -> tuple[Path, Path]:
    """(NeMo manifest with durations, audiofolder without) over the same `files` WAV files under root/wavs."""
    (root / "wavs").mkdir(parents=True)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = (0.1 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    names = [f"wavs/u{i:06d}.wav" for i in range(files)]
    for name in names:
        sf.write(root / name, tone, RATE, subtype="PCM_16")
    nemo = root / "train_manifest.json"
    nemo.write_text("".join(json.dumps({"audio_filepath": name, "duration": seconds, "text": "a tone"}) + "\n"
                            for name in names))
    with open(root / "metadata.csv", "w", newline="") as f:
        table = csv.writer(f)
        table.writerow(["file_name", "transcription"])
        table.writerows([name, "a tone"] for name in names)
    return nemo, root


def rate(prepare, src: Path, settings: ImportSettings, repeats: int) -> tuple[float, int]:
    """(best utterances per second over `repeats` imports, utterances)."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        began = time.perf_counter()
        sets = prepare(src, None, settings)
        best = min(best, time.perf_counter() - began)
        count = sum(map(len, sets.values()))
    return count / best, count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=positive_int, default=10000, help="generated WAV files (and utterances)")
    p.add_argument("--seconds", type=positive_float, default=0.25, help="length of each generated file")
    p.add_argument("--repeats", type=positive_int, default=3, help="imports per case; the fastest counts")
    p.add_argument("--data", default="", help="also a real audiofolder (metadata.csv or .jsonl beside the audio)")
    args = p.parse_args()
    require_manifests(args.data, how="give --data, an audiofolder (metadata.csv or metadata.jsonl beside the audio)")
    threads = ImportSettings().workers
    headline = f"NeMo, durations given, headers read to check them (the default, --workers {threads})"
    cases = []  # (what, prepare, src, settings)
    with tempfile.TemporaryDirectory(prefix="import_speed_") as tmp:
        nemo, folder = write_corpus(Path(tmp), args.files, args.seconds)
        cases += [
            ("NeMo, durations given, trusted (--trust-durations)", prepare_nemo, nemo,
             ImportSettings(trust_durations=True)),
            (headline, prepare_nemo, nemo, ImportSettings()),
            ("NeMo, durations given, headers read to check them, --workers 1", prepare_nemo, nemo,
             ImportSettings(workers=1)),
            (f"audiofolder, no durations: headers probed (the default, --workers {threads})", prepare_audiofolder,
             folder, ImportSettings()),
            ("audiofolder, no durations: headers probed, --workers 1", prepare_audiofolder, folder,
             ImportSettings(workers=1)),
        ]
        if args.data:
            cases += [(f"{args.data} (audiofolder; the default, --workers {threads})", prepare_audiofolder,
                       Path(args.data), ImportSettings()),
                      (f"{args.data} (audiofolder), --workers 1", prepare_audiofolder, Path(args.data),
                       ImportSettings(workers=1))]
        print(f"{args.files} generated files of {args.seconds:g} s; best of {args.repeats}")
        print("| corpus | utterances | utterances/s |\n|---|---:|---:|")
        rates = {}
        for what, prepare, src, settings in cases:
            try:
                per_second, count = rate(prepare, src, settings, args.repeats)
            except CorpusError as e:  # --data that is not an audiofolder, or holds a bad row
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            rates[what] = per_second
            print(f"| {what} | {count} | {per_second:.0f} |", flush=True)
    print(f"import_utterances_per_second={rates[headline]:.0f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
