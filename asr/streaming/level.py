"""A stream's level guard for v1's features (relative_floor 0), which follow the recording's level: quiet speech
brought up to AN4's level, as asr.features.level_guard brings up a quiet file from its whole speech level, which a
stream never has. Decided frame by frame (10 ms), so the same samples get the same gains in any packets.

    level = StreamLevel()
    out = level.accept(samples)   # (M,) samples, gained: those of the whole frames decided so far
    rest = level.finish()         # what is left, gained

A frame of speech is SPEECH_DB over the quietest tenth of the frames heard (digital silence, a microphone's first
zeros, left out). From a stream's first speech frame on, its frames are held until the gain is known:
- at AN4's levels: IN_RANGE_FRAMES frames at V1_LEVELS_DB[0] or louder within the last RECENT_S: gain 1 (such audio
  streams exactly as without a guard; an early gain is undone as soon as the speech reaches those levels);
- else, once HOLD_S of frames have been held, if MIN_SOUND_FRAMES of them sounded (SOUND_DB over the floor), the
  gain file mode would give the speech level of the last LEVEL_HISTORY_S heard (asr.features.guard_gain, taken every
  REFRESH_FRAMES), from then on; if fewer did (a breath or a click before speech at AN4's levels), gain 1, and the
  next speech frame starts another hold. A single click is not IN_RANGE_FRAMES; a loud stretch ends the gain only
  while it is recent.
The gain is never below 1: loud audio is left as it is (file mode brings it down), and so is quiet speech heard while
a far louder sound (a loud talker, a bang) is in the level's history. Its limits, as measured by a review: clicks
coming faster than IN_RANGE_FRAMES in RECENT_S (typing) keep the gain at 1; after one sound 20 dB over a steady noise
(0.15 s of it or more), the noise is brought up as file mode would bring up a recording of it; speech from a stream's
very first frame waits for a quieter frame to tell it from, so its start may stay quiet.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from asr.audio.energy import ENERGY_FRAME, ENERGY_FRAME_SECONDS, SILENCE_DB, frame_energies_db
from asr.features import V1_LEVELS_DB, energies_speech_level_db, guard_gain

SPEECH_DB = 20.0  # dB over the quietest tenth of the sounding frames heard: a frame of speech
HOLD_S = 0.5  # s of frames held from a stream's first speech frame, at most, until its gain is known
SOUND_DB = 10.0  # dB over the floor: a frame that sounds (speech's quieter parts too)
MIN_SOUND_FRAMES = 15  # frames that sound (0.15 s) a hold must hear to bring audio up: fewer are a breath or a click
IN_RANGE_FRAMES = 3  # frames at AN4's speech levels within RECENT_S: the stream is at them (a click is one or two)
RECENT_S = 2.0  # s: how long loud frames count
LEVEL_HISTORY_S = 30.0  # s of frames whose energies give the speech level
SOUNDING_DB = SILENCE_DB + 1.0  # frames at or below this are digital silence (exact zeros)
REFRESH_FRAMES = 10  # the floor and the speech level are taken from the history every this many frames (0.1 s)


class StreamLevel:
    def __init__(self):
        self.energies: deque[float] = deque(maxlen=round(LEVEL_HISTORY_S / ENERGY_FRAME_SECONDS))
        self.recent: deque[bool] = deque(maxlen=round(RECENT_S / ENERGY_FRAME_SECONDS))  # frame at AN4's levels?
        self.rest = np.zeros(0, np.float32)  # samples short of a whole frame
        self.held: list[np.ndarray] = []  # whole frames from the first speech frame on, until the gain is known
        self.speaking = False  # a speech frame has come
        self.decided = False  # the first gain after it is known: nothing is held from then on
        self.gain = 1.0  # of the last frame released
        self.frames = 0  # frames heard
        self.floor, self.level_gain = np.inf, 1.0  # from the history (_refresh)

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """(N,) samples at 16 kHz -> the samples of the whole frames now decided, gained (held ones first)."""
        joined = np.concatenate([self.rest, np.asarray(samples, np.float32)])
        whole = len(joined) // ENERGY_FRAME * ENERGY_FRAME
        self.rest = joined[whole:]
        out = []
        frames = joined[:whole].reshape(-1, ENERGY_FRAME)  # (F, 160)
        for frame, energy in zip(frames, frame_energies_db(joined[:whole])):
            gain = self._hear(float(energy))
            if gain is None:
                self.held.append(frame)
                continue
            out += [f * np.float32(gain) for f in self.held] + [frame * np.float32(gain)]
            self.held, self.gain = [], gain
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        """What is held and the last partial frame, gained as the speech heard so far says."""
        if self.held:
            self._refresh()
        gain = self.gain if not self.held else self.level_gain
        rest = [*self.held, self.rest]
        self.held, self.rest = [], np.zeros(0, np.float32)
        return np.concatenate(rest) * np.float32(gain)

    def _hear(self, energy: float) -> float | None:
        """One more frame's energy (dB) -> its gain, or None: hold it."""
        self.energies.append(energy)
        self.recent.append(energy >= V1_LEVELS_DB[0])
        if sum(self.recent) >= IN_RANGE_FRAMES:
            self.decided = self.decided or self.speaking
            return 1.0
        self.frames += 1
        if self.frames % REFRESH_FRAMES == 1:  # the floor and the level from the history: every 0.1 s, by frame count
            self._refresh()
        if not self.speaking:
            if not (np.isfinite(energy) and energy > SOUNDING_DB and energy >= self.floor + SPEECH_DB):
                return 1.0
            self.speaking = True
        held = len(self.held) + 1
        if not self.decided and held < round(HOLD_S / ENERGY_FRAME_SECONDS):
            return None
        if not self.decided and self._sounding_frames(held) < MIN_SOUND_FRAMES:  # a breath: weigh the next one anew
            self.speaking = False
            return 1.0
        self.decided = True
        return self.level_gain

    def _sounding_frames(self, last: int) -> int:
        """How many of the last `last` frames heard sound (SOUND_DB over the floor)."""
        e = np.fromiter(self.energies, np.float32, len(self.energies))[-last:]
        return int(np.sum(np.isfinite(e) & (e >= self.floor + SOUND_DB)))

    def _refresh(self) -> None:
        """The floor (the quietest tenth of the sounding frames) and the gain their speech level asks for: only ever
        up (a level above AN4's, a loud talker or a bang, leaves the audio as it is)."""
        e = np.fromiter(self.energies, np.float32, len(self.energies))
        sounding = e[np.isfinite(e) & (e > SOUNDING_DB)]  # digital silence (exact zeros) and broken samples left out
        if not len(sounding):
            self.floor, self.level_gain = np.inf, 1.0
            return
        self.floor = float(np.percentile(sounding, 10))
        self.level_gain = max(1.0, guard_gain(energies_speech_level_db(sounding)))
