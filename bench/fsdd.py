"""Real speech recorded elsewhere: the Free Spoken Digit Dataset (8 kHz WAV, one digit word a clip, other speakers
and microphones than AN4's) transcribed by a model that never trained on it: a test of generalisation.

    python bench/fsdd.py [--data ../shared/data/fsdd] [--model asr/assets/an4.pt] [--decoders greedy,default]
                         [--trim-db DB]

Reads the Hugging Face audiofolder layout (metadata.csv: file_name, transcription, speaker), transcribes every
clip with one `python -m asr.transcribe --format jsonl` child per decoder (greedy, and the model's recommended
default: beam search + its LM), and scores WER per speaker with asr.metrics. Prints a table (speaker | clips |
WER per decoder), the mean and the worst speaker; last, `fsdd_wer_default=<%>` (over all clips).
--trim-db DB cuts every clip first at its first and last 10 ms frame within DB dB of its loudest (asr.augment.Trim,
no lead: as tight as FSDD's tightest clips), written to a temporary folder as 16 kHz WAV: what a cut onset costs.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.augment import Trim
from asr.checkpoint import DEFAULT_MODEL
from asr.cli import positive_float
from asr.metrics import wer
from asr.text import normalize_text

from _manifests import require_manifests, run_main  # bench/_manifests.py


def read_audiofolder(root: Path) -> list[dict]:
    """metadata.csv's rows: {"audio": absolute path, "text", "speaker"}."""
    with open(root / "metadata.csv", newline="", encoding="utf-8") as f:
        return [{"audio": str(root / row["file_name"]), "text": row["transcription"], "speaker": row["speaker"]}
                for row in csv.DictReader(f)]


def transcribe(model: str, decoder: str, files: list[str], threads: int) -> tuple[dict[str, str], list[str]]:
    """(audio path -> transcript, the one-line errors of files it could not read), from one asr.transcribe child
    (which goes on past a bad file and ends with status 1). Exits 2 with its stderr when it gave no rows at all."""
    flags = [] if decoder == "default" else ["--decoder", decoder]
    run = subprocess.run([sys.executable, "-m", "asr.transcribe", "--model", model, "--threads", str(threads),
                          "--format", "jsonl", "--quiet", *flags, *files], capture_output=True, text=True)
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    if run.returncode and not rows:
        print(run.stderr.strip() or f"error: asr.transcribe ended with status {run.returncode}", file=sys.stderr)
        sys.exit(2)
    return {r["audio"]: r["text"] for r in rows if "text" in r}, [r["error"] for r in rows if "error" in r]


def trimmed_copies(rows: list[dict], db: float, folder: Path) -> dict[str, str]:
    """original path -> a copy cut at its first and last 10 ms frame within db of its loudest (16 kHz WAV). A clip
    that cannot be read keeps its own path: asr.transcribe then names it in its error, as without --trim-db."""
    trim = Trim(db=(db, db), lead_ms=(0.0, 0.0), p=1.0)
    copies = {}
    for i, row in enumerate(rows):
        try:
            wave = load_audio(row["audio"])
        except AudioError:
            continue
        copies[row["audio"]] = str(folder / f"{i}.wav")
        sf.write(copies[row["audio"]], trim(wave), SAMPLE_RATE, subtype="PCM_16")
    return copies


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--data", default="../shared/data/fsdd", help="FSDD in the audiofolder layout")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--decoders", default="greedy,default")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--trim-db", type=positive_float,
                   help="cut each clip to its frames within this many dB of its loudest first")
    args = p.parse_args()
    require_manifests(Path(args.data) / "metadata.csv", how="it comes with the shared data; give --data, the FSDD "
                      "audiofolder (metadata.csv: file_name, transcription, speaker)")
    root = Path(args.data).resolve()
    rows = read_audiofolder(root)
    decoders = args.decoders.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        heard = trimmed_copies(rows, args.trim_db, Path(tmp)) if args.trim_db is not None else {}
        files = [heard.get(r["audio"], r["audio"]) for r in rows]
        results, errors = {}, []
        for d in decoders:
            texts, errors = transcribe(args.model, d, files, args.threads)  # by the file heard
            results[d] = {r["audio"]: texts[f] for r, f in zip(rows, files) if f in texts}
    unread = {r["audio"] for r in rows} - set(results[decoders[0]])
    rows = [r for r in rows if r["audio"] not in unread]  # scored on the clips that could be read
    first = f"error: {errors[0] if errors else min(unread, default='') + ': not read'}"  # said where one is unread
    if not rows:
        print(f"{first}; no clip of {root / 'metadata.csv'} could be read", file=sys.stderr)
        return 2
    speakers = sorted({r["speaker"] for r in rows})
    trimmed = f"; every clip trimmed at {args.trim_db:g} dB under its loudest frame" if args.trim_db is not None else ""
    print(f"model: {args.model}; {len(rows)} clips, {len(speakers)} speakers{trimmed}\n")
    print("| speaker | clips | " + " | ".join(f"{d} WER %" for d in decoders) + " |")
    print("|---|---:|" + "---:|" * len(decoders))
    scores = {d: {} for d in decoders}
    for speaker in speakers + ["all"]:
        mine = [r for r in rows if speaker in ("all", r["speaker"])]
        refs = [normalize_text(r["text"]) for r in mine]
        for d in decoders:
            scores[d][speaker] = wer(refs, [results[d].get(r["audio"], "") for r in mine])
        print(f"| {speaker} | {len(mine)} | " + " | ".join(f"{scores[d][speaker]:.2f}" for d in decoders) + " |")
    for d in decoders:
        per = [scores[d][s] for s in speakers]
        print(f"{d}: mean over speakers {sum(per) / len(per):.2f}%, worst {max(per):.2f}%")
    last = "default" if "default" in decoders else decoders[-1]
    print(f"fsdd_wer_{last}={scores[last]['all']:.2f}")
    if unread:
        more = f" ({len(unread) - 1} more)" if len(unread) > 1 else ""
        print(f"{first}{more}; the table leaves {'them' if more else 'it'} out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
