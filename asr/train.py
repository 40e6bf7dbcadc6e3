"""Train a BiLSTM-CTC model, in one process or data-parallel over GPUs and nodes (torchrun).

    python -m asr.train --train manifests/an4/train.jsonl --dev manifests/an4/dev.jsonl --out exp/an4
    torchrun --standalone --nproc-per-node 8 -m asr.train --config conf.json --device cuda --amp ...

Flags (or a --config JSON file of them) become an asr.training.TrainConfig; asr.training does the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from asr.audio import AudioError
from asr.data import ManifestError
from asr.model import ModelConfig
from asr.training import TrainConfig, Trainer, distributed
from asr.training.checks import RunError, check_out_folder, clear_run_files


def apply_config_file(p: argparse.ArgumentParser, argv: list[str] | None) -> None:
    """Make the settings of the `--config` JSON file (flag names as keys, "-" or "_") the parser's defaults,
    so that flags given on the command line win over the file."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    path = pre.parse_known_args(argv)[0].config
    if not path:
        return
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        p.error(f"--config {path}: cannot read it as JSON ({e})")
    if not isinstance(values, dict):
        p.error(f"--config {path}: expected a JSON object of settings, got {type(values).__name__}")
    values = {k.replace("-", "_"): v for k, v in values.items()}
    known = {a.dest for a in p._actions} - {"help", "config", "train", "dev", "out"}
    unknown = sorted(set(values) - known)
    if unknown:
        p.error(f"--config {path}: unknown setting(s) {', '.join(unknown)} (paths go on the command line)")
    p.set_defaults(**values)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m asr.train", description="Train a BiLSTM-CTC model.")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", required=True, help="dev manifest (JSONL), for validation and model selection")
    p.add_argument("--out", required=True, help="experiment folder")
    for name in ("epochs", "warmup_steps", "seed", "num_workers", "freq_masks", "freq_width", "time_masks"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=defaults[name])
    for name in ("max_minutes", "batch_seconds", "lr", "final_lr_ratio", "weight_decay", "grad_clip", "noise_prob",
                 "rir_prob", "time_width"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=defaults[name])
    p.add_argument("--snr-db", type=float, nargs=2, default=defaults["snr_db"], metavar=("LOW", "HIGH"))
    p.add_argument("--noise", default="", help="noise folder or JSONL (default: synthetic coloured noise)")
    p.add_argument("--rir", default="", help="room impulse responses: folder or JSONL (default: none)")
    p.add_argument("--no-speed-perturb", dest="speed_perturb", action="store_false")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast: bf16 where supported, else fp16 with loss scaling")
    p.add_argument("--amp-dtype", choices=["auto", "bf16", "fp16"], default=defaults["amp_dtype"])
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an OUT holding a run: removes its last.pt, best.pt, metrics.jsonl, curves.png")
    p.add_argument("--accum-steps", type=int, default=defaults["accum_steps"],
                   help="batches per process whose gradients add up to one optimiser step")
    p.add_argument("--tokenizer", default="", help="SentencePiece model for BPE targets (default: characters)")
    p.add_argument("--config", help="JSON file of settings, e.g. {\"hidden\": 512}; flags given here win")
    m = ModelConfig()
    p.add_argument("--hidden", type=int, default=m.hidden, help="LSTM units per direction")
    p.add_argument("--layers", type=int, default=m.layers, help="BiLSTM layers")
    p.add_argument("--conv-channels", type=int, default=m.conv_channels)
    p.add_argument("--dropout", type=float, default=m.dropout)
    apply_config_file(p, argv)
    a = vars(p.parse_args(argv))
    a.pop("config")
    model = ModelConfig(hidden=a.pop("hidden"), layers=a.pop("layers"), conv_channels=a.pop("conv_channels"),
                        dropout=a.pop("dropout"))
    a["snr_db"] = tuple(a["snr_db"])
    return TrainConfig(model=model, **a)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        check_out_folder(cfg)  # before any work: reading manifests, computing statistics
        if cfg.overwrite and int(os.environ.get("RANK", "0")) == 0:  # torchrun's global rank: one process removes
            removed = clear_run_files(cfg.out)
            if removed:
                print(f"--overwrite: removed {', '.join(removed)} from {cfg.out}", file=sys.stderr)
        trainer = Trainer(cfg)
        result = trainer.run()
    except (ManifestError, AudioError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if trainer.dist.is_main:
        print(f"best_dev_wer={result['best_dev_wer']:.2f} epochs={result['epoch']} stopped={result['stopped']}")
    distributed.shutdown(trainer.dist)
    # A time limit is the normal end of a budgeted run (0); its last.pt still resumes mid-epoch with --resume.
    return 130 if result["stopped"] == "signal" else 0


if __name__ == "__main__":
    sys.exit(main())
