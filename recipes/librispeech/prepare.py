"""Write manifests/librispeech/<split>.jsonl from LibriSpeech in its original layout, reading chapters in parallel.

    python recipes/librispeech/prepare.py --data-dir data/librispeech/LibriSpeech --splits dev-clean test-clean
    python recipes/librispeech/prepare.py ... --combine train-960 train-clean-100 train-clean-360 train-other-500 \\
        --bpe-size 256           # also learn a SentencePiece BPE model on train-960's transcripts

Layout: <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac and one <speaker>-<chapter>.trans.txt per
chapter ("<utterance-id> TRANSCRIPT" lines), read by asr.corpora.librispeech (as `python -m asr.data import`
does). Transcripts are kept as they are (upper case); asr.text normalises them when training and scoring.
Durations come from the FLAC headers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from asr.audio import AudioError
from asr.cli import OutputError, non_negative_int, positive_int, write_whole
from asr.corpora.librispeech import read_chapter, read_split  # noqa: F401 (the reading is asr.corpora's)
from asr.corpora.rows import CorpusError
from asr.data import ManifestError, Utterance, lossy_text_note, read_manifest, write_manifest

SPLITS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean", "test-other")
PrepareError = CorpusError  # the corpus is not in the expected layout; the message names the file (and line)


def speaker(utt: Utterance) -> str:
    return utt.id.split("-")[0]  # 1272-128104-0000 -> 1272


def summary(utts: list[Utterance]) -> dict:
    """Utterances, hours and speakers of a manifest."""
    hours = round(sum(u.duration for u in utts) / 3600, 3)
    return {"utterances": len(utts), "hours": hours, "speakers": len({speaker(u) for u in utts})}


def write_summary(path: Path, rows: dict[str, dict]) -> str | None:
    """Merge {manifest name: summary} into the JSON file at path, written whole (OutputError where it cannot be);
    one that is not a JSON object (damaged) is written anew: returns the note that says so, else None."""
    old, note = {}, None
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # (UnicodeDecodeError is a ValueError)
            old = None
        if not isinstance(old, dict):
            old, note = {}, f"note: {path}: not a JSON object (damaged?); written anew with these manifests' rows"
    write_whole({path: json.dumps({**old, **rows}, indent=2, sort_keys=True) + "\n"})
    return note


def learn_bpe(manifest: Path, vocab_size: int, out: Path) -> Path:
    """A SentencePiece BPE model of the manifest's transcripts, written to `out`."""
    from asr.text import train_bpe

    texts = [u.text for u in read_manifest(manifest)]
    out.write_bytes(train_bpe(texts, vocab_size, threads=os.cpu_count() or 1))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--data-dir", default="data/librispeech/LibriSpeech", help="folder holding the split folders")
    p.add_argument("--splits", nargs="*", default=["dev-clean", "dev-other", "test-clean", "test-other",
                                                    "train-clean-100"], choices=SPLITS, metavar="SPLIT")
    p.add_argument("--out", default="manifests/librispeech", help="folder for <split>.jsonl")
    p.add_argument("--combine", nargs="+", action="append", default=[], metavar=("NAME", "SPLIT"),
                   help="also write NAME.jsonl: the listed splits' manifests one after the other (repeatable)")
    p.add_argument("--bpe-size", type=non_negative_int, default=0,
                   help="learn a SentencePiece BPE model of this many pieces from the first --combine manifest's "
                        "transcripts -> NAME.bpeN.model")
    p.add_argument("--workers", type=positive_int, default=min(8, os.cpu_count() or 1),
                   help="processes reading chapters")
    args = p.parse_args(argv)
    if any(len(c) < 2 for c in args.combine):
        p.error("--combine needs a NAME and at least one SPLIT")
    if args.bpe_size and not args.combine:
        p.error("--bpe-size needs --combine NAME SPLIT...: the transcripts to learn it from")
    out = Path(args.out)
    rows = {}
    try:
        for split in args.splits:
            utts = read_split(Path(args.data_dir) / split, args.workers)
            write_manifest(out / f"{split}.jsonl", utts)
            rows[split] = summary(utts)
            note = lossy_text_note(utts, str(out / f"{split}.jsonl"))
            if note:
                print(note, file=sys.stderr)
        for name, *parts in args.combine:
            if parts != [name]:  # NAME SPLIT with NAME == SPLIT: that manifest exists already
                utts = [u for part in parts for u in read_manifest(out / f"{part}.jsonl")]
                write_manifest(out / f"{name}.jsonl", utts)
                rows[name] = summary(utts)
        if args.bpe_size:
            name = args.combine[0][0]
            model = learn_bpe(out / f"{name}.jsonl", args.bpe_size, out / f"{name}.bpe{args.bpe_size}.model")
            print(f"BPE model: {model}")
    except (PrepareError, AudioError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, row in rows.items():
        print(f"{name}: {row['utterances']} utterances, {row['hours']:.2f} h, {row['speakers']} speakers")
    try:
        note = write_summary(out / "summary.json", rows)
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if note:
        print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
