"""Acoustic augmentation: how fast the speaker talks (speed), the room (reverberation) and what else is
heard (noise at an SNR measured on the speech)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asr.audio import SAMPLE_RATE, find_audio_files, load_audio, resample


SPEECH_FRAME = 320  # samples: 20 ms frames for the speech power
SPEECH_TOP_DB = 30.0  # speech frames: within this of the loudest frames (their 95th percentile of power)
SILENT_POWER = 1e-12  # mean square below this (-120 dBFS) is digital silence, not noise
NOISE_TRIES = 4  # excerpts drawn before an utterance goes without noise (a recording may be silent in stretches)
FIRST_ARRIVAL = 0.1  # of an RIR's peak amplitude: its first sample this loud is the direct sound's arrival


def pick_rng(own: np.random.Generator, rng: np.random.Generator | None) -> np.random.Generator:
    """The generator to draw from: the one passed in, else the callable's own."""
    return own if rng is None else rng


def power(x: np.ndarray) -> float:
    """Mean square of a waveform."""
    return float(np.mean(np.square(x, dtype=np.float64)))


def speech_power(x: np.ndarray) -> float:
    """Mean square over the frames that hold speech: the 20 ms frames within SPEECH_TOP_DB of the loudest ones
    (their 95th percentile, so one click does not decide), the way speech SNR is measured (not over the pauses,
    which would put the SNR of a clip with long silences too low)."""
    n = x.shape[0] // SPEECH_FRAME
    if n < 2:
        return power(x)
    frames = np.mean(np.square(x[: n * SPEECH_FRAME].reshape(n, SPEECH_FRAME), dtype=np.float64), axis=1)  # (n,)
    loud = frames >= np.percentile(frames, 95) * 10.0 ** (-SPEECH_TOP_DB / 10.0)
    return float(frames[loud].mean())


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: the signal's speech_power over the noise's power."""
    return 10.0 * np.log10(speech_power(signal) / power(noise))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """signal + noise scaled so that snr_db(signal, scaled noise) == snr: the SNR on the speech frames; both (N,)."""
    p_signal, p_noise = speech_power(signal), power(noise)
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
    """Add a random stretch of a random noise recording at an SNR drawn uniformly from snr_db (dB, on the
    speech frames), with probability p. A stretch that is digital silence is drawn again (NOISE_TRIES in all,
    then the utterance stays clean). Without recordings, adds synthetic white/pink/brown noise.
    The recordings are decoded once, here (the shared 32 are about 100 MB as float32): DataLoader workers,
    forked from the process that built this, share them instead of decoding a recording per utterance."""

    def __init__(self, noises: list[str | Path] | None = None, snr_db=(5.0, 25.0), p: float = 0.5, seed: int = 0):
        self.paths = list(noises or [])
        self.recordings = [load_audio(path) for path in self.paths]
        self.snr_db = snr_db
        self.p = p
        self.rng = np.random.default_rng(seed)

    def noise_for(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) noise: a random stretch of a recording (looped if short), or coloured noise."""
        if not self.recordings:
            return coloured_noise(n, exponent=float(rng.choice([0.0, 1.0, 2.0])), rng=rng)
        rec = self.recordings[int(rng.integers(len(self.recordings)))]
        if rec.shape[0] < n:
            rec = np.tile(rec, n // rec.shape[0] + 1)
        start = int(rng.integers(rec.shape[0] - n + 1))
        return rec[start : start + n]

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p:
            return wave
        snr = rng.uniform(*self.snr_db)
        for _ in range(NOISE_TRIES):
            noise = self.noise_for(wave.shape[0], rng)
            if power(noise) >= SILENT_POWER:
                return mix_at_snr(wave, noise, snr)
        return wave


def first_arrival(rir: np.ndarray) -> int:
    """The sample where the direct sound arrives: the first as loud as FIRST_ARRIVAL of the peak. (The peak
    itself can be a later reflection: in 6 of the 16 shared RIRs it is, up to 38 ms and 34% of the energy on.)"""
    return int(np.argmax(np.abs(rir) >= FIRST_ARRIVAL * np.abs(rir).max()))


class Reverb:
    """Convolve with a random room impulse response with probability p: the response from its direct sound
    on (first_arrival), so the speech keeps its timing and its direct sound; output as long as the input,
    rescaled to the input's peak level."""

    def __init__(self, rirs: list[str | Path], p: float = 0.3, seed: int = 0):
        self.rirs = [load_audio(path) for path in rirs]
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if not self.rirs or rng.random() >= self.p:
            return wave
        rir = self.rirs[int(rng.integers(len(self.rirs)))]
        rir = rir[first_arrival(rir):]  # the direct sound at time 0: no shift of the speech
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
        factor = float(pick_rng(self.rng, rng).choice(self.factors))
        if factor == 1.0:
            return wave
        # Samples recorded at SAMPLE_RATE * factor, re-read at SAMPLE_RATE: duration / factor.
        return resample(wave, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)
