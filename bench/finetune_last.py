"""A fine-tune's last epoch (train/last.pt) scored as the recipe scores its best.pt: exported in int8 with the
fold's recommended decoding and its LM beside it, then WER on the held-out set and on AN4 test, greedy and default.
Where the epochs that tie on dev run to the last one, this is what best.pt keeps since ties go to the later epoch.

    python bench/finetune_last.py exp/ft_seed1/nicolas [--an4 manifests/an4/test.jsonl] [--out OUT]

Prints one line per set (greedy / default WER, as stage 7 of recipes/finetune/run.sh prints them for best.pt in
EXP/RESULTS.md) and last `finetune_last_wer_default=<held-out set %>`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _manifests import require_manifests, run_main  # bench/_manifests.py

from asr.checkpoint import export_model, load_model
from asr.evaluate import main as evaluate


def wer(model: Path, manifest: str, decoder: list[str], out: Path) -> float:
    """asr.evaluate's WER of the model on the manifest (its report in `out`)."""
    with contextlib.redirect_stdout(io.StringIO()):
        code = evaluate(["--model", str(model), "--manifest", manifest, "--threads", "1", "--quiet", *decoder,
                         "--out", str(out)])
    if code:
        raise SystemExit(code)  # asr.evaluate has said why, in one line
    return json.loads((out / "summary.json").read_text())["wer"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("fold", help="a fine-tune's folder: train/last.pt, model.pt, model_lm.arpa.gz, sets/test.jsonl")
    p.add_argument("--an4", default="manifests/an4/test.jsonl", help="AN4 test, for forgetting ('' to leave out)")
    p.add_argument("--out", help="where the export and the reports go (default: a temporary folder)")
    args = p.parse_args()
    fold = Path(args.fold)
    require_manifests(fold / "sets" / "test.jsonl", args.an4,
                      how="a fold of recipes/finetune/run.sh (bench/finetune.py), run through stage 7")
    for needed in (fold / "train" / "last.pt", fold / "model.pt", fold / "model_lm.arpa.gz"):
        if not needed.is_file():
            print(f"error: {needed}: no such file; run the fold through stage 7 first", file=sys.stderr)
            return 2
    decoding = load_model(fold / "model.pt").metadata.get("decoding", {})
    with tempfile.TemporaryDirectory(prefix="finetune-last-") as scratch:
        out = Path(args.out or scratch)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fold / "model_lm.arpa.gz", out / "model_lm.arpa.gz")
        export_model(fold / "train" / "last.pt", out / "model.pt", {"decoding": decoding}, "int8")
        sets = {"test": str(fold / "sets" / "test.jsonl"), **({"an4-test": args.an4} if args.an4 else {})}
        result = {}
        for name, manifest in sets.items():
            result[name] = [wer(out / "model.pt", manifest, flags, out / f"{name}-{label}")
                            for label, flags in (("greedy", ["--decoder", "greedy"]), ("default", []))]
            print(f"{name}: last.pt greedy {result[name][0]:.2f}, default {result[name][1]:.2f}")
    print(f"finetune_last_wer_default={result['test'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
