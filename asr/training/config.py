"""TrainConfig: every setting of a training run, one comment per field (asr.train turns flags into it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.features import FeatureConfig
from asr.model import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    train: str  # training manifest (JSONL)
    dev: str  # dev manifest: per-epoch WER and best-checkpoint selection
    out: str  # experiment folder: last.pt, best.pt, metrics.jsonl, curves.png
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    epochs: int = 60  # passes over the training set; the learning rate decays to its floor at the last
    max_minutes: float = 0.0  # stop, resumably, once training took this much wall time over all resumes (0: no limit)
    batch_seconds: float = 120.0  # padded audio seconds per batch
    lr: float = 1e-3  # peak learning rate (AdamW)
    final_lr_ratio: float = 0.02  # cosine decay ends at lr * this
    warmup_steps: int = 200  # linear warm-up from 0 over this many optimiser steps (then decay over the epochs)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 5.0  # max global gradient norm
    seed: int = 0  # everything random derives from it
    noise: str = ""  # noise folder or JSONL manifest; "" -> synthetic coloured noise
    noise_prob: float = 0.4  # probability of adding noise to an utterance (0 disables)
    snr_db: tuple[float, float] = (5.0, 30.0)  # SNR range of added noise, dB
    rir: str = ""  # room impulse responses (folder or JSONL); "" -> no reverberation
    rir_prob: float = 0.2  # probability of reverberation when rir is given
    eq_prob: float = 0.0  # probability of another microphone's colour: a smooth random gain over frequency, +-10 dB
    trim_prob: float = 0.0  # probability of an editor's trim to the words (a soft first or last sound cut too)
    clip_prob: float = 0.05  # probability of driving an utterance into clipping (0 to 12 dB over full scale)
    telephone_prob: float = 0.15  # probability of a telephone line: 200-400 to 3000-3700 Hz, 8 kHz, 8-bit G.711 for 2/3
    codec_prob: float = 0.15  # probability of a lossy codec round trip: MP3, Opus or Vorbis at a random bitrate
    speed_perturb: bool = True  # play each utterance at a speed drawn from speed_factors
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)  # f plays the audio f times as fast (duration / f)
    vtlp_prob: float = 0.0  # probability of vocal tract length perturbation: another speaker's formants
    vtlp_factors: tuple[float, float] = (0.9, 1.1)  # VTLP's warp factor: drawn from [low, high] (> 1: higher formants)
    spec_augment: bool = True  # SpecAugment time and frequency masks
    freq_masks: int = 2  # SpecAugment frequency masks
    freq_width: int = 15  # widest frequency mask, mel bins
    time_masks: int = 2  # SpecAugment time masks
    time_width: float = 0.05  # widest time mask, fraction of the utterance
    num_workers: int = 1  # DataLoader processes computing features (0: in the training process)
    device: str = "cpu"  # "cpu" or "cuda"
    amp: bool = False  # autocast (bf16 where supported, see amp_dtype), on cuda or on the cpu
    resume: bool = False  # continue from out/last.pt
    overwrite: bool = False  # start again in an out folder that holds a run: remove its last.pt, best.pt, metrics...
    accum_steps: int = 1  # batches (per process) whose gradients add up to one optimiser step
    amp_dtype: str = "auto"  # with amp: "bf16", "fp16" (loss scaled by a GradScaler), "auto": bf16 where supported
    tokenizer: str = ""  # SentencePiece model file: BPE pieces as targets; "" -> characters
    init: str = ""  # checkpoint to start from (its weights, features, normalisation, vocabulary); "" -> new weights
    average_last: int = 0  # >= 2: after the last epoch, the mean weights of the last N epochs become best.pt if better
    init_features: str = "init"  # with init: "init" keeps its features; "new": this run's, normalised on train
    freeze_bottom: int = 0  # with init: bottom blocks kept as they are (1: conv front end, 2: + lowest BiLSTM, ...)
    init_decay: float = 0.0  # with init: after each step every trained weight moves lr * this of the way back to init's
