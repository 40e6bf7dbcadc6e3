"""A stream's 10 ms energies, kept from the current utterance's start, so that its words' edges snap to the speech
as file mode's do (asr.longform.timestamps.snap_to_speech, asr.longform.segment.voiced_mask): CTC spikes are narrow
and often early; the speech energy around them gives words their extent.

    voicing.accept(samples)                       # as the audio arrives (16 kHz)
    voiced = voicing.voiced(first_hop, end_hop)   # (end - first,) bool, one per feature hop, for timed_words
    voicing.forget_before(hop)                    # once an utterance is over

The level ("clearly voiced": within word_range_db of the speech level) comes from the last `history_s` of audio,
as the endpointer's levels do.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from asr.audio.energy import ENERGY_FRAME_SECONDS, frame_energies_db
from asr.longform.segment import SegmentConfig, voiced_mask, voiced_threshold


class Voicing:
    def __init__(self, hop: int, cfg: SegmentConfig = SegmentConfig(), history_s: float = 60.0):
        self.hop, self.cfg = hop, cfg  # samples per feature hop (10 ms), the levels' settings
        self.history: deque[float] = deque(maxlen=max(1, round(history_s / ENERGY_FRAME_SECONDS)))
        self.rest = np.zeros(0, np.float32)  # samples short of a whole hop
        self.energies: list[float] = []  # dB of each whole hop from hop `first` on
        self.first = 0

    def accept(self, samples: np.ndarray) -> None:
        joined = np.concatenate([self.rest, samples])
        whole = len(joined) // self.hop * self.hop
        self.rest = joined[whole:]
        energies = frame_energies_db(joined[:whole], self.hop, highpass=True).tolist()
        self.energies += energies
        self.history.extend(energies)

    def voiced(self, first: int, end: int) -> np.ndarray | None:
        """Which hops first..end - 1 of the stream are clearly speech (hops not yet heard whole are left out);
        None before any audio."""
        if not self.history:
            return None
        level = voiced_threshold(np.fromiter(self.history, np.float64, len(self.history)), self.cfg)
        energies = np.array(self.energies[max(0, first - self.first) : max(0, end - self.first)])
        return voiced_mask(energies, level, self.hop)

    def forget_before(self, hop: int) -> None:
        drop = min(len(self.energies), max(0, hop - self.first))
        del self.energies[:drop]
        self.first += drop
