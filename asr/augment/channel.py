"""Channel augmentation: the microphone and what the recording goes through after it. A microphone's colour (a
smooth random gain over frequency), an editor's trim to the words, a level driven into clipping, a telephone line
(its band, 8 kHz, G.711 mu-law or A-law), a lossy codec (MP3, Opus, Vorbis, written and read back by libsndfile in
memory). Each keeps the waveform's 16 kHz rate, and all but the trim its length."""

from __future__ import annotations

import numpy as np

from asr.audio import SAMPLE_RATE, codec_round_trip, resample
from asr.augment.acoustic import pick_rng

PHONE_RATE = 8000  # Hz: narrow-band telephony
MU = 255.0  # G.711 mu-law
A = 87.6  # G.711 A-law
CODEC_LEVELS = 256  # 8-bit code words
EQ_LOW_HZ = 50.0  # the lowest frequency a microphone's colour (Equalize) draws a gain for
TRIM_FRAME = SAMPLE_RATE // 100  # samples: the 10 ms frames whose energy Trim compares
EDGE_HZ = 100.0  # width of the cosine taper at each edge of the telephone band
# name -> (libsndfile format, subtype). libsndfile's compression level 0..1 picks the bitrate: at 16 kHz speech,
# MP3 64 -> 18 kbit/s over 0..0.99, Opus 260 -> 9, Vorbis 72 -> 26 (1.0 is refused for MP3).
CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "vorbis": ("OGG", "VORBIS")}


def _same_length(x: np.ndarray, n: int) -> np.ndarray:
    """x cut or zero-padded to n samples, float32."""
    x = x[:n] if x.shape[0] >= n else np.pad(x, (0, n - x.shape[0]))
    return x.astype(np.float32, copy=False)


def _quantise(y: np.ndarray) -> np.ndarray:
    """Companded values in [-1, 1] -> the nearest of CODEC_LEVELS code words (what 8 bits can hold)."""
    step = 2.0 / (CODEC_LEVELS - 1)
    return np.round((np.clip(y, -1.0, 1.0) + 1.0) / step) * step - 1.0


def mulaw_round_trip(x: np.ndarray) -> np.ndarray:
    """(N,) in [-1, 1] -> encoded as 8-bit G.711 mu-law (continuous curve) and decoded."""
    y = _quantise(np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU))
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def alaw_round_trip(x: np.ndarray) -> np.ndarray:
    """(N,) in [-1, 1] -> encoded as 8-bit G.711 A-law (continuous curve) and decoded."""
    ax = np.abs(x)
    big = ax >= 1.0 / A
    y = np.where(big, 1.0 + np.log(np.maximum(A * ax, 1.0)), A * ax) / (1.0 + np.log(A))
    y = np.abs(_quantise(np.sign(x) * y))
    big = y >= 1.0 / (1.0 + np.log(A))
    out = np.where(big, np.exp(y * (1.0 + np.log(A)) - 1.0), y * (1.0 + np.log(A))) / A
    return (np.sign(x) * out).astype(np.float32)


def band_pass(x: np.ndarray, low_hz: float, high_hz: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) -> (N,) with what lies outside [low_hz, high_hz] removed (FFT mask with EDGE_HZ cosine tapers)."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / rate)
    rise = np.clip((freqs - (low_hz - EDGE_HZ)) / EDGE_HZ, 0.0, 1.0)
    fall = np.clip(((high_hz + EDGE_HZ) - freqs) / EDGE_HZ, 0.0, 1.0)
    gain = np.sin(0.5 * np.pi * rise) * np.sin(0.5 * np.pi * fall)
    return np.fft.irfft(spectrum * gain, x.shape[0]).astype(np.float32)


class Equalize:
    """With probability p, colour the waveform as another microphone, preamp or room tone would: a gain over
    frequency drawn at `points` frequencies spaced evenly on a log scale from EQ_LOW_HZ to the Nyquist frequency,
    each uniformly within +-max_db, interpolated between them (in dB over log frequency) and held beyond; the
    power is kept, so the level stays the recording's."""

    def __init__(self, max_db: float = 10.0, points: int = 6, p: float = 0.3, seed: int = 0):
        if max_db < 0 or points < 2:
            raise ValueError(f"Equalize needs max_db >= 0 and points >= 2, got max_db={max_db}, points={points}")
        self.max_db, self.points, self.p = max_db, points, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p or wave.shape[0] == 0:
            return wave
        at_hz = np.geomspace(EQ_LOW_HZ, SAMPLE_RATE / 2, self.points)
        gain_db = rng.uniform(-self.max_db, self.max_db, self.points)
        spectrum = np.fft.rfft(wave)
        freqs = np.fft.rfftfreq(wave.shape[0], 1.0 / SAMPLE_RATE)
        gain = 10.0 ** (np.interp(np.log(np.maximum(freqs, 1.0)), np.log(at_hz), gain_db) / 20.0)
        out = np.fft.irfft(spectrum * gain, wave.shape[0])
        before, after = float(np.mean(np.square(wave, dtype=np.float64))), float(np.mean(np.square(out)))
        return (out * (np.sqrt(before / after) if after > 0 else 1.0)).astype(np.float32)


class Trim:
    """With probability p, cut the silence around the speech off, as an editor trimming clips to their words
    does (many corpora are cut so, e.g. the Free Spoken Digit Dataset): the kept span runs from the first to the
    last 10 ms frame (the last one may be short) within `db` (drawn uniformly, dB) of the loudest, widened by a
    lead drawn from lead_ms at each end. A soft first or last sound under that threshold goes too, as it does in
    such clips; the transcript stays, so a cut can leave CTC too few frames for it, which the training loss counts
    as zero (zero_infinity), as for any utterance that cannot fit. Digital silence is left alone."""

    def __init__(self, db=(15.0, 35.0), lead_ms=(0.0, 30.0), p: float = 0.3, seed: int = 0):
        if min(db) < 0 or min(lead_ms) < 0:
            raise ValueError(f"Trim needs db and lead_ms >= 0 (dB under the loudest frame, ms), got {db}, {lead_ms}")
        self.db, self.lead_ms, self.p = db, lead_ms, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p:
            return wave
        padded = np.pad(wave, (0, -wave.shape[0] % TRIM_FRAME))  # the last, short frame too
        frames = padded.reshape(-1, TRIM_FRAME)  # (F, 10 ms)
        energy = np.mean(np.square(frames, dtype=np.float64), axis=1)
        if frames.shape[0] == 0 or energy.max() == 0.0:
            return wave
        loud = np.flatnonzero(energy >= energy.max() * 10.0 ** (-rng.uniform(*self.db) / 10.0))
        lead, tail = (int(rng.uniform(*self.lead_ms) * SAMPLE_RATE / 1000) for _ in range(2))
        first, last = max(0, loud[0] * TRIM_FRAME - lead), min(wave.shape[0], (loud[-1] + 1) * TRIM_FRAME + tail)
        return wave[first:last].astype(np.float32, copy=False)


class Clip:
    """With probability p, raise the level until the peak is gain_db (drawn uniformly, dB) above full scale and
    clip at +-1: a recording made too loud. Silence is left alone."""

    def __init__(self, gain_db=(0.0, 12.0), p: float = 0.05, seed: int = 0):
        self.gain_db, self.p = gain_db, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        peak = float(np.abs(wave).max(initial=0.0))
        if rng.random() >= self.p or peak == 0.0:
            return wave
        gain = 10.0 ** (rng.uniform(*self.gain_db) / 20.0) / peak
        return np.clip(wave * gain, -1.0, 1.0).astype(np.float32)


class Telephone:
    """With probability p, send the waveform down a phone line: band-pass [low, high] Hz (each edge drawn from
    low_hz / high_hz), to 8 kHz and back, and for a companded share (mulaw or alaw, drawn from `laws`, "linear"
    for none) at a peak level drawn from peak_db (dBFS), encoded in 8 bits and decoded."""

    def __init__(self, low_hz=(200.0, 400.0), high_hz=(3000.0, 3700.0), laws=("linear", "mulaw", "alaw"),
                 peak_db=(-20.0, -1.0), p: float = 0.1, seed: int = 0):
        self.low_hz, self.high_hz, self.laws, self.peak_db, self.p = low_hz, high_hz, tuple(laws), peak_db, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p:
            return wave
        low, high = rng.uniform(*self.low_hz), rng.uniform(*self.high_hz)
        law = self.laws[int(rng.integers(len(self.laws)))]
        narrow = resample(band_pass(wave, low, high), SAMPLE_RATE, PHONE_RATE)  # (N / 2,)
        peak = float(np.abs(narrow).max(initial=0.0))
        if law != "linear" and peak > 0.0:
            gain = 10.0 ** (rng.uniform(*self.peak_db) / 20.0) / peak
            narrow = (mulaw_round_trip if law == "mulaw" else alaw_round_trip)(narrow * gain) / gain
        return _same_length(resample(narrow.astype(np.float32), PHONE_RATE, SAMPLE_RATE), wave.shape[0])


class Codec:
    """With probability p, encode the waveform with a lossy codec drawn from `codecs` (CODECS' names) at a
    libsndfile compression level drawn from `level` (0 best .. 0.99 smallest) and decode it again."""

    def __init__(self, codecs=("mp3", "opus", "vorbis"), level=(0.5, 0.99), p: float = 0.1, seed: int = 0):
        unknown = sorted(set(codecs) - set(CODECS))
        if unknown:
            raise ValueError(f"codecs must be among {sorted(CODECS)}, got {unknown}")
        self.codecs, self.level, self.p = tuple(codecs), level, p
        self.rng = np.random.default_rng(seed)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = pick_rng(self.rng, rng)
        if rng.random() >= self.p:
            return wave
        name = self.codecs[int(rng.integers(len(self.codecs)))]
        level = float(rng.uniform(*self.level))
        file_format, subtype = CODECS[name]
        return _same_length(codec_round_trip(wave, file_format, subtype, level), wave.shape[0])
