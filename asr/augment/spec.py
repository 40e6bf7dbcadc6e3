"""Feature augmentation on normalised log-mel frames: SpecAugment's frequency and time masks, and vocal tract
length perturbation (another speaker's formants)."""

from __future__ import annotations

import numpy as np
import torch

from asr.augment.acoustic import pick_rng


class SpecAugment:
    """Zero (= the mean, on normalised features) `freq_masks` bands of up to `freq_width` mel bins and
    `time_masks` stretches of up to `time_width` of the frames (a fraction) of a (T, F) feature matrix."""

    def __init__(self, freq_masks=2, freq_width=15, time_masks=2, time_width=0.05, seed: int = 0):
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.rng = np.random.default_rng(seed)

    def __call__(self, feats: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = pick_rng(self.rng, rng)
        feats = feats.clone()
        n_frames, n_bins = feats.shape
        for _ in range(self.freq_masks):
            width = int(rng.integers(0, self.freq_width + 1))
            start = int(rng.integers(0, max(0, n_bins - width) + 1))  # every start that fits, the last one too
            feats[:, start : start + width] = 0.0
        max_time = int(self.time_width * n_frames)
        for _ in range(self.time_masks):
            width = int(rng.integers(0, max_time + 1))
            start = int(rng.integers(0, max(0, n_frames - width) + 1))
            feats[start : start + width, :] = 0.0
        return feats


# The Slaney mel scale of librosa's filterbank (asr.features), written out here: importing librosa costs seconds,
# which is why asr.features reads a stored filterbank too.
SLANEY_LINEAR_HZ = 1000.0  # the Slaney mel scale: linear below this
SLANEY_HZ_PER_MEL = 200.0 / 3  # Hz per mel below SLANEY_LINEAR_HZ
SLANEY_LOG_STEP = np.log(6.4) / 27.0  # log-Hz per mel above it
VTLP_BOUNDARY = 0.6  # of f_max: below it frequencies scale by the warp factor, above it they bend back to f_max


def hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Frequencies in Hz -> the Slaney mel scale (linear to 1 kHz, logarithmic above)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / SLANEY_HZ_PER_MEL
    log = SLANEY_LINEAR_HZ / SLANEY_HZ_PER_MEL + np.log(np.maximum(hz, 1e-9) / SLANEY_LINEAR_HZ) / SLANEY_LOG_STEP
    return np.where(hz < SLANEY_LINEAR_HZ, linear, log)


def slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    knee = SLANEY_LINEAR_HZ / SLANEY_HZ_PER_MEL
    return np.where(mel < knee, mel * SLANEY_HZ_PER_MEL, SLANEY_LINEAR_HZ * np.exp(SLANEY_LOG_STEP * (mel - knee)))


class VocalTractWarp:
    """Vocal tract length perturbation (VTLP, Jaitly & Hinton 2013): another speaker's formants, with the same
    timing and pitch track. With probability p, a factor a drawn uniformly from `factors` (low, high) moves what a
    (T, n_mels) feature matrix holds at f Hz to a * f (measured from f_min: f_min + a * (f - f_min)), up to
    VTLP_BOUNDARY of the band, and bends the rest back so that f_max stays put (a > 1: a shorter vocal tract,
    higher formants). Works on the mel bands of the filterbank that `f_min`, `f_max` and n_mels describe,
    interpolating linearly between neighbouring bands."""

    def __init__(self, f_min: float, f_max: float, factors=(0.9, 1.1), p: float = 0.5, seed: int = 0):
        low, high = factors
        if not 0 < low <= high:
            raise ValueError(f"VTLP factors must be 0 < low <= high, got {low}, {high}")
        self.f_min, self.f_max, self.factors, self.p = f_min, f_max, (low, high), p
        self.rng = np.random.default_rng(seed)

    def band_centres(self, n_mels: int) -> np.ndarray:
        """(n_mels,) the centre frequency of each mel band, Hz (librosa's Slaney filterbank)."""
        edges = np.linspace(hz_to_slaney_mel(self.f_min), hz_to_slaney_mel(self.f_max), n_mels + 2)
        return slaney_mel_to_hz(edges[1:-1])

    def source_bands(self, factor: float, n_mels: int) -> np.ndarray:
        """(n_mels,) for each output band, the fractional input band it reads: the inverse of the warp."""
        centres = self.band_centres(n_mels)
        above, top = centres - self.f_min, self.f_max - self.f_min  # Hz above the bottom of the band
        corner = VTLP_BOUNDARY * top * min(factor, 1.0)  # where the output stops being a scaled input
        bent = corner / factor + (above - corner) * (top - corner / factor) / (top - corner)
        source_hz = self.f_min + np.where(above <= corner, above / factor, bent)
        return np.clip(np.interp(source_hz, centres, np.arange(n_mels)), 0, n_mels - 1)

    def __call__(self, feats: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p:
            return feats
        factor = float(rng.uniform(*self.factors))
        where = torch.as_tensor(self.source_bands(factor, feats.shape[1]), dtype=torch.float32, device=feats.device)
        below = where.floor().long()  # (n_mels,) fractional band indices in fp32: bf16 would round them to halves
        above = (below + 1).clamp(max=feats.shape[1] - 1)
        weight = where - below  # (n_mels,) of the band above
        warped = feats[:, below].float() * (1 - weight) + feats[:, above].float() * weight  # (T, n_mels)
        return warped.to(feats.dtype)
