"""The energy of audio in 10 ms frames, in dB: what the segmenter (asr.longform.segment) and the streaming
endpointer and voicing (asr.streaming) read speech from, and the level guard of v1 features (asr.features).

    frame_energies_db(samples)                  # (F,) dB, one per ENERGY_FRAME samples
    frame_energies_db(samples, highpass=True)   # the same without DC and mains hum: what speech is read from
    stream_energies_db(blocks, highpass=True)   # the same over blocks read one at a time, and the samples counted

With `highpass`, the best quadratic through each frame's samples is taken out before its energy is measured
(DETREND_DEGREE): a DC offset goes whole, 50 / 60 Hz hum loses 32 / 17 dB, 100 Hz 4 dB, 150 Hz 2.4 dB (a low
voice's pitch), 200 Hz 0.7 dB, and speech's formants (300 Hz and up) 0.3 dB or less (sines, 2 s of frames). It is a filter within each frame, with no state: blocks and streams give the
same energies as the whole waveform. An offset or hum counted as energy raises the noise floor the segmenter and the
endpointer measure speech against (0.03 full scale: -30 dBFS, over quiet speech). The level guard of v1 features
(asr.features) keeps the plain energies, the measure its levels were calibrated with.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import numpy as np

from asr.audio import SAMPLE_RATE

ENERGY_FRAME = 160  # samples; one energy frame = 10 ms at 16 kHz (the feature hop)
ENERGY_FRAME_SECONDS = ENERGY_FRAME / SAMPLE_RATE  # 0.01 s
SILENCE_DB = -100.0  # energy of digital silence (the floor added before the log)
DETREND_DEGREE = 2  # highpass: the polynomial of this degree fitted to each frame is removed (0: the mean only)
MIN_FIT = 16  # samples: a shorter (last, partial) frame has only its mean removed


def frame_energies_db(samples: np.ndarray, frame: int = ENERGY_FRAME, highpass: bool = False) -> np.ndarray:
    """(N,) -> (ceil(N / frame),) mean-square energy per `frame` samples (10 ms) in dB (digital silence: -100 dB);
    with `highpass`, of what is left of each frame once its best DETREND_DEGREE polynomial is taken out."""
    n = len(samples)
    whole = n // frame * frame
    parts = [np.asarray(samples[:whole], np.float64).reshape(-1, frame)]  # (F, frame)
    if n > whole:
        parts.append(np.asarray(samples[whole:], np.float64)[None])  # the last, partial frame: (1, n % frame)
    power = np.concatenate([_mean_square(p, highpass) for p in parts]) if n else np.zeros(0)
    return (10.0 * np.log10(power + 10 ** (SILENCE_DB / 10))).astype(np.float32)


def _mean_square(frames: np.ndarray, highpass: bool) -> np.ndarray:
    """(F, L) -> (F,) mean square; with `highpass`, of each frame less its least-squares polynomial of degree
    DETREND_DEGREE: the total less the fitted part's (the basis is orthonormal), so no (F, L) residual is made. A
    frame shorter than MIN_FIT samples (a last, partial one) has its mean taken out only: a quadratic fits a few
    samples whole."""
    total = np.einsum("ij,ij->i", frames, frames)
    if highpass and frames.shape[1] >= MIN_FIT:
        total = total - np.square(frames @ _trend_basis(frames.shape[1])).sum(1)
    elif highpass:
        total = total - frames.sum(1) ** 2 / frames.shape[1]
    return np.maximum(total, 0.0) / frames.shape[1]


@lru_cache(maxsize=8)
def _trend_basis(length: int) -> np.ndarray:
    """(length, k) orthonormal basis of the polynomials of degree <= DETREND_DEGREE over `length` samples."""
    t = np.linspace(-1.0, 1.0, length)
    return np.linalg.qr(np.vander(t, min(length, DETREND_DEGREE + 1), increasing=True))[0]


def stream_energies_db(blocks: Iterable[np.ndarray], highpass: bool = False) -> tuple[np.ndarray, int]:
    """Frame energies of a stream of blocks as if they were one waveform -> ((F,) dB, total samples)."""
    energies, rest, total = [], np.zeros(0, np.float32), 0
    for block in blocks:
        total += len(block)
        joined = np.concatenate([rest, block])
        whole = len(joined) // ENERGY_FRAME * ENERGY_FRAME
        energies.append(frame_energies_db(joined[:whole], highpass=highpass))
        rest = joined[whole:]
    if len(rest):
        energies.append(frame_energies_db(rest, highpass=highpass))
    return (np.concatenate(energies) if energies else np.zeros(0, np.float32)), total
