"""Altered copies of a manifest's clips, for the FSDD variants recorded in bench/results/fsdd_finetune_v7_init.md:
score a copy with `python -m asr.evaluate --manifest OUT/manifest.jsonl`, or add it to a fold's training mix.

    python bench/fsdd_copies.py pad MANIFEST OUT [--seconds 0.25] [--noise-db -60]   # silence around, faint noise
    python bench/fsdd_copies.py speed MANIFEST OUT --factor F                        # played F times as fast
    python bench/fsdd_copies.py words MANIFEST OUT --words zero,one,... [--rate 8000] [--model asr/assets/an4.pt]
    python bench/fsdd_copies.py onsets MANIFEST - [--words two,three]       # no copies: how tight the clips are cut

pad: each clip with --seconds of silence before and after, and Gaussian noise at --noise-db dBFS (RMS) over all of
it (one generator, seed 0, in the manifest's order). speed: each clip resampled to its rate / F and written at its
rate (pitch and tempo together). words: the model transcribes every clip (`python -m asr.transcribe --format jsonl`,
its default decoding, word times snapped to the speech); in the clips it transcribes exactly, each of --words is cut
out, up to 60 ms either side but never past half-way to the next word, as 16-bit FLAC (with --rate, resampled from
that to a 16-bit WAV). Writes OUT/<id>.wav (float; words: .flac or .wav) and OUT/manifest.jsonl; the last line is
`copies=<N>`. onsets writes nothing: per speaker and word (of --words, or all), the mean time from a clip's start to
its first 10 ms frame within 25 dB of its loudest; the last line is `median_onset_ms=<ms>` over the clips.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from asr.checkpoint import DEFAULT_MODEL
from asr.cli import finite_float, non_negative_float, non_negative_int, positive_float
from asr.manifest import ManifestError, Utterance, read_manifest, write_manifest

from _manifests import require_manifests, run_main  # bench/_manifests.py

MARGIN_S = 0.06  # s kept either side of a cut word, where the next word is further than twice this


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read(utt: Utterance) -> tuple[np.ndarray, int]:
    """(mono float32 samples, rate) of a manifest's clip; one line and exit 2 where it cannot be read."""
    try:
        x, rate = sf.read(utt.audio, dtype="float32")
    except (sf.LibsndfileError, OSError, RuntimeError) as e:
        fail(f"{utt.audio}: cannot read it ({e})")
    return (x.mean(axis=1) if x.ndim > 1 else x).astype(np.float32), rate


def write(out: Path, uid: str, x: np.ndarray, rate: int, text: str) -> Utterance:
    path = out / f"{uid.replace('/', '_')}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    return Utterance(uid, str(path.absolute()), len(x) / rate, text)


def padded(utts: list[Utterance], out: Path, seconds: float, noise_db: float) -> list[Utterance]:
    rng = np.random.default_rng(0)
    copies = []
    for u in utts:
        x, rate = read(u)
        silence = np.zeros(int(seconds * rate), np.float32)
        y = np.concatenate([silence, x, silence])
        y = y + (10.0 ** (noise_db / 20.0) * rng.standard_normal(len(y))).astype(np.float32)
        copies.append(write(out, u.id, y, rate, u.text))
    return copies


def sped_up(utts: list[Utterance], out: Path, factor: float) -> list[Utterance]:
    copies = []
    for u in utts:
        x, rate = read(u)
        copies.append(write(out, u.id, librosa.resample(x, orig_sr=rate, target_sr=int(round(rate / factor))), rate,
                            u.text))
    return copies


def word_times(model: str, files: list[str]) -> dict[str, list[dict]]:
    """audio path -> its words ({"word", "start", "end"}) as `python -m asr.transcribe --format jsonl` gives them."""
    run = subprocess.run([sys.executable, "-m", "asr.transcribe", "--model", model, "--format", "jsonl", "--quiet",
                          *files], capture_output=True, text=True)
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    if run.returncode and not rows:
        fail(run.stderr.strip().removeprefix("error: ") or f"asr.transcribe ended with status {run.returncode}")
    errors = [r["error"] for r in rows if "error" in r]
    if errors:  # a clip it could not read: its words would be missing without a word
        fail(errors[0] + (f" ({len(errors) - 1} more)" if len(errors) > 1 else ""))
    return {r["audio"]: [w for s in r["segments"] for w in s["words"]] for r in rows if "segments" in r}


def cut_words(utts: list[Utterance], out: Path, words: set[str], model: str, rate: int | None) -> list[Utterance]:
    timed = word_times(model, [u.audio for u in utts])
    copies = []
    for u in utts:
        found = timed.get(u.audio, [])
        if [w["word"] for w in found] != u.text.lower().split():
            continue  # only clips transcribed exactly: their word times are the words'
        x, sr = read(u)
        for i, w in enumerate(found):
            if w["word"] not in words:
                continue
            before = found[i - 1]["end"] if i else 0.0
            after = found[i + 1]["start"] if i + 1 < len(found) else len(x) / sr
            a = max(before + (w["start"] - before) / 2, w["start"] - MARGIN_S)
            b = min(after - (after - w["end"]) / 2, w["end"] + MARGIN_S)
            uid = f"{u.id}-w{i}-{w['word']}"
            cut = out / f"{uid.replace('/', '_')}.flac"  # 16-bit, as the clips the recorded runs trained on
            sf.write(cut, x[int(a * sr):int(b * sr)], sr)
            if rate and rate != sr:
                y = librosa.resample(sf.read(cut, dtype="float32")[0], orig_sr=sr, target_sr=rate)
                cut.unlink()
                cut = out / f"{uid.replace('/', '_')}.wav"
                sf.write(cut, y, rate)
            copies.append(Utterance(uid, str(cut.absolute()), sf.info(cut).duration, w["word"].upper()))
    return copies


ONSET_DB = 25.0  # dB under a clip's loudest 10 ms frame: the first frame above it is where its speech starts


def onset_ms(x: np.ndarray, rate: int) -> float:
    """ms from the clip's start to its first 10 ms frame within ONSET_DB of its loudest."""
    hop = rate // 100
    frames = x[:len(x) // hop * hop].reshape(-1, hop)  # (F, 10 ms)
    level = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    return float(np.argmax(level > level.max() - ONSET_DB) * 10) if len(level) else 0.0


def onsets(utts: list[Utterance], words: set[str]) -> None:
    """Prints | speaker | word | clips | mean onset ms |, then median_onset_ms=."""
    found: dict[tuple[str, str], list[float]] = {}
    for u in utts:
        if not words or u.text.lower() in words:
            found.setdefault((u.speaker, u.text.lower()), []).append(onset_ms(*read(u)))
    print("| speaker | word | clips | mean onset ms |\n|---|---|---:|---:|")
    for (speaker, word), ms in sorted(found.items()):
        print(f"| {speaker or '?'} | {word} | {len(ms)} | {np.mean(ms):.0f} |")
    print(f"median_onset_ms={np.median([m for ms in found.values() for m in ms]) if found else 0:.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("pad", "speed", "words", "onsets"))
    p.add_argument("manifest", help="the clips (JSONL manifest, e.g. a fold's EXP/<speaker>/sets/test.jsonl)")
    p.add_argument("out", help="folder for the copies and OUT/manifest.jsonl (onsets: -, unused)")
    p.add_argument("--seconds", type=non_negative_float, default=0.25, help="pad: silence before and after, s")
    p.add_argument("--noise-db", type=finite_float, default=-60.0, help="pad: the noise's RMS level, dBFS")
    p.add_argument("--factor", type=positive_float, default=1.0, help="speed: played this many times as fast")
    p.add_argument("--words", default="", help="words: the words to cut out; onsets: the words to time (default all)")
    p.add_argument("--rate", type=non_negative_int, default=0,
                   help="words: write the cut words at this rate (0: the clip's)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="words: the model whose word times cut them")
    args = p.parse_args()
    require_manifests(args.manifest, how="make one with python -m asr.data import, or give a fold's "
                      "EXP/<speaker>/sets/test.jsonl")
    if args.mode == "words" and not args.words.strip():
        p.error("words: give --words, e.g. zero,one,two")
    try:
        utts = read_manifest(args.manifest)
    except ManifestError as e:
        fail(str(e))
    words = {w.strip().lower() for w in args.words.split(",") if w.strip()}
    if args.mode == "onsets":
        onsets(utts, words)
        return
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"{out}: cannot make the folder ({e.strerror or e})")
    if args.mode == "pad":
        copies = padded(utts, out, args.seconds, args.noise_db)
    elif args.mode == "speed":
        copies = sped_up(utts, out, args.factor)
    else:
        copies = cut_words(utts, out, words, args.model, args.rate or None)
    write_manifest(out / "manifest.jsonl", copies)
    print(f"copies={len(copies)}")


if __name__ == "__main__":
    sys.exit(run_main(main))
