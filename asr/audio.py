"""Load any audio file as float32 mono at 16 kHz. The one module that touches audio files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000  # Hz, what every other module expects
MAX_SECONDS = 4 * 3600.0  # refuse to load more than 4 hours in one piece (use read_blocks for longer)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".sph", ".mp3", ".opus", ".aiff", ".aif", ".au")


class AudioError(Exception):
    """A file could not be read as audio; the message starts with the path."""


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) -> (N,) by averaging channels."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) at orig_sr -> (M,) at target_sr, with soxr (high quality, fast)."""
    if orig_sr == target_sr:
        return samples
    import soxr  # comes with librosa; imported here so that `import asr.audio` stays cheap

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def check_samples(samples: np.ndarray, name: str) -> np.ndarray:
    """Reject empty or non-finite audio; returns the samples unchanged."""
    if samples.size == 0:
        raise AudioError(f"{name}: no audio samples (empty or zero-length file)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return samples


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read wav/flac/ogg/sph/... at any rate and channel count; returns (N,) float32 at `sample_rate`."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
        if info.frames / max(info.samplerate, 1) > MAX_SECONDS:
            raise AudioError(
                f"{path}: {info.frames / info.samplerate:.0f} s is longer than the {MAX_SECONDS:.0f} s limit"
            )
        samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError... on bad files
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise AudioError(f"{path}: not readable as audio ({reason})") from e
    samples = check_samples(to_mono(samples), str(path))
    return resample(samples, sr, sample_rate)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header, without decoding."""
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise AudioError(f"{path}: not readable as audio ({e})") from e
    return info.frames / info.samplerate
