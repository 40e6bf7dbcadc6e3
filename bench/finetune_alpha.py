"""The LM weight of a fine-tune's default decoding, against held-out speakers and against forgetting: each fold of a
bench/finetune.py experiment decoded on its held-out speaker's clips and on AN4 test at several LM weights (alpha),
the fold's own model.pt and model_lm.arpa.gz, beam and word bonus as the model recommends.

    python bench/finetune_alpha.py --exp exp/ft_an4_d10 [--alphas 0.1 0.3 0.5 1.0] [--an4 manifests/an4/test.jsonl]

Why: the recipe tunes alpha on dev, which holds the training speakers; there every alpha can score the same (the
tune prints a note and keeps the least), while a speaker never heard may need the LM more, and the LM of your
transcripts may cost AN4. One row per fold and alpha (and the alpha the recipe tuned, marked); the last line is
`mean_heldout_wer_alpha_<a>=<%>` for the largest alpha given. AN4's "before" is the model fine-tuned, its default
decoding, as the fold's stage 7 scored it (EXP/<fold>/eval/an4-test-before-default; no ratio where it is not there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from _manifests import require_manifests, run_main  # bench/_manifests.py

from asr.checkpoint import load_recognizer
from asr.cli import apply_threads, non_negative_float
from asr.decoding import BeamSearchConfig, Decoder, DecodingConfig
from asr.lm import load_lm
from asr.manifest import read_manifest
from asr.metrics import score
from asr.recognizer import utterance_log_probs


def fold_rows(fold: Path, an4: str, alphas: list[float]) -> list[dict]:
    """WER on the fold's test set and on AN4 test at each alpha (the log-probs computed once per set)."""
    rec = load_recognizer(fold / "model.pt")
    decoding = rec.metadata.get("decoding") or {}
    lm = load_lm(fold / "model_lm.arpa.gz")
    sets = {"test": read_manifest(fold / "sets" / "test.jsonl"), "an4": read_manifest(an4)}
    log_probs = {name: utterance_log_probs(rec, utts) for name, utts in sets.items()}
    rows = []
    for alpha in sorted({*alphas, decoding.get("alpha", alphas[0])}):  # and the alpha the recipe tuned
        decoder = Decoder(decoding_at(decoding, fold / "model_lm.arpa.gz", alpha), rec.vocab, lm)
        wers = {name: score(sets[name], decoder.transcripts(log_probs[name]))["wer"] for name in sets}
        rows.append({"fold": fold.name, "alpha": alpha, "tuned": alpha == decoding.get("alpha"), **wers})
    before = fold / "eval" / "an4-test-before-default" / "summary.json"
    an4_before = json.loads(before.read_text())["wer"] if before.is_file() else None
    return [{**row, "an4_x": row["an4"] / an4_before if an4_before else None} for row in rows]


def decoding_at(decoding: dict, lm: Path, alpha: float) -> DecodingConfig:
    """The model's recommended beam search with its LM at `alpha` (the rest as recommended)."""
    fields = {f.name for f in dataclasses.fields(BeamSearchConfig)}
    beam = BeamSearchConfig(**{k: v for k, v in decoding.items() if k in fields})
    return DecodingConfig("beam", str(lm), dataclasses.replace(beam, alpha=alpha))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--exp", required=True, help="a bench/finetune.py experiment: one folder per held-out speaker")
    p.add_argument("--alphas", type=non_negative_float, nargs="+", default=[0.1, 0.3, 0.5, 1.0])
    p.add_argument("--an4", default="manifests/an4/test.jsonl", help="AN4 test, for forgetting")
    args = p.parse_args()
    require_manifests(args.an4)
    exp = Path(args.exp)
    folds = sorted(d for d in exp.iterdir() if (d / "model.pt").is_file()) if exp.is_dir() else []
    if not folds:
        print(f"error: {args.exp}: no fold with a model.pt in it; run bench/finetune.py first", file=sys.stderr)
        return 2
    require_manifests(*(fold / "sets" / "test.jsonl" for fold in folds),
                      how="a fold of recipes/finetune/run.sh (bench/finetune.py), run through stage 7")
    apply_threads(1)
    rows = [row for fold in folds for row in fold_rows(fold, args.an4, sorted(args.alphas))]
    print("| held-out speaker | alpha | held-out WER % | AN4 test WER % (x before) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        mark = " (tuned)" if r["tuned"] else ""
        print(f"| {r['fold']} | {r['alpha']}{mark} | {r['test']:.2f} | {r['an4']:.2f} ({times(r['an4_x'])}) |")
    for alpha in ["tuned", *sorted(args.alphas)]:
        at = [r for r in rows if r["alpha"] == alpha or (alpha == "tuned" and r["tuned"])]
        if not at:  # no fold's model recommends an alpha
            continue
        ratios = [r["an4_x"] for r in at if r["an4_x"] is not None]
        print(f"alpha {alpha}: held-out mean {sum(r['test'] for r in at) / len(at):.2f}, worst "
              f"{max(r['test'] for r in at):.2f}; AN4 worst {times(max(ratios) if ratios else None)}")
    top = max(args.alphas)
    print(f"mean_heldout_wer_alpha_{top}={sum(r['test'] for r in rows if r['alpha'] == top) / len(folds):.2f}")
    return 0


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


if __name__ == "__main__":
    sys.exit(run_main(main))
