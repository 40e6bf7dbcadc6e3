"""What every door hands on: float32 mono at 16 kHz. The one set of limits on audio coming in (rates, channels,
sample values, length), the error every door reports, and the conversions to the target format."""

from __future__ import annotations

import sys

import numpy as np

SAMPLE_RATE = 16000  # Hz, what every other module expects
MIN_RATE = 8000  # Hz; the lowest sample rate accepted (telephone audio); files, pipes and streams alike
MAX_RATE = 384000  # Hz; the highest sample rate accepted (studio audio)
MAX_CHANNELS = 64  # channels in one file or stream at most
MAX_AMPLITUDE = 1000.0  # |sample| at most: full scale is 1.0; a float file may go past it, not 60 dB past it
MAX_SECONDS = 4 * 3600.0  # s; the longest audio loaded in one piece (read_blocks streams longer files)

_warned: set[str] = set()  # messages already printed by warn_once
# a warning's or an error's message in one line: a name's tabs and line breaks written \t, \n, \r (a backslash stays:
# people read these lines, and an ARPA file's \data\ or a Windows path would double)
ONE_LINE = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


class AudioError(Exception):
    """Audio that could not be read or is outside the limits; the message starts with the file or stream's name."""


def check_format(name: str, rate: float, channels: int, what: str = "the header says") -> None:
    """Raise AudioError unless `rate` (Hz) and `channels` are within MIN_RATE..MAX_RATE and 1..MAX_CHANNELS."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{name}: {what} {rate:g} Hz; sample rates of {MIN_RATE}..{MAX_RATE} Hz are read")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name}: {what} {channels} channels; 1..{MAX_CHANNELS} channels are read")


def check_samples(samples: np.ndarray, name: str, start_s: float | None = None, rate: int | None = None) -> np.ndarray:
    """Reject empty, non-finite or absurdly large samples (beyond MAX_AMPLITUDE); returns the samples unchanged.
    With the time of the first sample (`start_s`) and the rate, the message says when the first bad one comes."""
    if samples.size == 0:
        raise AudioError(f"{name}: no audio samples (empty or zero-length file)")
    frames = samples.reshape(len(samples), -1)  # (n, channels)
    finite = np.isfinite(frames).all(axis=1)
    if not finite.all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples{_at(finite, start_s, rate)}")
    peak = float(np.abs(samples).max())
    if peak > MAX_AMPLITUDE:
        within = (np.abs(frames) <= MAX_AMPLITUDE).all(axis=1)
        raise AudioError(f"{name}: samples reach {peak:.3g}{_at(within, start_s, rate)}; audio lies within +-1 (at "
                         f"most +-{MAX_AMPLITUDE:g} is read): not audio, or wrongly scaled")
    return samples


def _at(good: np.ndarray, start_s: float | None, rate: int | None) -> str:
    """' (at T s)': the time of the first frame that is not good; '' without a start and a rate."""
    if start_s is None or not rate:
        return ""
    return f" (at {start_s + int(np.argmin(good)) / rate:.1f} s)"


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) -> (N,) float32 by averaging channels."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) at orig_sr -> (M,) at target_sr, with soxr (high quality, fast)."""
    if orig_sr == target_sr:
        return samples
    import soxr  # comes with librosa; imported here so that `import asr.audio` stays cheap

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def warn_once(message: str) -> None:
    """Print `warning: <message>` on stderr the first time this process sees the message (a file read twice,
    as long files are by asr.longform, is named once; each affected file is named): one line, a name's tabs and line
    breaks written \\t, \\n, \\r, as error lines write them (asr.outputs.error_line)."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message.translate(ONE_LINE)}", file=sys.stderr)
