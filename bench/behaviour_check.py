"""Behaviour snapshot: the shipped model's transcripts of a manifest (greedy and default decoding) and the
losses and final weights of a seeded short training run, through the command-line doors only, so that the
same script measures the code before and after a refactoring.

    python bench/behaviour_check.py snapshot before.json       # on the old code
    python bench/behaviour_check.py snapshot after.json        # on the new code
    python bench/behaviour_check.py compare before.json after.json

Last line of `compare`: `identical=<true|false>`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from asr.manifest import read_jsonl

from _manifests import require_manifests, run_main  # bench/_manifests.py

ROOT = Path(__file__).resolve().parent.parent
DECODINGS = {"greedy": ["--decoder", "greedy"], "default": []}  # default: what the model's metadata recommends


def transcripts(manifest: Path) -> dict[str, dict]:
    """{decoding: {audio path: {"text", "words": [[word, start, end], ...]}}} over the manifest's audio."""
    audio = [row["audio"] for row in read_jsonl(manifest)]  # made absolute: the child runs in the repository
    out = {}
    for name, flags in DECODINGS.items():
        run = subprocess.run([sys.executable, "-m", "asr.transcribe", "--format", "jsonl", "--quiet", *flags, *audio],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in run.stdout.splitlines()]
        out[name] = {r["audio"]: {"text": r["text"],
                                  "words": [[w["word"], w["start"], w["end"]] for s in r["segments"] for w in s["words"]]}
                     for r in rows}
    return out


def training_run(manifest: Path, utterances: int) -> dict:
    """Train a small model for 2 epochs on the first utterances (seed 0, default augmentation, one process):
    the per-epoch losses and a checksum of the final weights."""
    lines = [json.dumps(row) for row in read_jsonl(manifest)[:utterances]]  # audio paths absolute, as in a copy
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "subset.jsonl"
        subset.write_text("\n".join(lines) + "\n")
        subprocess.run([sys.executable, "-m", "asr.train", "--train", subset, "--dev", subset, "--out", Path(tmp) / "exp",
                        "--epochs", "2", "--batch-seconds", "20", "--hidden", "48", "--layers", "2",
                        "--warmup-steps", "3", "--num-workers", "0", "--seed", "0"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in (Path(tmp) / "exp" / "metrics.jsonl").read_text().splitlines()]
        weights = torch.load(Path(tmp) / "exp" / "last.pt", weights_only=True)["model"]
    return {"train_loss": [r["train_loss"] for r in rows], "dev_wer": [r["dev_wer"] for r in rows],
            "weight_abs_sum": sum(float(v.double().abs().sum()) for v in weights.values() if v.is_floating_point())}


def compare(a: dict, b: dict) -> bool:
    same = True
    for name in DECODINGS:
        ta, tb = a["transcripts"][name], b["transcripts"][name]
        texts = sum(ta[k]["text"] == tb.get(k, {}).get("text") for k in ta)
        times = sum(ta[k]["words"] == tb.get(k, {}).get("words") for k in ta)
        print(f"{name}: {texts}/{len(ta)} transcripts identical, {times}/{len(ta)} word timings identical")
        for k in [k for k in ta if ta[k]["text"] != tb.get(k, {}).get("text")][:5]:
            print(f"  {Path(k).name}: {ta[k]['text']!r} -> {tb.get(k, {}).get('text')!r}")
        same &= texts == len(ta) == len(tb)
    ra, rb = a["training"], b["training"]
    print(f"training losses: {ra['train_loss']} vs {rb['train_loss']}")
    print(f"final weights |w| sum: {ra['weight_abs_sum']!r} vs {rb['weight_abs_sum']!r}")
    same &= ra == rb
    return same


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.strip().split("\n\n")[0].split()))
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("out", type=Path)
    s.add_argument("--manifest", type=Path, default=ROOT / "manifests/an4/test.jsonl")
    s.add_argument("--train", type=Path, default=ROOT / "manifests/an4/train.jsonl")
    s.add_argument("--train-utterances", type=int, default=48)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    a = p.parse_args(argv)
    if a.command == "snapshot":
        require_manifests(a.manifest, a.train)
        snap = {"transcripts": transcripts(a.manifest), "training": training_run(a.train, a.train_utterances)}
        a.out.write_text(json.dumps(snap, indent=1) + "\n")
        print(f"wrote {a.out}")
        return 0
    same = compare(json.loads(a.before.read_text()), json.loads(a.after.read_text()))
    print(f"identical={'true' if same else 'false'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
