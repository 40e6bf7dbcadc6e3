"""The energy of audio in 10 ms frames, in dB: what the segmenter (asr.longform.segment) and the streaming
endpointer and voicing (asr.streaming) read speech from, and the level guard of v1 features (asr.features).

    frame_energies_db(samples)            # (F,) dB, one per ENERGY_FRAME samples
    stream_energies_db(blocks)            # the same over blocks read one at a time, and the samples counted
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from asr.audio import SAMPLE_RATE

ENERGY_FRAME = 160  # samples; one energy frame = 10 ms at 16 kHz (the feature hop)
ENERGY_FRAME_SECONDS = ENERGY_FRAME / SAMPLE_RATE  # 0.01 s
SILENCE_DB = -100.0  # energy of digital silence (the floor added before the log)


def frame_energies_db(samples: np.ndarray, frame: int = ENERGY_FRAME) -> np.ndarray:
    """(N,) -> (ceil(N / frame),) mean-square energy per `frame` samples (10 ms) in dB (digital silence: -100 dB)."""
    n = len(samples)
    padded = np.zeros(-(-n // frame) * frame, dtype=np.float64)
    padded[:n] = samples
    frames = padded.reshape(-1, frame)  # (F, frame)
    counts = np.full(len(frames), frame)
    if n % frame:
        counts[-1] = n % frame  # the last, partial frame: mean over the samples it has
    return (10.0 * np.log10((frames**2).sum(1) / counts + 10 ** (SILENCE_DB / 10))).astype(np.float32)


def stream_energies_db(blocks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """Frame energies of a stream of blocks as if they were one waveform -> ((F,) dB, total samples)."""
    energies, rest, total = [], np.zeros(0, np.float32), 0
    for block in blocks:
        total += len(block)
        joined = np.concatenate([rest, block])
        whole = len(joined) // ENERGY_FRAME * ENERGY_FRAME
        energies.append(frame_energies_db(joined[:whole]))
        rest = joined[whole:]
    if len(rest):
        energies.append(frame_energies_db(rest))
    return (np.concatenate(energies) if energies else np.zeros(0, np.float32)), total
