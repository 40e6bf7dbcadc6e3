"""Setting up a training run: its augmentation, and the recogniser it starts from
(a new one, one to fine-tune (--init), or the one in OUT/last.pt when resuming) with the optimiser state."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import torch

from asr import augment
from asr.checkpoint import V1_FEATURES, read_checkpoint, recognizer_from_state
from asr.data import Utterance, collate
from asr.download import file_digest
from asr.features import FeatureConfig, normalization_stats
from asr.model import AcousticModel
from asr.recognizer import Recognizer
from asr.text import Vocab
from asr.training import distributed
from asr.training.checks import (RunError, check_audio_sources, check_init_unchanged, check_resume, flag,
                                 other_dev_set)
from asr.training.config import TrainConfig
from asr.training.distributed import DistContext
from asr.training.resume import drop_rows_past
from asr.training.stopping import leave_stops_to_the_trainer


def build_augmentations(cfg: TrainConfig) -> tuple[list, list]:
    """(waveform augmentations, feature augmentations) as switched on in cfg. Raises RunError for a noise
    source that holds RIRs, or a noise or RIR source without audio (checks.augmentation_summary says them)."""
    wave, feats = [], []
    rirs = augment.read_audio_list(cfg.rir) if cfg.rir and cfg.rir_prob > 0 else []
    noises = augment.read_audio_list(cfg.noise) if cfg.noise and cfg.noise_prob > 0 else []
    check_audio_sources(cfg, noises, rirs)
    if cfg.speed_perturb:
        wave.append(augment.SpeedPerturb(cfg.speed_factors, seed=cfg.seed))
    if rirs:
        wave.append(augment.Reverb(rirs, p=cfg.rir_prob, seed=cfg.seed))
    if cfg.noise_prob > 0:
        wave.append(augment.AddNoise(noises, snr_db=cfg.snr_db, p=cfg.noise_prob, seed=cfg.seed))
    # Then the channel: a microphone colours the recording, an editor trims it to the words, it clips, then it
    # travels down a phone line or through a codec.
    if cfg.eq_prob > 0:
        wave.append(augment.Equalize(p=cfg.eq_prob, seed=cfg.seed))
    if cfg.trim_prob > 0:
        wave.append(augment.Trim(p=cfg.trim_prob, seed=cfg.seed))
    if cfg.clip_prob > 0:
        wave.append(augment.Clip(p=cfg.clip_prob, seed=cfg.seed))
    if cfg.telephone_prob > 0:
        wave.append(augment.Telephone(p=cfg.telephone_prob, seed=cfg.seed))
    if cfg.codec_prob > 0:
        wave.append(augment.Codec(p=cfg.codec_prob, seed=cfg.seed))
    if cfg.vtlp_prob > 0:  # first: the masks hide part of another speaker, not part of the warp's edges
        feats.append(augment.VocalTractWarp(cfg.features.f_min, cfg.features.f_max, cfg.vtlp_factors, p=cfg.vtlp_prob,
                                            seed=cfg.seed))
    if cfg.spec_augment:
        feats.append(augment.SpecAugment(cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width, seed=cfg.seed))
    return wave, feats


def _worker_init(_):
    torch.set_num_threads(1)
    leave_stops_to_the_trainer()  # the trainer saves last.pt on SIGINT/SIGTERM, then ends its workers


def make_loader(dataset, sampler, cfg: TrainConfig, device: torch.device) -> torch.utils.data.DataLoader:
    """The training DataLoader: cfg.num_workers processes (one torch thread each) compute features ahead."""
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers, worker_init_fn=_worker_init,
        persistent_workers=False, prefetch_factor=4 if cfg.num_workers else None, pin_memory=device.type == "cuda")


def fastest_speed_factor(cfg: TrainConfig) -> float:
    """The fastest speed the training audio is played at (1.0 without speed perturbation): the fewest frames."""
    return max(cfg.speed_factors) if cfg.speed_perturb else 1.0


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    """The autocast dtype: cfg.amp_dtype, where "auto" means bf16 unless the GPU lacks it (then fp16)."""
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if cfg.amp_dtype == "auto":
        return torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
    if cfg.amp_dtype not in choices:
        raise ValueError(f"amp_dtype must be auto, bf16 or fp16, got {cfg.amp_dtype!r}")
    return choices[cfg.amp_dtype]


def check_fine_tuning(cfg: TrainConfig) -> None:
    """Raises RunError where cfg.freeze_bottom, cfg.init_decay or cfg.init_features cannot be: without cfg.init
    (frozen random weights, weights pulled towards nothing, or a new front end for weights that are new anyway:
    "new" would do nothing), a freeze past the model's blocks (the front end and cfg.model.layers BiLSTM
    layers; with_init gives cfg the init's shape), a pull past the start (lr * init_decay over 1)."""
    if cfg.init_features == "new" and not cfg.init:
        raise RunError("--init-features new needs --init: it moves that model's weights to this run's features (a "
                       "model trained from scratch has them already)")
    if cfg.init_decay and not cfg.init:
        raise RunError("--init-decay needs --init: it pulls the weights back towards those of the model fine-tuned")
    if cfg.lr * cfg.init_decay > 1:
        raise RunError(f"--init-decay {cfg.init_decay:g} with --lr {cfg.lr:g}: a step would move the weights past "
                       f"the --init model's; at most {math.floor(1 / cfg.lr)} (lr x init-decay <= 1)")
    if cfg.freeze_bottom and not cfg.init:
        raise RunError("--freeze-bottom needs --init: it keeps a trained model's lower blocks, and without --init "
                       "they would stay random")
    if cfg.freeze_bottom > cfg.model.layers + 1:
        raise RunError(f"--freeze-bottom {cfg.freeze_bottom}: the model has {cfg.model.layers + 1} blocks (the front "
                       f"end and {cfg.model.layers} BiLSTM layers); at most {cfg.model.layers + 1}")


def freeze_bottom(model: AcousticModel, cfg: TrainConfig) -> None:
    """Keep the weights of the model's bottom cfg.freeze_bottom blocks (the front end: convolutions and projection;
    then each BiLSTM layer with its LayerNorm) out of training: requires_grad off, so the optimiser never holds
    them. Raises RunError as check_fine_tuning does."""
    check_fine_tuning(cfg)
    blocks = [[model.conv1, model.conv2, model.proj, model.proj_norm],
              *([lstm, norm] for lstm, norm in zip(model.lstms, model.norms))]
    for block in blocks[: cfg.freeze_bottom]:
        for module in block:
            module.requires_grad_(False)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the matrices and convolution kernels only (ndim >= 2), as nanoGPT does:
    biases and LayerNorm gains are not pulled towards zero."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def init_anchor(model: AcousticModel, cfg: TrainConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """With cfg.init_decay: each trained weight with its value in cfg.init, read from that file (a resumed run is
    pulled towards the model it fine-tunes, not towards where it resumed); else nothing."""
    if not cfg.init_decay:
        return []
    start = recognizer_from_state(read_checkpoint(cfg.init)).model.state_dict()
    return [(p, start[name].to(p.device, p.dtype)) for name, p in model.named_parameters() if p.requires_grad]


def pull_towards(anchor: list[tuple[torch.Tensor, torch.Tensor]], fraction: float) -> None:
    """Each weight moved `fraction` of the way back to its anchor: decoupled from the gradient, as AdamW's weight
    decay is from it, but towards the weights fine-tuned rather than towards zero (L2-SP, Li et al. 2018)."""
    with torch.no_grad():
        for weight, start in anchor:
            weight.lerp_(start, fraction)


def with_init(cfg: TrainConfig) -> TrainConfig:
    """cfg with the features and the model shape of cfg.init, the checkpoint it starts from (fine-tuning keeps
    them; dropout and the streaming chunks are this run's own). Unchanged without cfg.init."""
    if not cfg.init:
        return cfg
    if cfg.init_features not in ("init", "new"):
        raise ValueError(f"init_features must be init or new, got {cfg.init_features!r}")
    ckpt = read_checkpoint(cfg.init)
    shape = {k: ckpt["model_config"][k] for k in ("hidden", "layers", "conv_channels")}
    features = FeatureConfig(**{**V1_FEATURES, **ckpt["feature_config"]})
    if cfg.init_features == "new":  # e.g. v1's weights moved to the level-independent front end
        features = cfg.features
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **shape), features=features)


def initial_recognizer(cfg: TrainConfig, vocab: Vocab, device: torch.device, frontend=None) -> Recognizer:
    """cfg.init's recogniser, its model rebuilt with this run's model settings (with_init gave cfg its shape);
    with its own front end, or `frontend` (this run's features and normalisation, cfg.init_features "new")."""
    init = recognizer_from_state(read_checkpoint(cfg.init))
    if list(init.vocab.tokens) != list(vocab.tokens):
        raise RunError(f"--init {cfg.init}: its vocabulary of {len(init.vocab.tokens)} tokens is not this run's "
                       f"{len(vocab.tokens)} ({flag('tokenizer', cfg.tokenizer)})")
    model = AcousticModel(dataclasses.replace(cfg.model, n_mels=cfg.features.n_mels, vocab_size=len(vocab)))
    model.load_state_dict(init.model.state_dict())
    metadata = {"init": str(cfg.init), "init_sha256": file_digest(Path(cfg.init), "sha256")}  # check_init_unchanged
    return Recognizer(model.to(device), frontend or init.frontend, init.vocab, metadata)


def build_or_resume(cfg: TrainConfig, dist: DistContext, vocab: Vocab,
                    train_utts: list[Utterance]) -> tuple[Recognizer, dict | None]:
    """The recogniser to train and the saved training state: from OUT/last.pt with --resume (when it exists),
    else cfg.init's model (fine-tuning), else a new model with normalisation statistics from the training set
    (computed once, by rank 0); and None."""
    device = torch.device(dist.device)
    last = Path(cfg.out) / "last.pt"
    if cfg.resume and last.exists():
        ckpt = read_checkpoint(last)
        if "train_state" not in ckpt:  # best.pt or an exported model copied there: weights, no run to continue
            raise RunError(f"{last}: holds a model but no training state (is it a best.pt or an exported model?); "
                           f"only a last.pt written by asr.train can be resumed")
        said = check_resume(cfg, ckpt, vocab.tokens, last)  # raises RunError where cfg contradicts last.pt
        said += [note] if (note := check_init_unchanged(cfg, ckpt)) else []
        state = dict(ckpt["train_state"])
        if math.isfinite(state["best_dev_wer"]) and (dev := other_dev_set(cfg, ckpt)) is not None:  # one set's WERs
            said.append(f"note: --dev {cfg.dev} lists other utterances than the run's --dev {dev}: best.pt is chosen "
                        f"again among the epochs scored on it (the run's best, {state['best_dev_wer']:.2f}% on the "
                        "other set, is not compared)")
            state["best_dev_wer"] = float("inf")
        if dist.is_main:  # rank 0 alone writes files
            said += [note] if (note := drop_rows_past(last.parent / "metrics.jsonl", state["epoch"])) else []
        if dist.is_main:
            print(f"resuming {last}: {state['epoch']} epochs and {state['batch_in_epoch']} batches done, "
                  f"step {state['step']}", *said, sep="\n", file=sys.stderr)
        return recognizer_from_state(ckpt, device), state
    if cfg.init and cfg.init_features == "init":
        return initial_recognizer(cfg, vocab, device), None
    stats = normalization_stats(train_utts, cfg.features, seed=cfg.seed) if dist.is_main else None
    frontend = distributed.broadcast(stats, dist)
    if cfg.init:
        return initial_recognizer(cfg, vocab, device, frontend), None
    model_cfg = dataclasses.replace(cfg.model, n_mels=cfg.features.n_mels, vocab_size=len(vocab))
    return Recognizer(AcousticModel(model_cfg).to(device), frontend, vocab, {}), None
