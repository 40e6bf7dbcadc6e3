"""Endpointing a live stream: asr.longform.segment's energy-based voice activity, run as the audio arrives.

A 10 ms frame is speech when it is within dynamic_range_db of the speech level and min_snr_db above the
noise floor, the two levels being percentiles of the frames heard so far (the last `history_s` of them),
as segment.speech_threshold takes them over a whole file. Once min_speech_s of speech has been heard, a
pause of endpoint_s ends the utterance: `accept` returns the sample at which the pause reached that length.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from asr.longform.segment import ENERGY_FRAME, ENERGY_FRAME_SECONDS, SegmentConfig, frame_energies_db, speech_threshold

THRESHOLD_EVERY = 10  # frames (100 ms) between renewals of the speech threshold from the history


@dataclass(frozen=True)
class EndpointConfig:
    endpoint_s: float = 0.8  # a pause this long after speech ends an utterance (AN4 has 0.3-0.6 s pauses inside)
    min_speech_s: float = 0.1  # speech must last this long (in all) before a pause can end the utterance
    history_s: float = 60.0  # the speech level and noise floor come from this much of the latest audio
    max_utterance_s: float = 60.0  # an utterance this long ends here, pause or not (bounds a stream's memory)
    segment: SegmentConfig = SegmentConfig()  # dynamic range, SNR and percentiles, as for files


class Endpointer:
    """accept((N,) samples at 16 kHz) -> the samples (from the stream's start) where utterances ended."""

    def __init__(self, cfg: EndpointConfig = EndpointConfig()):
        self.cfg = cfg
        self.history: deque[float] = deque(maxlen=max(1, round(cfg.history_s / ENERGY_FRAME_SECONDS)))
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
        for energy in frame_energies_db(joined[:whole]).tolist():
            self.history.append(energy)
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
            recent = np.fromiter(self.history, np.float32, len(self.history))
            self.threshold = speech_threshold(recent, self.cfg.segment)
        return energy > self.threshold
