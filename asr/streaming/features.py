"""Features chunk by chunk: FeatureStream turns samples, as they arrive, into the normalised log-mel frames that
asr.features gives for the whole waveform (the same frames: centred STFT frames, the causal running level). One
exception: v1's features (relative_floor 0) take file mode's level guard (asr.features.level_guard) from the whole
waveform's speech level, which a stream does not have yet: StreamLevel brings quiet speech up from what it has
heard so far (then the frames are close to the file's, not equal); audio at AN4's levels is left exactly as it is."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from asr.audio.energy import ENERGY_FRAME, ENERGY_FRAME_SECONDS, frame_energies_db
from asr.features import V1_LEVELS_DB, Frontend, energies_speech_level_db, guard_gain, log_mel_frames

SPEECH_EVIDENCE_DB = 20.0  # dB over a stream's quietest tenth of 10 ms frames: a frame of speech
SPEECH_EVIDENCE_S = 0.2  # s of speech frames a stream must have heard before its level guard may bring it up
LEVEL_HISTORY_S = 30.0  # s of audio whose energies give a stream's speech level


class StreamLevel:
    """A stream's level guard (v1's features): quiet speech brought up to AN4's level, as asr.features.level_guard
    brings up a quiet file. A stream does not know its whole level in advance, so it decides once it has heard
    speech (10 ms frames SPEECH_EVIDENCE_DB over its quietest tenth): as soon as a frame reaches the quietest level of
    AN4's speech (V1_LEVELS_DB[0]) the gain is 1; after SPEECH_EVIDENCE_S of speech without one, it is guard_gain of
    the speech level of the last LEVEL_HISTORY_S heard (and follows it from then on). FeatureStream holds the samples
    from the first speech frame until then (at most SPEECH_EVIDENCE_S), so the first word gets the gain too. Audio
    at AN4's levels therefore streams exactly as without a guard, silence or noise is never brought up for speech,
    and loud audio is left as it is (file mode brings it down; a stream would have to decide on a word's peaks)."""

    def __init__(self):
        self.energies: deque[float] = deque(maxlen=round(LEVEL_HISTORY_S / ENERGY_FRAME_SECONDS))
        self.rest = np.zeros(0, np.float32)  # samples short of a whole 10 ms frame
        self.in_range = False  # a frame reached AN4's speech levels: gain 1 for good

    def hear(self, samples: np.ndarray) -> float | None:
        """(N,) more samples (16 kHz) heard -> the gain for what is held and these, or None: not decided yet (speech
        has begun, too little of it to tell its level)."""
        if self.in_range:
            return 1.0
        joined = np.concatenate([self.rest, samples])
        whole = len(joined) // ENERGY_FRAME * ENERGY_FRAME
        self.energies.extend(frame_energies_db(joined[:whole]).tolist())
        self.rest = joined[whole:]
        if not self.energies:
            return 1.0
        e = np.fromiter(self.energies, np.float32, len(self.energies))
        if e.max() >= V1_LEVELS_DB[0]:
            self.in_range = True
            return 1.0
        speech = int((e >= np.percentile(e, 10) + SPEECH_EVIDENCE_DB).sum())
        if speech == 0:
            return 1.0
        if speech * ENERGY_FRAME_SECONDS < SPEECH_EVIDENCE_S:
            return None
        return guard_gain(energies_speech_level_db(e))

    def settle(self) -> float:
        """The gain for what is held when the stream ends undecided: from the little speech there is."""
        e = np.fromiter(self.energies, np.float32, len(self.energies))
        return 1.0 if self.in_range or not len(e) else guard_gain(energies_speech_level_db(e))


class FeatureStream:
    """Samples (float32 at the model's rate) in, normalised (T, n_mels) frames out, as soon as each is final.

        stream = FeatureStream(rec.frontend)
        frames = stream.accept(samples)   # (T, n_mels), T >= 0
        rest = stream.finish()            # the frames that read past the last sample (zero padded)
    """

    def __init__(self, frontend: Frontend):
        self.frontend = frontend
        self.cfg = frontend.cfg
        self.buffer = torch.zeros(self.cfg.n_fft // 2)  # samples from the next frame's first; starts at the pad
        self.level: float | None = None  # running level after the last frame given
        self.samples = 0  # samples accepted
        self.frames = 0  # frames given
        self.finished = False
        self.guard = StreamLevel() if self.cfg.relative_floor <= 0 else None  # v1's features: the level guard
        self.held = torch.zeros(0)  # samples the guard holds until it knows their gain

    def accept(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N,) samples -> the (T, n_mels) frames they complete."""
        if self.finished:
            raise RuntimeError("FeatureStream.accept after finish")
        x = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
        self.samples += x.numel()
        if self.guard is not None and x.numel():
            gain = self.guard.hear(x.numpy())
            if gain is None:
                self.held = torch.cat([self.held, x])
                return torch.zeros(0, self.cfg.n_mels)
            x = torch.cat([self.held, x]) * gain if gain != 1.0 or self.held.numel() else x
            self.held = torch.zeros(0)
        self.buffer = torch.cat([self.buffer, x])
        return self._frames()

    def finish(self) -> torch.Tensor:
        """The last frames, read with n_fft // 2 zeros after the last sample, as log_mel pads; 1 + N // hop in all."""
        self.finished = True
        if self.held.numel():
            self.buffer = torch.cat([self.buffer, self.held * self.guard.settle()])
            self.held = torch.zeros(0)
        self.buffer = torch.cat([self.buffer, torch.zeros(self.cfg.n_fft // 2)])
        return self._frames()

    def _frames(self) -> torch.Tensor:
        hop, n_fft = self.cfg.hop_length, self.cfg.n_fft
        count = (self.buffer.numel() - n_fft) // hop + 1 if self.buffer.numel() >= n_fft else 0
        if count <= 0:
            return torch.zeros(0, self.cfg.n_mels)
        used = self.buffer[: (count - 1) * hop + n_fft]
        feats, self.level = log_mel_frames(used, self.cfg, self.level)  # (count, n_mels)
        self.buffer = self.buffer[count * hop :]
        self.frames += count
        return self.frontend.normalize(feats)
