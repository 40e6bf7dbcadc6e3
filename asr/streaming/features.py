"""Features chunk by chunk: FeatureStream turns samples, as they arrive, into the normalised log-mel frames that
asr.features gives for the whole waveform (the same frames: centred STFT frames, the causal running level). For
v1's features (relative_floor 0) the samples pass a level guard first (asr.streaming.level.StreamLevel, as file mode's
asr.features.level_guard): at AN4's levels the frames are the file's exactly; quiet speech is brought up from what
the stream has heard, so its frames are close to the file's, not equal."""

from __future__ import annotations

import numpy as np
import torch

from asr.features import Frontend, log_mel_frames
from asr.streaming.level import StreamLevel


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

    def accept(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N,) samples -> the (T, n_mels) frames they complete."""
        if self.finished:
            raise RuntimeError("FeatureStream.accept after finish")
        x = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
        self.samples += x.numel()
        if self.guard is not None:  # whole 10 ms frames, gained; a partial one or held ones come later
            x = torch.from_numpy(self.guard.accept(x.numpy()))
        self.buffer = torch.cat([self.buffer, x])
        return self._frames()

    def finish(self) -> torch.Tensor:
        """The last frames, read with n_fft // 2 zeros after the last sample, as log_mel pads; 1 + N // hop in all."""
        self.finished = True
        if self.guard is not None:
            self.buffer = torch.cat([self.buffer, torch.from_numpy(self.guard.finish())])
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
