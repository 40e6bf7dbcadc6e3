"""Fine-tuning on recordings from elsewhere: the Free Spoken Digit Dataset, each speaker held out in turn, the
shipped model fine-tuned on the others by recipes/finetune/run.sh and scored on the held-out one.

    python bench/finetune.py [--data ../shared/data/fsdd] [--speakers george,jackson] [--exp exp/bench_finetune]
                             [--an4 manifests/an4] [--tabulate] [-- more run.sh flags, e.g. --epochs 8]

Each fold is one run of the recipe (EXP/<speaker>/): import, split (the speaker as test, 10% of the others'
utterances as dev), fine-tune, LM, tuning, int8 export, evaluation before and after. Prints a table (speaker |
before greedy / default WER | after greedy / default WER | fine-tune wall minutes | AN4 test before -> after),
each fold's most frequent errors after fine-tuning (default decoding: reference -> hypothesis, how many clips), the
mean and the worst speaker, and last `fsdd_finetune_wer_default=<mean %>`. --tabulate prints that for the folds
already under --exp, running nothing. Wall minutes are the machine's as it is: on a shared or loaded one they say
little about the recipe.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from _manifests import require_manifests, run_main  # bench/_manifests.py

from asr.evaluate import frequent_errors

ROOT = Path(__file__).resolve().parents[1]


def wer(fold: Path, name: str) -> float | None:
    path = fold / "eval" / name / "summary.json"
    return json.loads(path.read_text())["wer"] if path.is_file() else None


def run_fold(args: argparse.Namespace, speaker: str, extra: list[str]) -> Path:
    fold = Path(args.exp) / speaker
    cmd = ["bash", str(ROOT / "recipes" / "finetune" / "run.sh"), "--data", args.data, "--exp", str(fold),
           "--test-speakers", speaker, "--dev-fraction", "0.1", "--an4", args.an4, *extra]
    subprocess.run(cmd, check=True)
    return fold


def row(fold: Path, speaker: str) -> dict:
    cells = {f"{who}_{d}": wer(fold, f"test-{who}-{d}") for who in ("before", "after") for d in ("greedy", "default")}
    seconds = (fold / "train" / "stage_seconds").read_text().strip()
    an4 = (wer(fold, "an4-test-before-default"), wer(fold, "an4-test-after-default"))
    return {"speaker": speaker, **cells, "minutes": int(seconds) / 60, "an4": an4}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--data", default="../shared/data/fsdd", help="FSDD in the audiofolder layout")
    p.add_argument("--speakers", default="", help="the speakers held out, one fold each (default: every one)")
    p.add_argument("--exp", default="exp/bench_finetune", help="a folder per fold")
    an4 = ROOT / "manifests" / "an4"
    p.add_argument("--an4", default=str(an4) if (an4 / "train.jsonl").is_file() else "none",
                   help="AN4 manifests to mix in and to score forgetting on (none: none)")
    p.add_argument("--tabulate", action="store_true", help="run nothing: the table of the folds already in --exp")
    args, extra = p.parse_known_args()
    extra = [a for a in extra if a != "--"]
    require_manifests(Path(args.data) / "metadata.csv", how="it comes with the shared data; give --data, the FSDD "
                      "audiofolder (metadata.csv: file_name, transcription, speaker)")
    with open(Path(args.data) / "metadata.csv", newline="", encoding="utf-8") as f:
        speakers = sorted({r["speaker"] for r in csv.DictReader(f)})
    chosen = args.speakers.split(",") if args.speakers else speakers
    if args.tabulate:  # a fold is finished when the recipe's last stage is (its marker)
        missing = [s for s in chosen if not (Path(args.exp) / s / ".done.7.evaluate").is_file()]
        if missing:
            print(f"error: {args.exp}: no finished fold (stage 7 done) for {', '.join(missing)} (run without "
                  "--tabulate)", file=sys.stderr)
            return 2
    folds = {s: Path(args.exp) / s if args.tabulate else run_fold(args, s, extra) for s in chosen}
    rows = [row(fold, s) for s, fold in folds.items()]
    print("\n| held-out speaker | before greedy | before default | after greedy | after default | fine-tune min "
          "| AN4 test default |\n|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        an4 = f"{r['an4'][0]:.2f} -> {r['an4'][1]:.2f}" if None not in r["an4"] else "-"
        print(f"| {r['speaker']} | {r['before_greedy']:.2f} | {r['before_default']:.2f} | {r['after_greedy']:.2f} "
              f"| {r['after_default']:.2f} | {r['minutes']:.1f} | {an4} |")
    for speaker, fold in folds.items():
        try:
            errors = frequent_errors(fold / "eval" / "test-after-default")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{speaker}, most frequent errors after (default decoding): {errors}")
    after = [r["after_default"] for r in rows]
    mean = sum(after) / len(after)
    print(f"after, default decoding: mean over held-out speakers {mean:.2f}%, worst {max(after):.2f}%")
    print(f"fsdd_finetune_wer_default={mean:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
