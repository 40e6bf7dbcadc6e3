"""Train a BiLSTM-CTC model, in one process or data-parallel over GPUs and nodes (torchrun).

    python -m asr.train --train manifests/an4/train.jsonl --dev manifests/an4/dev.jsonl --out exp/an4
    torchrun --standalone --nproc-per-node 8 -m asr.train --config conf.json --device cuda --amp ...

Flags (or a --config JSON file of them) become an asr.training.TrainConfig; asr.training does the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

from asr import __version__
from asr.audio import AudioError
from asr.cli import (Formatter, OutputError, add_runtime_flags, apply_threads, epochs_to_average, finite_float,
                     fraction_below_one, learning_rate, lr_ratio, non_negative_float, non_negative_int, positive_float,
                     positive_int, prepare_output_dir, probability, speed_factor, stdout_guarded, unit_interval,
                     usable_cores, workers_or_auto)
from asr.checkpoint import CheckpointError, read_checkpoint
from asr.data import ManifestError
from asr.model import ModelConfig
from asr.training import TrainConfig, Trainer, distributed
from asr.training.checks import RunError, check_out_folder, check_precision, clear_run_files, run_settings
from asr.training.layout import PRECISIONS, choose_layout, choose_precision
from asr.training.setup import check_fine_tuning, with_init


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
    known = {a.dest for a in p._actions} - {"help", "version", "config", "train", "dev", "out", "resume", "overwrite"}
    unknown = sorted(set(values) - known)  # resume, overwrite: apply_run_settings reads --resume before the file
    if unknown:
        p.error(f"--config {path}: unknown setting(s) {', '.join(unknown)} (paths, --resume, --overwrite: flags only)")
    actions = {a.dest: a for a in p._actions}
    for name, value in values.items():
        values[name] = checked_setting(p, actions[name], value, f"--config {path}: {name}")
    p.set_defaults(**values)


def apply_run_settings(p: argparse.ArgumentParser, argv: list[str] | None) -> None:
    """With --resume, make the settings OUT/last.pt's run was started with the parser's defaults (a --config file
    and the command line still win), so that a setting left out goes on as the run had it. A missing or unreadable
    last.pt is left to the checks that say so."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--out")
    pre.add_argument("--resume", action="store_true")
    known = pre.parse_known_args(argv)[0]
    if not (known.resume and known.out):
        return
    try:
        ckpt = read_checkpoint(Path(known.out) / "last.pt")
    except CheckpointError:
        return
    dests = {a.dest for a in p._actions}
    p.set_defaults(**{k: v for k, v in run_settings(ckpt).items() if k in dests})


def checked_setting(p: argparse.ArgumentParser, action: argparse.Action, value, where: str):
    """A --config value put through its flag's type (and choices), as if it had been typed: p.error if refused."""
    if isinstance(value, bool) and action.type is not None:  # True would pass int() as 1: a switch's value, not N
        return p.error(f"{where}: expected a value for --{action.dest.replace('_', '-')}, got {value!r}")
    if action.type is None or value is None or isinstance(value, bool):
        bad = action.choices is not None and value not in action.choices
        return p.error(f"{where}: expected one of {', '.join(map(str, action.choices))}, got {value!r}") if bad else value
    if action.nargs == "+" or isinstance(action.nargs, int):  # a list: --snr-db LOW HIGH, --speed-factors F ...
        count = action.nargs if isinstance(action.nargs, int) else None
        if not isinstance(value, list) or not value or (count is not None and len(value) != count):
            return p.error(f"{where}: expected a list of {count or 'one or more'} values, got {value!r}")
    try:
        return [action.type(str(v)) for v in value] if isinstance(value, list) else action.type(str(value))
    except (argparse.ArgumentTypeError, ValueError) as e:  # ValueError: a plain type=int or float
        p.error(f"{where}: {e}")


INTS = {  # flag -> (type, help)
    "epochs": (positive_int, "passes over the training set; the learning rate decays to its floor at the last"),
    "warmup_steps": (non_negative_int, "linear learning-rate warm-up over this many optimiser steps"),
    "seed": (non_negative_int, "everything random derives from it"),
    "freq_masks": (non_negative_int, "SpecAugment frequency masks"),
    "freq_width": (non_negative_int, "widest SpecAugment frequency mask, mel bins"),
    "time_masks": (non_negative_int, "SpecAugment time masks"),
    "accum_steps": (positive_int, "batches per process whose gradients add up to one optimiser step"),
    "freeze_bottom": (non_negative_int, "with --init: bottom blocks that keep their weights (1: the conv front end; "
                                        "2: and the lowest BiLSTM layer; ...; 0: none)"),
    "average_last": (epochs_to_average, "after the last epoch, average the weights of the last N epochs (N >= 2; "
                                       "kept in OUT/epochs); the mean becomes best.pt if its dev WER is lower"),
}
FLOATS = {  # flag -> (type, help)
    "max_minutes": (non_negative_float, "stop, resumably, after this much training time over all resumes (0: no limit)"),
    "batch_seconds": (positive_float, "padded audio seconds per batch"),
    "lr": (learning_rate, "peak learning rate (AdamW), in (0, 1]"),
    "final_lr_ratio": (lr_ratio, "the cosine decay ends at lr times this"),
    "weight_decay": (unit_interval, "AdamW decoupled weight decay, in [0, 1]"),
    "init_decay": (non_negative_float, "with --init: after each step every weight moves lr x this of the way back to "
                                       "the --init model's (L2-SP: a guard against forgetting that needs none of "
                                       "that model's data; 0: off; lr x this <= 1)"),
    "grad_clip": (positive_float, "largest global gradient norm"),
    "noise_prob": (probability, "probability of adding noise to an utterance (0: never)"),
    "rir_prob": (probability, "probability of reverberation, when --rir is given"),
    "eq_prob": (probability, "probability of another microphone's colour: a smooth random gain over frequency "
                             "within +-10 dB (asr.augment.Equalize; 0: never)"),
    "trim_prob": (probability, "probability of an editor's trim: the silence around the words cut off, a soft first "
                               "or last sound with it (asr.augment.Trim; 0: never)"),
    "vtlp_prob": (probability, "probability of another vocal tract's formants (VTLP; asr.augment.VocalTractWarp)"),
    "clip_prob": (probability, "probability of clipping: the level driven 0-12 dB over full scale"),
    "telephone_prob": (probability, "probability of a telephone line: its band, 8 kHz, mu-law or A-law"),
    "codec_prob": (probability, "probability of a lossy codec round trip (MP3, Opus or Vorbis)"),
    "time_width": (probability, "widest SpecAugment time mask, as a fraction of the utterance"),
}


def build_parser() -> argparse.ArgumentParser:  # long: one line a flag
    p = argparse.ArgumentParser(prog="python -m asr.train", description="Train a BiLSTM-CTC model.",
                                formatter_class=Formatter)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", required=True, help="dev manifest (JSONL), for validation and model selection")
    p.add_argument("--out", required=True, help="experiment folder: last.pt, best.pt, metrics.jsonl, curves.png")
    for name, (kind, text) in {**INTS, **FLOATS}.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=defaults[name], help=text)
    p.add_argument("--snr-db", type=finite_float, nargs=2, default=defaults["snr_db"], metavar=("LOW", "HIGH"),
                   help="range of the signal-to-noise ratio of added noise, dB")
    p.add_argument("--vtlp-factors", type=speed_factor, nargs=2, default=defaults["vtlp_factors"],
                   metavar=("LOW", "HIGH"), help="the range of VTLP's factor (0.5 < F <= 2; > 1: higher formants)")
    p.add_argument("--noise", default="", help="noise folder or JSONL (default: synthetic coloured noise)")
    p.add_argument("--rir", default="", help="room impulse responses: folder or JSONL (default: none)")
    p.add_argument("--speed-factors", type=speed_factor, nargs="+", default=defaults["speed_factors"], metavar="F",
                   help="speed perturbation: each utterance played F times as fast, F drawn from these "
                        "(0.5 < F <= 2; wider, e.g. 0.8 0.9 1.0 1.1 1.2, varies the voice more)")
    p.add_argument("--no-speed-perturb", dest="speed_perturb", action="store_false", help="no speed perturbation")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false", help="no SpecAugment masks")
    add_runtime_flags(p, threads_default="chosen from the cores this process may use, beside the DataLoader workers: "
                                          "asr.training.layout; on 2 cores 1")
    p.add_argument("--num-workers", type=workers_or_auto, default="auto",
                   help="DataLoader processes computing features (0: in the training process; auto: from the cores, "
                        "as --threads is: asr.training.layout)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="fp32, bf16 autocast, fp16 (GPUs); auto: bf16 on a GPU, and on a CPU with bf16 units where a "
                        "measured LSTM step is faster in it, else fp32 (it says what it chose)")
    p.add_argument("--amp", action="store_true", help="autocast: bf16 where supported, else fp16 with loss scaling "
                   "(the older spelling of --precision bf16 or fp16; refused beside --precision fp32)")
    p.add_argument("--amp-dtype", choices=["auto", "bf16", "fp16"], default=defaults["amp_dtype"],
                   help="with --amp: auto is bf16 where supported (fp16: GPUs only)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt; the settings left out are the run's own (all but --device, "
                        "--threads, --num-workers, --precision: this machine's), the ones given are said or refused")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an OUT holding a run: removes its last.pt, best.pt, metrics.jsonl, curves.png")
    p.add_argument("--tokenizer", default="", help="SentencePiece model for BPE targets (default: characters)")
    p.add_argument("--config", help="JSON file of settings, e.g. {\"hidden\": 512}; flags given here win")
    m = ModelConfig()
    p.add_argument("--hidden", type=positive_int, default=m.hidden, help="LSTM units per direction")
    p.add_argument("--layers", type=positive_int, default=m.layers, help="BiLSTM layers")
    p.add_argument("--conv-channels", type=positive_int, default=m.conv_channels, help="channels of the conv layers")
    p.add_argument("--dropout", type=fraction_below_one, default=m.dropout, help="dropout between layers, in [0, 1)")
    p.add_argument("--chunk-frames", type=non_negative_int, default=m.chunk_frames,
                   help="streaming (LC-BLSTM): output frames (40 ms) per chunk; 0: full context")
    p.add_argument("--right-context-frames", type=non_negative_int, default=m.right_context_frames,
                   help="streaming: output frames past each chunk that its backward LSTMs read")
    p.add_argument("--init", default="", help="start from this checkpoint's weights, features, normalisation and "
                   "vocabulary (fine-tuning; its model shape wins over --hidden/--layers/--conv-channels)")
    p.add_argument("--init-features", choices=["init", "new"], default="init",
                   help="with --init: keep its features and normalisation (init), or train its weights on this "
                        "run's features (today's FeatureConfig: the level-independent front end) normalised on "
                        "--train (new)")
    return p


def parse_namespace(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags (and the --config file's settings) as parsed; --snr-db LOW HIGH in order."""
    p = build_parser()
    apply_run_settings(p, argv)  # first: a --config file, then the command line, win over the run's settings
    apply_config_file(p, argv)
    args = p.parse_args(argv)
    for name, (low, high) in (("snr-db", args.snr_db), ("vtlp-factors", args.vtlp_factors)):
        if low > high:
            p.error(f"--{name}: the low end must not exceed the high end, got {low} {high}")
    if args.right_context_frames and not args.chunk_frames:
        p.error("--right-context-frames needs --chunk-frames (a full-context model has no chunks)")
    return args


def to_config(args: argparse.Namespace) -> TrainConfig:
    a = {k: v for k, v in vars(args).items() if k not in ("config", "threads", "precision")}
    model = ModelConfig(hidden=a.pop("hidden"), layers=a.pop("layers"), conv_channels=a.pop("conv_channels"),
                        dropout=a.pop("dropout"), chunk_frames=a.pop("chunk_frames"),
                        right_context_frames=a.pop("right_context_frames"))
    for name in ("snr_db", "speed_factors", "vtlp_factors"):
        a[name] = tuple(a[name])
    if a["num_workers"] == "auto":  # main() settles it first, with the threads; here as the layout would
        a["num_workers"] = choose_layout(usable_cores(), a["device"].split(":")[0]).workers
    return TrainConfig(model=model, **a)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The TrainConfig that main() would train with (threads, workers, precision settled; torch's threads set)."""
    args = parse_namespace(argv)
    choose_machine_use(args)
    return to_config(args)


def choose_machine_use(args: argparse.Namespace) -> str:
    """Settle --threads, --num-workers and --precision left to auto (asr.training.layout) in `args`, and set torch's
    threads (auto precision is measured with them); returns the line that says what was chosen and why."""
    device_type = args.device.split(":")[0]
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun's processes on this machine
    cores = usable_cores()
    layout = choose_layout(cores, device_type, processes)
    args.threads = args.threads or layout.threads
    args.num_workers = layout.workers if args.num_workers == "auto" else args.num_workers
    apply_threads(args.threads)
    check_precision(args.precision, args.amp, args.amp_dtype, device_type)
    if args.amp and args.precision == "auto":  # --amp --precision bf16 (or fp16): that precision, as asked
        precision, why = f"autocast ({args.amp_dtype})", "--amp"
    elif args.resume and args.precision == "auto":  # the run's own choice: a new measurement could flip it
        saved = read_checkpoint(Path(args.out) / "last.pt").get("metadata", {}).get("train_config", {})
        args.amp, args.amp_dtype = saved.get("amp", False), saved.get("amp_dtype", args.amp_dtype)
        precision, why = (args.amp_dtype if args.amp else "fp32"), "the resumed run's"
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        precision, why = choose_precision(args.precision, device_type, args.hidden, processes=world)
        args.amp = precision != "fp32"
        args.amp_dtype = precision if args.amp else args.amp_dtype
    return (f"machine: {cores} usable cores / {processes} process(es) -> {args.threads} torch thread(s), "
            f"{args.num_workers} DataLoader worker(s); precision {precision} ({why})")


@stdout_guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_namespace(argv)
    made = [p for p in (Path(args.out), *Path(args.out).parents) if not p.exists()]  # the folders a run would make
    try:
        check_out_folder(to_config(args))  # the settings checked (ModelConfig's too) before the folder is made
        prepare_output_dir(args.out, "--out")  # before any work: a run must be able to write its results
        check_fine_tuning(with_init(to_config(args)))  # the blocks of the model it fine-tunes, the pull
        chosen = choose_machine_use(args)
        cfg = to_config(args)
        if cfg.overwrite and int(os.environ.get("RANK", "0")) == 0:  # torchrun's global rank: one process removes
            removed = clear_run_files(cfg.out)
            if removed:
                print(f"--overwrite: removed {', '.join(removed)} from {cfg.out}", file=sys.stderr)
        cfg = with_init(cfg)  # a fine-tuned model keeps its features and shape
        trainer = Trainer(cfg)
        if trainer.dist.is_main:
            print(chosen, file=sys.stderr)
        begun = trainer.state["step"], trainer.state["skipped_steps"]  # a resumed run's count on from last.pt's
        result = trainer.run()
    except (OutputError, ManifestError, AudioError, RunError, CheckpointError, ValueError) as e:  # ValueError: tokenizer
        print(f"error: {e}", file=sys.stderr)
        with contextlib.suppress(OSError):  # a refused run leaves no empty folder of its own (rmdir: empty ones only)
            for folder in made:  # deepest first
                folder.rmdir()
        return distributed.end_process(2)
    if trainer.dist.is_main:
        print(f"best_dev_wer={result['best_dev_wer']:.2f} epochs={result['epoch']} stopped={result['stopped']}")
    distributed.shutdown(trainer.dist)
    taken, skipped = result["step"] - begun[0], result["skipped_steps"] - begun[1]
    if skipped and not taken and result["stopped"] != "signal":  # a run that trained nothing has failed
        if trainer.dist.is_main:
            print(f"error: no optimiser step trained: all {skipped} steps were skipped, their loss or gradient not "
                  f"finite (skipped_steps in {cfg.out}/metrics.jsonl), so its checkpoints hold the weights it started "
                  "from; try a lower --lr, or --precision fp32", file=sys.stderr)
        return distributed.end_process(1)
    # A time limit is the normal end of a budgeted run (0); its last.pt still resumes mid-epoch with --resume.
    return distributed.end_process(130 if result["stopped"] == "signal" else 0)


if __name__ == "__main__":
    sys.exit(main())
