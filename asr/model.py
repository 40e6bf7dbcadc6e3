"""The acoustic model: (features (B, T, n_mels), lengths (B,)) -> (log_probs (B, T', V), lengths (B,)).

Conv front-end with 4x time subsampling, stacked bidirectional LSTMs, a linear layer to the vocabulary.
A LayerNorm after the front-end and after every LSTM layer makes CTC leave its all-blank plateau within
a few dozen steps instead of hundreds (measured on AN4).
Padding never changes a result: padded frames are zeroed after every convolution, and the backward
LSTM reads each sequence reversed within its own length, so an utterance alone and inside a padded
batch gives the same log-probs, at the speed of plain padded batches (no PackedSequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asr.features import FeatureConfig

SUBSAMPLING = 4  # feature frames per output frame: two convolutions of time stride 2


def output_frame_seconds(features: FeatureConfig) -> float:
    """Seconds per output frame (log-prob row): SUBSAMPLING feature hops, 0.04 s at a 10 ms hop."""
    return SUBSAMPLING * features.hop_length / features.sample_rate


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80  # input feature size
    vocab_size: int = 29  # output classes, blank included
    conv_channels: int = 32  # channels of each of the two stride-2 convolutions
    hidden: int = 320  # LSTM units per direction
    layers: int = 4  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # between LSTM layers, training only


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames after the two (kernel 3, stride 2, padding 1) convolutions: ceil(ceil(L / 2) / 2)."""
    for _ in range(2):
        lengths = (lengths + 1) // 2
    return lengths


def time_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each (T, D) sequence of a (B, T, D) batch within its own length; padding stays in place."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


class BiLSTMLayer(nn.Module):
    """One bidirectional LSTM layer over padded batches, exact for every sequence length."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T, 2 * hidden)."""
        fwd, _ = self.forward_lstm(x)
        bwd, _ = self.backward_lstm(reverse_padded(x, lengths))
        return torch.cat([fwd, reverse_padded(bwd, lengths)], dim=-1)


class AcousticModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.conv_channels
        self.conv1 = nn.Conv2d(1, c, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1)
        freq_out = (((cfg.n_mels + 1) // 2) + 1) // 2
        self.proj = nn.Linear(c * freq_out, cfg.hidden)
        self.proj_norm = nn.LayerNorm(cfg.hidden)
        self.lstms = nn.ModuleList(
            BiLSTMLayer(cfg.hidden if i == 0 else 2 * cfg.hidden, cfg.hidden) for i in range(cfg.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(2 * cfg.hidden) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * cfg.hidden, cfg.vocab_size)

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, T, F) -> (B, C', ceil(T / 2), ceil(F / 2)), frames past each length zeroed."""
        x = torch.relu(conv(x))
        lengths = (lengths + 1) // 2
        return x * time_mask(lengths, x.shape[2])[:, None, :, None], lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, n_mels) normalised, lengths (B,) -> log_probs (B, T', V), lengths (B,)."""
        if features.ndim != 3 or features.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"features must be (B, T, {self.cfg.n_mels}), got {tuple(features.shape)}")
        x = features * time_mask(lengths, features.shape[1])[:, :, None]  # padding is zero, whatever it held
        x = x[:, None]  # (B, 1, T, F)
        x, lengths = self._conv(self.conv1, x, lengths)
        x, lengths = self._conv(self.conv2, x, lengths)  # (B, C, T', F')
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * F')
        x = self.proj_norm(self.proj(x))  # (B, T', hidden)
        for i, (lstm, norm) in enumerate(zip(self.lstms, self.norms)):
            if i > 0:
                x = self.dropout(x)
            x = norm(lstm(x, lengths))  # (B, T', 2 * hidden)
        logits = self.out(self.dropout(x))  # (B, T', V)
        return logits.float().log_softmax(dim=-1), lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
