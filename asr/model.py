"""The acoustic model: (features (B, T, n_mels), lengths (B,)) -> (log_probs (B, T', V), lengths (B,)).

Conv front-end with 4x time subsampling, stacked bidirectional LSTMs, a linear layer to the vocabulary.
A LayerNorm after the front-end and after every LSTM layer makes CTC leave its all-blank plateau within
a few dozen steps instead of hundreds (measured on AN4).
Padding never changes a result: padded frames are zeroed after every convolution, and the backward
LSTM reads each sequence reversed within its own length, so an utterance alone and inside a padded
batch gives the same log-probs, at the speed of plain padded batches (no PackedSequence).

Streaming (ModelConfig.chunk_frames > 0) makes it a latency-controlled BiLSTM (LC-BLSTM): the output frames
are cut into chunks of chunk_frames, each read as a window with right_context_frames more. Every layer runs
on the windows: its forward LSTM carries its state from the end of one chunk to the next (and reads the
window's right context from there, without carrying it on), its backward LSTM starts afresh at each
window's end. A chunk's outputs therefore need no audio past its right context, at any depth, and
training runs exactly what asr.streaming runs window by window (`layers_on_windows` serves both).
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


MAX_CHUNK_FRAMES = 1500  # output frames (40 ms): a streaming chunk, or its right context, a minute at most
MAX_PARAMETERS = 1_000_000_000  # weights of a model this builds (4 GB in fp32; the shipped one has 9.27 M)


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80  # input feature size
    vocab_size: int = 29  # output classes, blank included
    conv_channels: int = 32  # channels of each of the two stride-2 convolutions
    hidden: int = 320  # LSTM units per direction
    layers: int = 4  # stacked bidirectional LSTM layers
    dropout: float = 0.2  # between LSTM layers and before the output layer, training only (nn.Dropout)
    chunk_frames: int = 0  # streaming (LC-BLSTM): output frames per chunk; 0: full context, today's BiLSTM
    right_context_frames: int = 0  # streaming: output frames past each chunk that its backward LSTMs read

    def parameter_estimate(self) -> int:
        """About how many weights AcousticModel(self) has: a little fewer (within 3%; LayerNorms and some biases
        left out), so a bound on it never refuses a model that fits."""
        c, h, freq = self.conv_channels, self.hidden, (self.n_mels + 3) // 4
        front = 9 * c + 9 * c * c + c * freq * h
        lstms = 2 * _lstm_weights(h, h) + (self.layers - 1) * 2 * _lstm_weights(2 * h, h)
        return front + lstms + 2 * h * self.vocab_size

    def __post_init__(self):
        for name in ("n_mels", "conv_channels", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"model_config.{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 2 or not 0 <= self.dropout < 1:
            raise ValueError(f"model_config: vocab_size must be >= 2 (blank and a token), dropout in [0, 1), got "
                             f"{self.vocab_size}, {self.dropout}")
        if self.chunk_frames < 0 or self.right_context_frames < 0:
            raise ValueError(f"chunk_frames and right_context_frames must be >= 0, got {self.chunk_frames}, "
                             f"{self.right_context_frames}")
        if self.right_context_frames and not self.chunk_frames:
            raise ValueError("right_context_frames needs chunk_frames > 0 (full context has no chunks)")
        if (n := self.parameter_estimate()) > MAX_PARAMETERS:
            raise ValueError(f"model_config: about {n:.3g} parameters (hidden {self.hidden}, layers {self.layers}, "
                             f"conv_channels {self.conv_channels}, n_mels {self.n_mels}, vocab_size {self.vocab_size}); "
                             f"at most {MAX_PARAMETERS:.0e} are built")
        if max(self.chunk_frames, self.right_context_frames) > MAX_CHUNK_FRAMES:
            raise ValueError(f"chunk_frames and right_context_frames must be at most {MAX_CHUNK_FRAMES} (a minute: "
                             f"past it no stream), got {self.chunk_frames}, {self.right_context_frames}")


def _lstm_weights(inputs: int, hidden: int) -> int:
    """One direction of an LSTM layer: four gates, each (hidden, inputs + hidden) weights and two biases."""
    return 4 * hidden * (inputs + hidden + 2)


def algorithmic_latency(cfg: ModelConfig, features: FeatureConfig) -> float:
    """Seconds of audio a streaming model needs past the first frame of a chunk before it can give that chunk:
    the chunk, its right context and the look-ahead of the front end (the convolutions read 3 feature frames
    ahead, an STFT frame half a window). 0 for a full-context model, which needs the whole utterance."""
    if not cfg.chunk_frames:
        return 0.0
    frames = (cfg.chunk_frames + cfg.right_context_frames) * output_frame_seconds(features)
    return frames + (3 * features.hop_length + features.n_fft // 2) / features.sample_rate


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

    def forward_windows(self, windows: torch.Tensor, valid: torch.Tensor, chunk: int,
                        state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, tuple]:
        """The LC-BLSTM layer. windows (B, K, chunk + R, input_size): K consecutive chunks, each followed by its
        R right-context frames; valid (B, K): real frames in each window; state: the forward LSTM's (h, c),
        each (1, B, hidden), at the start of the first chunk -> ((B, K, chunk + R, 2 * hidden), the state at
        the end of the K-th chunk)."""
        batch, k, width, _ = windows.shape
        chunk_out, chunk_ends = [], []
        for i in range(k):  # the forward state runs on through the chunks, one call each
            out, state = self.forward_lstm(windows[:, i, :chunk], state)  # (B, chunk, hidden)
            chunk_out.append(out)
            chunk_ends.append(state)
        fwd = torch.stack(chunk_out, 1)  # (B, K, chunk, hidden)
        if width > chunk:  # right contexts, all windows at once, each from its chunk's end state (not carried on)
            h0 = torch.stack([h for h, _ in chunk_ends], 2).flatten(1, 2)  # (1, B * K, hidden)
            c0 = torch.stack([c for _, c in chunk_ends], 2).flatten(1, 2)
            right, _ = self.forward_lstm(windows[:, :, chunk:].flatten(0, 1), (h0, c0))  # (B * K, R, hidden)
            fwd = torch.cat([fwd, right.unflatten(0, (batch, k))], 2)  # (B, K, chunk + R, hidden)
        flat, lengths = windows.flatten(0, 1), valid.flatten()  # (B * K, chunk + R, input_size), (B * K,)
        bwd, _ = self.backward_lstm(reverse_padded(flat, lengths))
        bwd = reverse_padded(bwd, lengths).unflatten(0, (batch, k))  # (B, K, chunk + R, hidden)
        return torch.cat([fwd, bwd], dim=-1), state


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

    def front_end(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, n_mels), lengths (B,) -> the LSTMs' input (B, T', hidden), lengths (B,)."""
        if features.ndim != 3 or features.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"features must be (B, T, {self.cfg.n_mels}), got {tuple(features.shape)}")
        x = features * time_mask(lengths, features.shape[1])[:, :, None]  # padding is zero, whatever it held
        x = x[:, None]  # (B, 1, T, F)
        x, lengths = self._conv(self.conv1, x, lengths)
        x, lengths = self._conv(self.conv2, x, lengths)  # (B, C, T', F')
        x = x.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * F')
        return self.proj_norm(self.proj(x)), lengths  # (B, T', hidden)

    def layers_on_windows(self, windows: torch.Tensor, valid: torch.Tensor,
                          states: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list]:
        """The LC-BLSTM stack: windows (B, K, chunk + R, hidden), valid (B, K), states (one forward (h, c) per
        layer, each (1, B, hidden)) -> ((B, K, chunk + R, 2 * hidden), the states after the K chunks)."""
        new_states = []
        for i, (lstm, norm) in enumerate(zip(self.lstms, self.norms)):
            if i > 0:
                windows = self.dropout(windows)
            windows, state = lstm.forward_windows(windows, valid, self.cfg.chunk_frames, states[i])
            windows = norm(windows)  # (B, K, chunk + R, 2 * hidden)
            new_states.append(state)
        return windows, new_states

    def initial_states(self, batch: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Zero forward-LSTM states, one (h, c) per layer, each (1, batch, hidden): an utterance's start."""
        zeros = torch.zeros(1, batch, self.cfg.hidden, device=device)
        return [(zeros, zeros) for _ in self.lstms]

    def _chunked_layers(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T', hidden) -> (B, T', 2 * hidden) through the LC-BLSTM stack, the whole utterance at once."""
        chunk, right = self.cfg.chunk_frames, self.cfg.right_context_frames
        batch, frames, _ = x.shape
        k = -(-frames // chunk)
        x = nn.functional.pad(x, (0, 0, 0, k * chunk + right - frames))  # (B, K * chunk + R, hidden)
        windows = x.unfold(1, chunk + right, chunk).transpose(2, 3)  # (B, K, chunk + R, hidden)
        starts = chunk * torch.arange(k, device=x.device)
        valid = (lengths[:, None] - starts[None, :]).clamp(0, chunk + right)  # (B, K)
        windows, _ = self.layers_on_windows(windows, valid, self.initial_states(batch, x.device))
        return windows[:, :, :chunk].flatten(1, 2)[:, :frames]  # (B, T', 2 * hidden)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, n_mels) normalised, lengths (B,) -> log_probs (B, T', V), lengths (B,)."""
        x, lengths = self.front_end(features, lengths)  # (B, T', hidden)
        if self.cfg.chunk_frames:
            x = self._chunked_layers(x, lengths)
        else:
            for i, (lstm, norm) in enumerate(zip(self.lstms, self.norms)):
                if i > 0:
                    x = self.dropout(x)
                x = norm(lstm(x, lengths))  # (B, T', 2 * hidden)
        return self.log_probs(x), lengths

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """The last LSTM layer's (..., 2 * hidden) -> (..., V) log-probs."""
        return self.out(self.dropout(x)).float().log_softmax(dim=-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
