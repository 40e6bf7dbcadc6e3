"""Endpointing a live stream: asr.longform.segment's energy-based voice activity, run as the audio arrives.

A 10 ms frame is speech when it is within dynamic_range_db of the speech level and min_snr_db above the
noise floor, the two levels being percentiles of the frames heard so far (the last `history_s` of them),
as segment.speech_threshold takes them over a whole file (the same values: the history is kept sorted as it
goes, so that renewing them every 100 ms reads two entries instead of sorting up to 6000; where speech is under a
fifth of the history, segment.speech_level's floor from the loudest frames is not taken: min_snr_db over the noise
floor decides there). Once min_speech_s
of speech has been heard, a pause of endpoint_s ends the utterance: `accept` returns the sample at which the
pause reached that length.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass

import numpy as np

from asr.audio.energy import ENERGY_FRAME, ENERGY_FRAME_SECONDS, frame_energies_db
from asr.longform.segment import SegmentConfig, speech_threshold_from

THRESHOLD_EVERY = 10  # frames (100 ms) between renewals of the speech threshold from the history


@dataclass(frozen=True)
class EndpointConfig:
    endpoint_s: float = 0.8  # a pause this long after speech ends an utterance (AN4 has 0.3-0.6 s pauses inside)
    min_speech_s: float = 0.1  # speech must last this long (in all) before a pause can end the utterance
    history_s: float = 60.0  # the speech level and noise floor come from this much of the latest audio
    max_utterance_s: float = 60.0  # an utterance this long ends here, pause or not (bounds a stream's memory)
    segment: SegmentConfig = SegmentConfig()  # dynamic range, SNR and percentiles, as for files


class SortedHistory:
    """The last `size` values, in arrival order and in sorted order: adding one costs two binary searches and two
    moves inside a list, and a percentile is read from two entries, equal to np.percentile's over the values
    (float32, its default linear interpolation)."""

    def __init__(self, size: int):
        self.size = size
        self.arrived: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self.sorted)

    def add(self, value: float) -> None:
        self.arrived.append(value)
        insort(self.sorted, value)
        if len(self.arrived) > self.size:
            del self.sorted[bisect_left(self.sorted, self.arrived.popleft())]

    def percentile(self, q: float) -> float:
        """As float(np.percentile(np.float32(values), q)): the same float32 arithmetic, in the same order."""
        at = (len(self.sorted) - 1) * (q / 100)
        lo = math.floor(at)
        a, b, t = np.float32(self.sorted[lo]), np.float32(self.sorted[min(lo + 1, len(self.sorted) - 1)]), at - lo
        return float(b - (b - a) * (1 - t)) if t >= 0.5 else float(a + (b - a) * t)


class Endpointer:
    """accept((N,) samples at 16 kHz) -> the samples (from the stream's start) where utterances ended."""

    def __init__(self, cfg: EndpointConfig = EndpointConfig()):
        self.cfg = cfg
        self.history = SortedHistory(max(1, round(cfg.history_s / ENERGY_FRAME_SECONDS)))
        self.rest = np.zeros(0, np.float32)  # samples short of a whole frame
        self.frames = 0  # whole frames seen
        self.speech_frames = 0  # speech frames in the current utterance
        self.pause_frames = 0  # frames of the pause going on
        self.threshold = np.inf  # dB, renewed every THRESHOLD_EVERY frames

    def accept(self, samples: np.ndarray) -> list[int]:
        """(N,) samples -> the stream's sample positions where a pause has ended an utterance (often none)."""
        joined = np.concatenate([self.rest, np.asarray(samples, np.float32).reshape(-1)])
        whole = len(joined) // ENERGY_FRAME * ENERGY_FRAME
        self.rest = joined[whole:]
        ends = []
        for energy in frame_energies_db(joined[:whole], highpass=True).tolist():
            self.history.add(energy)
            self.frames += 1
            if self._is_speech(energy):
                self.speech_frames += 1
                self.pause_frames = 0
                continue
            self.pause_frames += 1
            heard = self.speech_frames * ENERGY_FRAME_SECONDS >= self.cfg.min_speech_s
            if heard and self.pause_frames * ENERGY_FRAME_SECONDS >= self.cfg.endpoint_s:
                ends.append(self.frames * ENERGY_FRAME)
                self.speech_frames = 0
        return ends

    def _is_speech(self, energy: float) -> bool:
        if self.frames % THRESHOLD_EVERY == 1 or len(self.history) < THRESHOLD_EVERY:
            seg = self.cfg.segment
            self.threshold = speech_threshold_from(self.history.percentile(seg.speech_percentile),
                                          self.history.percentile(seg.floor_percentile), seg)
        return energy > self.threshold
