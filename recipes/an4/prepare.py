"""Read CMU AN4 in its original layout and write manifests/an4/{train,dev,test}.jsonl.

    python recipes/an4/prepare.py --data data/an4 --out manifests/an4

dev = every utterance of a few whole training speakers, held out from training.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from asr.audio import AudioError, audio_duration
from asr.cli import OutputError, prepare_output_dir
from asr.data import Utterance, lossy_text_note, write_manifest

AUDIO_SUFFIXES = (".sph", ".wav", ".flac")
LINE = re.compile(r"^(?:<s>\s*)?(?P<text>.*?)(?:\s*</s>)?\s*\((?P<id>[^()\s]+)\)\s*$")


class PrepareError(Exception):
    pass


def no_an4(data: Path) -> str:
    """What to say where `data` does not hold AN4: where it comes from and how to get it."""
    return (f"no AN4 at {data} (its etc/ and wav/ folders): AN4 is CMU's census database, free from "
            f"http://www.speech.cs.cmu.edu/databases/an4/ (an4_sphere.tar.gz, 64 MB); get it with "
            f"python recipes/an4/download.py --out {data} (stage 0 of recipes/an4/run.sh runs it)")


def parse_transcription(path: Path) -> dict[str, str]:
    """`<s> TEXT </s> (id)` or `TEXT (id)` lines -> {id: TEXT}."""
    texts = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = LINE.match(line.strip())
        if not m:
            raise PrepareError(f"{path}:{lineno}: expected 'TEXT (utterance-id)', got {line.strip()!r}")
        texts[m["id"]] = m["text"].strip()
    return texts


def find_audio(wav_dir: Path, stem: str) -> Path:
    for suffix in AUDIO_SUFFIXES:
        candidate = wav_dir / (stem + suffix)
        if candidate.exists():
            return candidate
    raise PrepareError(f"{wav_dir / stem}: no audio file with suffix {', '.join(AUDIO_SUFFIXES)}")


def read_split(data: Path, split: str) -> list[Utterance]:
    """Utterances of AN4's 'train' or 'test' split, in the fileids order."""
    texts = parse_transcription(data / "etc" / f"an4_{split}.transcription")
    utts = []
    for stem in (data / "etc" / f"an4_{split}.fileids").read_text().split():
        utt_id = Path(stem).name
        if utt_id not in texts:
            raise PrepareError(f"{data / 'etc'}: {utt_id} is in an4_{split}.fileids but not in the transcription")
        audio = find_audio(data / "wav", stem).resolve()
        utts.append(Utterance(utt_id, str(audio), audio_duration(audio), texts[utt_id]))
    return utts


def speaker(utt: Utterance) -> str:
    return utt.id.split("-")[1]  # an251-fash-b -> fash


def split_dev(train: list[Utterance], every: int) -> tuple[list[Utterance], list[Utterance]]:
    """Hold out every `every`-th training speaker (sorted by name) as dev."""
    speakers = sorted({speaker(u) for u in train})
    dev_speakers = set(speakers[every // 2 :: every])
    return [u for u in train if speaker(u) not in dev_speakers], [u for u in train if speaker(u) in dev_speakers]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--data", default="data/an4", help="AN4 root (holds etc/ and wav/; recipes/an4/download.py)")
    p.add_argument("--out", default="manifests/an4", help="folder for the manifests")
    p.add_argument("--dev-every", type=int, default=12, help="hold out every N-th training speaker as dev")
    args = p.parse_args(argv)
    if args.dev_every < 2:  # 1 would hold out every speaker
        p.error(f"argument --dev-every: expected a whole number >= 2, got {args.dev_every}")
    data = Path(args.data)
    if not (data / "etc").is_dir():
        print(f"error: {no_an4(data)}", file=sys.stderr)
        return 2
    try:
        train = read_split(data, "train")
        test = read_split(data, "test")
    except (PrepareError, AudioError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    train, dev = split_dev(train, args.dev_every)
    try:
        prepare_output_dir(args.out, "--out")
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, utts in (("train", train), ("dev", dev), ("test", test)):
        write_manifest(Path(args.out) / f"{name}.jsonl", utts)
        hours = sum(u.duration for u in utts) / 3600
        print(f"{name}: {len(utts)} utterances, {hours:.2f} h, {len({speaker(u) for u in utts})} speakers")
        note = lossy_text_note(utts, f"{args.out}/{name}.jsonl")
        if note:
            print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
