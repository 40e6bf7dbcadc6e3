"""Seeded augmentation callables: waveforms (noise, reverb, speed) and features (SpecAugment).

Each callable takes the input and an optional `numpy.random.Generator`; without one it draws from its own
generator, seeded at construction, so a run with the same seed repeats exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, find_audio_files, load_audio, resample


def _rng(own: np.random.Generator, rng: np.random.Generator | None) -> np.random.Generator:
    return own if rng is None else rng


def power(x: np.ndarray) -> float:
    """Mean square of a waveform."""
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of two equally long waveforms."""
    return 10.0 * np.log10(power(signal) / power(noise))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """signal + noise scaled so that 10 log10(P_signal / P_scaled_noise) == snr; both (N,)."""
    p_signal, p_noise = power(signal), power(noise)
    if p_signal == 0.0 or p_noise == 0.0:
        return signal
    gain = np.sqrt(p_signal / (p_noise * 10.0 ** (snr / 10.0)))
    return (signal + gain * noise).astype(np.float32)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) Gaussian noise with a 1/f**exponent power spectrum (0 white, 1 pink, 2 brown), unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def read_audio_list(source: str | Path) -> list[Path]:
    """A folder of audio files, or a JSONL manifest with an "audio" field per line -> list of paths."""
    from asr.data import read_jsonl

    source = Path(source)
    if source.is_dir():
        return find_audio_files(source)
    return [Path(row["audio"]) for row in read_jsonl(source, required=("audio",))]


class AddNoise:
    """Add a random stretch of a random noise recording at an SNR drawn uniformly from snr_db (dB),
    with probability p. Without recordings, adds synthetic white/pink/brown noise."""

    def __init__(self, noises: list[str | Path] | None = None, snr_db=(5.0, 25.0), p: float = 0.5, seed: int = 0):
        self.paths = list(noises or [])
        self.snr_db = snr_db
        self.p = p
        self.rng = np.random.default_rng(seed)
        self._cache: dict[int, np.ndarray] = {}

    def _recording(self, i: int) -> np.ndarray:
        if i not in self._cache:
            self._cache[i] = load_audio(self.paths[i])
        return self._cache[i]

    def noise_for(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) noise: a random stretch of a recording (looped if short), or coloured noise."""
        if not self.paths:
            return coloured_noise(n, exponent=float(rng.choice([0.0, 1.0, 2.0])), rng=rng)
        rec = self._recording(int(rng.integers(len(self.paths))))
        if rec.shape[0] < n:
            rec = np.tile(rec, n // rec.shape[0] + 1)
        start = int(rng.integers(rec.shape[0] - n + 1))
        return rec[start : start + n]

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = _rng(self.rng, rng)
        if rng.random() >= self.p:
            return wave
        snr = rng.uniform(*self.snr_db)
        return mix_at_snr(wave, self.noise_for(wave.shape[0], rng), snr)


class Reverb:
    """Convolve with a random room impulse response with probability p (output as long as the input,
    rescaled to the input's peak level)."""

    def __init__(self, rirs: list[str | Path], p: float = 0.3, seed: int = 0):
        self.rirs = [load_audio(path) for path in rirs]
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = _rng(self.rng, rng)
        if not self.rirs or rng.random() >= self.p:
            return wave
        rir = self.rirs[int(rng.integers(len(self.rirs)))]
        direct = int(np.argmax(np.abs(rir)))  # keep the direct path at time 0: no shift of the speech
        rir = rir[direct:]
        n = wave.shape[0] + rir.shape[0] - 1
        size = 1 << (n - 1).bit_length()
        wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(rir, size), size)[: wave.shape[0]]
        peak_in, peak_out = np.abs(wave).max(), np.abs(wet).max()
        return (wet * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


class SpeedPerturb:
    """Play the waveform faster or slower (pitch changes too) by a factor drawn from `factors`."""

    def __init__(self, factors=(0.9, 1.0, 1.1), seed: int = 0):
        self.factors = tuple(factors)
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        factor = float(_rng(self.rng, rng).choice(self.factors))
        if factor == 1.0:
            return wave
        # Samples recorded at SAMPLE_RATE * factor, re-read at SAMPLE_RATE: duration / factor.
        return resample(wave, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)


class SpecAugment:
    """Zero (= the mean, on normalised features) `freq_masks` bands of up to `freq_width` mel bins and
    `time_masks` stretches of up to `time_width` of the frames (a fraction) of a (T, F) feature matrix."""

    def __init__(self, freq_masks=2, freq_width=15, time_masks=2, time_width=0.05, seed: int = 0):
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.rng = np.random.default_rng(seed)

    def __call__(self, feats: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = _rng(self.rng, rng)
        feats = feats.clone()
        n_frames, n_bins = feats.shape
        for _ in range(self.freq_masks):
            width = int(rng.integers(0, self.freq_width + 1))
            start = int(rng.integers(0, max(1, n_bins - width)))
            feats[:, start : start + width] = 0.0
        max_time = int(self.time_width * n_frames)
        for _ in range(self.time_masks):
            width = int(rng.integers(0, max_time + 1))
            start = int(rng.integers(0, max(1, n_frames - width)))
            feats[start : start + width, :] = 0.0
        return feats
