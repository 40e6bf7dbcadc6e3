"""Log-mel features: FeatureConfig, (N,) waveform -> (T, n_mels) frames, and normalisation statistics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio
from asr.audio.energy import SILENCE_DB, frame_energies_db

ASSETS = Path(__file__).parent / "assets"
LOG_FLOOR = 1e-6  # v1 features (relative_floor 0): added to mel power before the log, silence -> log(1e-6)
LEVEL_EPS = 1e-20  # added to a frame's mean mel power before its log: digital silence stays finite
LEVEL_ATTACK = 0.2  # per 10 ms frame: how fast the running level rises to a louder frame (~50 ms)
LEVEL_RELEASE = 0.002  # per frame: how fast it falls in quieter stretches (~5 s), so pauses barely move it
# v1 features (relative_floor 0) follow the recording's level, and v1 heard speech at AN4's levels only: the speech
# level of AN4's training clips (the 95th percentile of their 10 ms frame energies) lies within V1_LEVELS_DB
# (their 1st and 99th percentiles, dBFS) around V1_LEVEL_DB (their median). A waveform whose speech level is
# outside is brought to the median before its features are made (level_guard); one inside is left as it is.
# Measured on one clip in eight of AN4 train (python bench/level_guard.py); AN4 test at -30, -20, -10, 0, +10 dB
# (python bench/robustness.py, greedy): 7.37, 7.37, 8.41, 7.12, 7.63% WER with it, 98.97, 56.02, 13.71, 7.12, 7.76%
# without.
V1_LEVELS_DB = (-34.4, -18.1)
V1_LEVEL_DB = -22.9
# Below this speech level (dBFS) nothing is brought up: in 16-bit audio what is left is mostly quantisation noise,
# which brought to speech level is heard as letters (a clip 90 dB down, brought up, read "t e e e t e e").
V1_QUIETEST_DB = -80.0
SPEECH_RANGE_DB = 30.0  # frames this far under the loudest: not speech, where speech is a small part


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000  # Hz
    n_fft: int = 400  # samples; 25 ms window at 16 kHz
    hop_length: int = 160  # samples; 10 ms at 16 kHz
    n_mels: int = 80  # mel bands
    f_min: float = 0.0  # Hz
    f_max: float = 8000.0  # Hz
    # Log floor relative to the running speech level (running_level): features are log(mel / level + floor),
    # the same at any recording level. 0: v1's absolute floor log(mel + LOG_FLOOR), which quiet audio sinks under
    # (checkpoints written before this field read as 0).
    relative_floor: float = 5e-5

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"feature_config.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"feature_config.f_max must be above f_min >= 0 and at most half the sample rate, got "
                             f"{self.f_min:g}, {self.f_max:g} at {self.sample_rate} Hz")
        if not 0 <= self.relative_floor < float("inf"):
            raise ValueError(f"feature_config.relative_floor must be a finite number >= 0, got {self.relative_floor}")


def _asset_name(cfg: FeatureConfig) -> str:
    return f"mel_{cfg.sample_rate}_{cfg.n_fft}_{cfg.n_mels}_{cfg.f_min:g}_{cfg.f_max:g}.npy"


@lru_cache(maxsize=8)
def mel_filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """librosa's Slaney mel filterbank, (n_mels, n_fft // 2 + 1). Read from a stored copy when one exists,
    because importing librosa costs seconds."""
    stored = ASSETS / _asset_name(cfg)
    if stored.exists():
        return torch.from_numpy(np.load(stored))
    import librosa

    fb = librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max
    ).astype(np.float32)
    return torch.from_numpy(fb)


def num_frames(num_samples: int, cfg: FeatureConfig = FeatureConfig()) -> int:
    """Frames that log_mel gives for a waveform of num_samples (centred frames)."""
    return 1 + num_samples // cfg.hop_length


def running_level(frame_log_power: torch.Tensor, start: float | None = None) -> torch.Tensor:
    """(T,) log mean mel power per frame -> (T,) a running estimate of the speech level in the same unit: it
    rises fast (LEVEL_ATTACK) to louder frames and falls slowly (LEVEL_RELEASE), so it follows the loud parts
    of speech and holds through pauses. Causal (frame t sees frames <= t; `start` carries the level on from
    an earlier chunk, else it starts at the first frame), and a gain on the audio shifts it by exactly that
    gain's log, so log(mel) - level does not depend on the recording level."""
    values = frame_log_power.double().tolist()
    level = values[0] if start is None else start
    out = []
    for v in values:
        level += (LEVEL_ATTACK if v > level else LEVEL_RELEASE) * (v - level)
        out.append(level)
    return torch.tensor(out, dtype=torch.float32)


def log_mel(waveform: np.ndarray | torch.Tensor, cfg: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """(N,) float waveform at cfg.sample_rate -> (T, n_mels) log-mel frames, T = 1 + N // hop_length."""
    x = torch.as_tensor(waveform, dtype=torch.float32)
    if x.ndim != 1:
        raise ValueError(f"waveform must be (N,), got {tuple(x.shape)}")
    # Centre each frame on its hop: pad n_fft // 2 zeros each side (zeros work for any length, reflect does not).
    x = torch.nn.functional.pad(x, (cfg.n_fft // 2, cfg.n_fft // 2))
    return log_mel_frames(x, cfg)[0]


@lru_cache(maxsize=8)
def hann_window(n_fft: int) -> torch.Tensor:
    """(n_fft,) the periodic Hann window (torch.hann_window), made once per size: streams ask for it every packet."""
    return torch.hann_window(n_fft)


def log_mel_frames(padded: torch.Tensor, cfg: FeatureConfig, level: float | None = None) -> tuple[torch.Tensor, float | None]:
    """The frames of (N,) samples that are already padded at the start: frame t reads samples
    [t * hop, t * hop + n_fft) -> ((T, n_mels) log-mel, the running level after the last frame). `level` carries
    the running level on from earlier frames (asr.streaming computes features chunk by chunk this way)."""
    spec = torch.stft(
        padded,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=hann_window(cfg.n_fft),
        center=False,
        return_complex=True,
    )  # (n_fft // 2 + 1, T)
    power = spec.real.square() + spec.imag.square()
    mel = mel_filterbank(cfg) @ power  # (n_mels, T)
    if cfg.relative_floor <= 0:
        return torch.log(mel + LOG_FLOOR).T.contiguous(), None  # (T, n_mels)
    levels = running_level(torch.log(mel.mean(0) + LEVEL_EPS), level)  # (T,) log power
    feats = (torch.log(mel + cfg.relative_floor * levels.exp()) - levels).T.contiguous()  # (T, n_mels)
    return feats, float(levels[-1])


class RunningStats:
    """Per-band mean and standard deviation over many (T, n_mels) feature matrices."""

    def __init__(self, n_mels: int):
        self.count = 0
        self.total = torch.zeros(n_mels, dtype=torch.float64)
        self.total_sq = torch.zeros(n_mels, dtype=torch.float64)

    def add(self, feats: torch.Tensor) -> None:
        f = feats.double()
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.total_sq += f.square().sum(0)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mean, std), each (n_mels,) float32."""
        if self.count == 0:
            raise ValueError("no frames were added to the statistics")
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean.square()).clamp(min=1e-8)
        return mean.float(), var.sqrt().float()


class Frontend:
    """Waveform -> normalised log-mel frames: (x - mean) / std per band, with statistics from training data."""

    def __init__(self, cfg: FeatureConfig, mean: torch.Tensor, std: torch.Tensor):
        if mean.shape != (cfg.n_mels,) or std.shape != (cfg.n_mels,):
            raise ValueError(f"mean/std must be ({cfg.n_mels},), got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("the normalisation statistics must be finite, each std > 0")
        self.cfg = cfg
        self.mean = mean.float()
        self.std = std.float()

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """(T, n_mels) log-mel -> (T, n_mels) normalised."""
        return (feats - self.mean) / self.std

    def __call__(self, waveform: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N,) waveform -> (T, n_mels) normalised log-mel (v1 features: its level guarded first)."""
        if self.cfg.relative_floor <= 0:
            waveform = level_guard(waveform)
        return self.normalize(log_mel(waveform, self.cfg))


def speech_level_db(waveform: np.ndarray | torch.Tensor) -> float:
    """The speech level of a waveform, dBFS: the 95th percentile of its 10 ms frame energies (asr.longform's);
    where the frames within SPEECH_RANGE_DB of the loudest are under 5% of them (a word in a long, quiet
    recording), the 95th percentile of those frames, so that the background is not taken for the speech."""
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"waveform must be (N,), got {tuple(x.shape)}")
    if not len(x):
        return SILENCE_DB
    return energies_speech_level_db(frame_energies_db(x))


def energies_speech_level_db(energies: np.ndarray) -> float:
    """speech_level_db of (F,) 10 ms frame energies (dB)."""
    loud = energies[energies >= energies.max() - SPEECH_RANGE_DB]
    return float(np.percentile(loud if len(loud) < 0.05 * len(energies) else energies, 95))


def guard_gain(level_db: float) -> float:
    """The gain level_guard gives audio whose speech level is `level_db`: to V1_LEVEL_DB from outside V1_LEVELS_DB
    (quiet or loud audio, which v1 never heard), else 1; 1 below V1_QUIETEST_DB (and for digital silence) too."""
    if V1_LEVELS_DB[0] <= level_db <= V1_LEVELS_DB[1] or level_db < V1_QUIETEST_DB:
        return 1.0
    return float(10 ** ((V1_LEVEL_DB - level_db) / 20))


def level_guard(waveform: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The waveform brought to V1_LEVEL_DB where its speech level is outside V1_LEVELS_DB, else as it is
    (guard_gain)."""
    gain = guard_gain(speech_level_db(waveform))
    return waveform if gain == 1.0 else waveform * np.float32(gain)


def normalization_stats(utts: list, cfg: FeatureConfig, max_utts: int = 2000, seed: int = 0) -> Frontend:
    """Per-band mean/std of clean log-mel features over (up to max_utts of) the training set."""
    stats = RunningStats(cfg.n_mels)
    chosen = np.random.default_rng(seed).permutation(len(utts))[:max_utts]
    for i in chosen:
        stats.add(log_mel(load_audio(utts[i].audio), cfg))
    return Frontend(cfg, *stats.mean_std())
