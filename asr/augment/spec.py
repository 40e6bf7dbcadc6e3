"""Feature augmentation: SpecAugment's frequency and time masks on normalised log-mel frames."""

from __future__ import annotations

import numpy as np
import torch

from asr.augment.acoustic import pick_rng


class SpecAugment:
    """Zero (= the mean, on normalised features) `freq_masks` bands of up to `freq_width` mel bins and
    `time_masks` stretches of up to `time_width` of the frames (a fraction) of a (T, F) feature matrix."""

    def __init__(self, freq_masks=2, freq_width=15, time_masks=2, time_width=0.05, seed: int = 0):
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.rng = np.random.default_rng(seed)

    def __call__(self, feats: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = pick_rng(self.rng, rng)
        feats = feats.clone()
        n_frames, n_bins = feats.shape
        for _ in range(self.freq_masks):
            width = int(rng.integers(0, self.freq_width + 1))
            start = int(rng.integers(0, max(0, n_bins - width) + 1))  # every start that fits, the last one too
            feats[:, start : start + width] = 0.0
        max_time = int(self.time_width * n_frames)
        for _ in range(self.time_masks):
            width = int(rng.integers(0, max_time + 1))
            start = int(rng.integers(0, max(0, n_frames - width) + 1))
            feats[start : start + width, :] = 0.0
        return feats
