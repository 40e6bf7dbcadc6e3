"""What asr.train checks before it trains: that --out holds no other run (unless --resume or --overwrite), that
its precision flags agree with each other, that a resumed run agrees with its last.pt, and that the noise
recordings are noise, not impulse responses.
A check that fails raises RunError; asr.train prints its one-line message and exits 2."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from asr import augment
from asr.audio import SAMPLE_RATE, audio_duration, load_audio
from asr.checkpoint import V1_FEATURES
from asr.data import ManifestError, read_manifest
from asr.download import file_digest
from asr.manifest import read_jsonl
from asr.training.config import TrainConfig

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "curves.png")  # what a run writes into its --out folder


class RunError(Exception):
    """A run that cannot start as asked; the message says why and what to do instead."""


def check_out_folder(cfg: TrainConfig) -> None:
    """Refuse to train into a folder that holds another run's files (training would overwrite its checkpoints
    and append to its metrics) unless cfg.resume or cfg.overwrite says what to do with them, and refuse to
    resume from a folder without last.pt. Reads nothing but the folder's listing."""
    out = Path(cfg.out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if cfg.resume and cfg.overwrite:
        raise RunError("--resume and --overwrite contradict each other: continue the run in --out, or start it again")
    if cfg.resume and not (out / "last.pt").is_file():
        raise RunError(f"--resume: nothing to resume, there is no {out / 'last.pt'} "
                       "(leave out --resume to start a new run there)")
    if found and not (cfg.resume or cfg.overwrite):
        raise RunError(f"{out} already holds a run ({', '.join(found)}): add --resume to continue it, "
                       "--overwrite to start it again, or give --out a new or empty folder")


def check_precision(precision: str, amp: bool, amp_dtype: str, device_type: str) -> None:
    """Refuse precision flags that contradict each other or would do nothing. --amp is autocast's older spelling
    (bf16 where supported, else fp16; --amp-dtype picks one): with --precision bf16 or fp16 it says the same thing
    twice, with fp32 the opposite. fp16 is for GPUs: a CPU has no fp16 units to gain from, and its loss scaler
    skips the first steps of a run while it finds a scale that fits (a short run trained nothing)."""
    if amp and precision == "fp32":
        raise RunError("--amp and --precision fp32 contradict each other: --amp autocasts (bf16, or fp16 where a GPU "
                       "lacks bf16); give one of them")
    if amp_dtype != "auto" and precision != "auto" and amp_dtype != precision:
        raise RunError(f"--amp-dtype {amp_dtype} and --precision {precision} contradict each other: give one of them")
    if amp_dtype != "auto" and not amp and precision == "auto":
        raise RunError(f"--amp-dtype {amp_dtype} needs --amp (it picks --amp's autocast), or give --precision "
                       f"{amp_dtype} alone")
    if device_type == "cpu" and "fp16" in (precision, amp_dtype):
        given = "--precision fp16" if precision == "fp16" else "--amp-dtype fp16"
        raise RunError(f"{given} is for GPUs (a CPU gains nothing from it, and its loss scaler skips the first steps "
                       "while it finds a scale); on a CPU give --precision bf16 or fp32")


def clear_run_files(out: str | Path) -> list[str]:
    """Remove the files a run writes (RUN_FILES) from out, leaving anything else; returns the names removed."""
    removed = [name for name in RUN_FILES if (Path(out) / name).is_file()]
    for name in removed:
        (Path(out) / name).unlink()
    return removed


MODEL_FLAGS = ("hidden", "layers", "conv_channels", "dropout", "chunk_frames", "right_context_frames")  # last.pt's model is what trains on: it cannot change
# A resumed run goes on from where last.pt is in the epoch's batch order: other sources of noise or RIRs would
# change what the rest of the run trains on without a word, so they are refused, as are other model flags. So is
# another --train, unless it lists the same utterances (a moved or copied manifest): the epoch resumes at a
# position in that set's batch order, which another set does not have, and the normalisation came from it. Other
# frozen blocks would not fit the optimiser state last.pt holds (it holds the trained parameters only).
REFUSED = ("noise", "rir", "init", "init_features", "freeze_bottom")
EXTENDING = ("epochs", "max_minutes")  # how a run is made longer on resume: said, not warned of
UNCHECKED = ("train", "dev", "out", "resume", "overwrite", "num_workers", "model", "features", "tokenizer")
NONE_MEANS = {"noise": "synthetic coloured noise", "rir": "no reverberation", "tokenizer": "characters"}  # for ""
NEGATED = {"speed_perturb": "speed perturbation", "spec_augment": "SpecAugment"}  # switched off by --no-...
PATHS = ("train", "dev", "noise", "rir", "init", "tokenizer")  # the same file however written: ../x, /abs/x


def same_setting(name: str, saved, given) -> bool:
    """Whether a setting of last.pt's run and this one's agree; paths compare as the files they name (relative
    ones from the current folder), "" (none) only with ""."""
    if name in PATHS and saved and given:
        return Path(saved).resolve() == Path(given).resolve()
    return saved == given


def flag(name: str, value) -> str:
    """How a setting reads on the command line: flag("batch_seconds", 6.0) -> "--batch-seconds 6.0"."""
    dashed = name.replace("_", "-")
    if name in NEGATED:
        return f"no --no-{dashed} ({NEGATED[name]})" if value else f"--no-{dashed}"
    if isinstance(value, bool):
        return f"--{dashed}" if value else f"no --{dashed}"
    if value == "" and name in NONE_MEANS:
        return f"no --{dashed} ({NONE_MEANS[name]})"
    shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    return f"--{dashed} {shown}"


NOT_RUN_SETTINGS = ("train", "dev", "out", "resume", "overwrite", "model", "features",  # paths, what to do with OUT
                    "device", "num_workers", "amp", "amp_dtype")  # this machine's (amp: asr.train's precision rule)


def run_settings(ckpt: dict) -> dict:
    """The settings last.pt's run was started with, by TrainConfig field name (ModelConfig's for its model): what
    a resumed run goes on with where its command line leaves them out (all but NOT_RUN_SETTINGS)."""
    saved = ckpt.get("metadata", {}).get("train_config", {})
    model = {name: ckpt["model_config"][name] for name in MODEL_FLAGS if name in ckpt["model_config"]}
    return {**{k: v for k, v in saved.items() if k not in NOT_RUN_SETTINGS}, **model}


def check_resume(cfg: TrainConfig, ckpt: dict, tokens: list[str], path: Path) -> list[str]:
    """Raise RunError where cfg contradicts the run that last.pt (ckpt, at path) holds: its model, features,
    vocabulary (tokens: cfg.tokenizer's), training set, noise and RIRs; returns the lines to print about the
    other settings that differ (warnings) and the ones that extend the run (notes)."""
    def refuse(what: str) -> RunError:
        return RunError(f"--resume: {path} was trained with {what}: resume with the run's settings, or start a "
                        "new run in another --out")

    if (metrics := path.parent / "metrics.jsonl").exists():  # appended to and drawn after each epoch: read now
        try:
            read_jsonl(metrics)
        except (ManifestError, OSError) as e:
            raise RunError(f"--resume: {e}") from None

    for name in MODEL_FLAGS:
        saved, given = ckpt["model_config"].get(name, 0), getattr(cfg.model, name)  # 0: before streaming models
        if saved != given:
            raise refuse(f"{flag(name, saved)}, this run asks for {flag(name, given)}")
    features = {**V1_FEATURES, **ckpt["feature_config"]}
    if features != dataclasses.asdict(cfg.features):
        raise refuse(f"the features {features}, this run asks for {dataclasses.asdict(cfg.features)}")
    saved = json.loads(json.dumps(ckpt.get("metadata", {}).get("train_config", {})))
    given = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if list(ckpt["vocab"]) != list(tokens):
        raise refuse(f"a vocabulary of {len(ckpt['vocab'])} tokens ({flag('tokenizer', saved.get('tokenizer', ''))}), "
                     f"this run asks for the {len(tokens)} of {flag('tokenizer', cfg.tokenizer)}")
    for name in REFUSED:
        if name in saved and not same_setting(name, saved[name], given[name]):
            raise refuse(f"{flag(name, saved[name])}, this run asks for {flag(name, given[name])}")
    lines = []
    if "train" in saved and not same_setting("train", saved["train"], given["train"]):
        if not same_utterances(saved["train"], cfg.train):
            raise refuse(f"{flag('train', saved['train'])}, this run asks for {flag('train', cfg.train)}, which "
                         "lists other utterances (or the run's manifest is gone)")
        lines.append(f"note: --train {cfg.train} holds the same utterances as the run's {saved['train']}")
    for name, value in saved.items():  # in TrainConfig's order
        if name in UNCHECKED or name in REFUSED or same_setting(name, value, given.get(name)):
            continue
        said = f"{flag(name, given.get(name))} (the run was started with {flag(name, value)})"
        lines.append(f"note: {said}" if name in EXTENDING else f"warning: {said}: the rest of it trains so")
    return lines


def other_dev_set(cfg: TrainConfig, ckpt: dict) -> str | None:
    """The dev manifest that last.pt's run chose best.pt on, where cfg.dev lists other utterances (its best dev WER
    cannot be compared with theirs); None where it is the same set, however written or copied."""
    saved = ckpt.get("metadata", {}).get("train_config", {}).get("dev")
    if saved is None or same_setting("dev", saved, cfg.dev) or same_utterances(saved, cfg.dev):
        return None
    return saved


def same_utterances(saved_manifest: str, manifest: str) -> bool:
    """Whether two manifests list the same utterances (ids, audio files, durations, texts) in the same order."""
    try:
        return read_manifest(saved_manifest) == read_manifest(manifest)
    except (ManifestError, OSError):
        return False


# Telling a room impulse response from a noise recording (a shared noise folder may hold both). An RIR is the
# direct sound, at once its loudest sample, followed by a decay: in the 16 measured RIRs of ../shared/data/noise
# the peak comes within 0.14 s and 99% of the energy (20 dB of Schroeder decay) within 73% of the file, while
# in its 32 noise recordings the peak comes after 0.19 s, but for one tap at 0.11 s whose decay takes 80%.
# A file named like one (rir*, *impulse*) is taken for one whatever it sounds like; a long one is noise.
RIR_MAX_SECONDS = 30.0  # longer recordings are taken for noise without decoding them (those RIRs last up to 20 s)
RIR_ONSET_SECONDS = 0.15  # an RIR's loudest sample, the direct sound, comes within this
RIR_DECAY_FRACTION = 0.75  # ... and 99% of its energy within this fraction of its length
RIR_NAME = re.compile(r"(?<![a-z])(rir|impulse)")  # "rir1.flac", "rirs/hall.wav", "impulse_response_0.wav"


def looks_like_rir(samples: np.ndarray, name: str) -> bool:
    """Whether a recording (samples (N,) at 16 kHz; name: its file name, or path within the folder given)
    is a room impulse response rather than noise (see RIR_ONSET_SECONDS and RIR_DECAY_FRACTION)."""
    if RIR_NAME.search(name.lower()):
        return True
    energy = samples.astype(np.float64) ** 2
    total = energy.sum()
    if total == 0 or np.argmax(energy) > RIR_ONSET_SECONDS * SAMPLE_RATE:
        return False
    remaining = np.cumsum(energy[::-1])[::-1] / total  # Schroeder's backward integral: 1 at the start
    decayed = np.flatnonzero(remaining < 0.01)
    return decayed.size > 0 and decayed[0] < RIR_DECAY_FRACTION * len(energy)


def is_rir_file(path: Path, source: Path) -> bool:
    name = str(path.relative_to(source)) if source.is_dir() else path.name
    if RIR_NAME.search(name.lower()):
        return True
    return audio_duration(path) <= RIR_MAX_SECONDS and looks_like_rir(load_audio(path), name)


def check_audio_sources(cfg: TrainConfig, noises: list[Path], rirs: list[Path]) -> None:
    """Refuse a --noise or --rir that holds no audio, and noise recordings that are RIRs (they would be added
    as noise: a click and a tail, not a room)."""
    for name, source, paths in (("noise", cfg.noise, noises), ("rir", cfg.rir, rirs)):
        if source and not paths:
            raise RunError(f"--{name} {source}: no audio files in it")
    if not noises:
        return
    found = [p for p in noises if is_rir_file(p, Path(cfg.noise))]
    if found:
        src, hint = Path(cfg.noise), ""
        if src.is_dir() and (src / "noise.jsonl").is_file() and (src / "rir.jsonl").is_file():
            hint = f" (this folder lists them apart: --noise {src / 'noise.jsonl'} --rir {src / 'rir.jsonl'})"
        raise RunError(f"--noise {cfg.noise}: {len(found)} of its {len(noises)} recordings look like room impulse "
                       f"responses ({', '.join(p.name for p in found[:3])}{', ...' if len(found) > 3 else ''}): "
                       f"give those with --rir, and only noise with --noise{hint}")


def augmentation_summary(cfg: TrainConfig, wave_augment: list) -> str:
    """One line: the noise recordings and room impulse responses the waveform augmentations add."""
    noise, rir = "no noise", "no reverberation"
    for aug in wave_augment:
        if isinstance(aug, augment.AddNoise):
            noise = f"{len(aug.paths)} noise recordings from {cfg.noise}" if aug.paths else "synthetic coloured noise"
        if isinstance(aug, augment.Reverb):
            rir = f"{len(aug.rirs)} room impulse responses from {cfg.rir}"
    channel = [f"{name} p={getattr(cfg, name + '_prob'):g}" for name in ("eq", "trim", "clip", "telephone", "codec")
               if getattr(cfg, name + "_prob") > 0]
    voice = f", formants (VTLP) p={cfg.vtlp_prob:g} at {cfg.vtlp_factors[0]:g}-{cfg.vtlp_factors[1]:g}"
    return f"augmentation: {noise}, {rir}, channel: {', '.join(channel) or 'none'}{voice if cfg.vtlp_prob > 0 else ''}"


def check_init_unchanged(cfg: TrainConfig, ckpt: dict) -> str | None:
    """On resume with --init-decay, whose anchor is read from the --init file again: RunError where that file is
    not the one the run started from (its sha256 in last.pt's metadata); a note where last.pt predates the check."""
    if not (cfg.init_decay and cfg.init):
        return None
    saved = ckpt.get("metadata", {}).get("init_sha256")
    if saved is None:
        return (f"note: --init-decay pulls towards --init {cfg.init} as it is now: this last.pt was written before "
                "runs kept their --init file's checksum")
    if file_digest(Path(cfg.init), "sha256") != saved:
        raise RunError(f"--resume: --init {cfg.init} is not the file the run started from (its contents changed); "
                       "--init-decay pulls towards its weights: give that file, or start a new run in another --out")
    return None
