"""Split the noise recordings and room impulse responses into a training part and a held-out test part.

    python recipes/an4/split_noise.py --noise ../shared/data/noise --out manifests/an4/noise

Reads NOISE/noise.jsonl and NOISE/rir.jsonl (rows with "audio" relative to NOISE, "category", ...) and writes
OUT/{noise_train,noise_test,rir_train,rir_test}.jsonl: the same rows, "audio" made absolute. The split is
by recording (the constant lists below), so that `bench/robustness.py` measures noise and rooms that
training never heard.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.data import ManifestError, read_jsonl

# Held out by whole recording, not by stretches of recordings: a stretch of a recording that training mixed
# in elsewhere is not unseen noise, and the bench is meant to measure sounds training never heard. One
# recording per kind of sound real recordings meet (babble, kitchen, machinery, music, rain); cafe babble,
# kitchen, machinery and rain are the only recordings of their category, so training never hears those
# kinds at all (music keeps two other songs), which makes the test the harder for it.
NOISE_TEST = (
    "blanket/coffee-shop.flac",  # cafe babble
    "pyroomacoustics/doing_the_dishes.flac",  # kitchen
    "gui_project/construction.flac",  # machinery
    "librosa_data/Kevin_MacLeod_-_Vibe_Ace.flac",  # music
    "blanket/rain.flac",  # rain
)
# Rooms of different sizes and sources: a short measured RIR, a studio room, a synthetic chamber, a clap.
RIR_TEST = (
    "speechbrain/rir2.flac",
    "toobamp/Genesis 6 Studio Live Room.flac",
    "quantumverb/medium_chamber.flac",
    "spatialaudio_exercises/rir_clap.flac",
)


class SplitError(Exception):
    pass


def split_rows(manifest: Path, held_out: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """(train rows, test rows) of a noise manifest, "audio" absolute; a held-out name it lacks raises SplitError."""
    rows = read_jsonl(manifest, required=("audio",))  # "audio" resolved against the manifest's folder
    test_paths = {str((manifest.parent / name).resolve()): name for name in held_out}
    found = {row["audio"] for row in rows}
    missing = [name for path, name in test_paths.items() if path not in found]
    if missing:
        raise SplitError(f"{manifest}: held-out recording(s) not in it: {', '.join(missing)}")
    train = [row for row in rows if row["audio"] not in test_paths]
    test = [row for row in rows if row["audio"] in test_paths]
    return train, test


def write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def split_noise(noise_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write the four manifests; returns {name: rows}. Everything is checked before anything is written."""
    parts = {}
    for kind, held_out in (("noise", NOISE_TEST), ("rir", RIR_TEST)):
        parts[f"{kind}_train"], parts[f"{kind}_test"] = split_rows(noise_dir / f"{kind}.jsonl", held_out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in parts.items():
        write_rows(out_dir / f"{name}.jsonl", rows)
    return {name: len(rows) for name, rows in parts.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--noise", required=True, help="folder with noise.jsonl and rir.jsonl")
    p.add_argument("--out", required=True, help="folder for {noise,rir}_{train,test}.jsonl")
    args = p.parse_args(argv)
    try:
        counts = split_noise(Path(args.noise), Path(args.out))
    except (ManifestError, SplitError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
