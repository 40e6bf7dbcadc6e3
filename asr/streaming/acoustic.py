"""The acoustic model chunk by chunk: ModelStream takes normalised feature frames as they arrive and gives the
log-probs of each chunk once its right context is in. The computation is the model's own (AcousticModel's
front_end and layers_on_windows), so a whole file streamed gives the log-probs of one forward pass over it.
`step_streams` runs the windows of many streams in one batch (the server's streams share the model)."""

from __future__ import annotations

import torch

from asr.model import SUBSAMPLING, AcousticModel


class ModelStream:
    """One utterance of one LC-BLSTM model (ModelConfig.chunk_frames > 0), fed frames in pieces of any size."""

    def __init__(self, model: AcousticModel):
        if not model.cfg.chunk_frames:
            raise ValueError("streaming needs a model trained with chunk_frames > 0 (an LC-BLSTM); this one "
                             "reads whole utterances")
        self.model = model
        self.chunk, self.right = model.cfg.chunk_frames, model.cfg.right_context_frames
        device = next(model.parameters()).device
        self.features = torch.zeros(0, model.cfg.n_mels, device=device)  # frames from feature_start on
        self.feature_start = 0  # index of features[0]; a multiple of SUBSAMPLING
        self.given = 0  # output frames the front end has given (to `frames`)
        self.frames = torch.zeros(0, model.cfg.hidden, device=device)  # front-end outputs not yet a window's chunk
        self.states = model.initial_states(1, device)
        self.finished = False

    @torch.no_grad()
    def accept(self, feats: torch.Tensor, final: bool = False) -> None:
        """Queue (T, n_mels) frames; `final`: they are the utterance's last (its tail may be a short window)."""
        self.features = torch.cat([self.features, feats.to(self.features)])
        self.finished = final
        total = self.feature_start + self.features.shape[0]
        # An output frame t reads feature frames up to 4t + 3: those complete so far, or all at the end.
        end = -(-(-(-total // 2)) // 2) if final else total // SUBSAMPLING
        if end <= self.given:
            return
        count = torch.tensor([self.features.shape[0]], device=self.features.device)
        x, _ = self.model.front_end(self.features[None], count)  # (1, T', hidden)
        skip = 0 if self.feature_start == 0 else 1  # the first output read the padding, not the frames before
        first = self.feature_start // SUBSAMPLING + skip  # output frame of x[0, skip]
        new = x[0, skip + self.given - first : skip + end - first]  # (end - given, hidden)
        self.frames = torch.cat([self.frames, new])
        self.given = end
        keep_from = SUBSAMPLING * (end - 1)  # the next output frame (end) reads from 4 * end - 3 on
        self.features = self.features[keep_from - self.feature_start :]
        self.feature_start = keep_from

    def ready(self) -> bool:
        """Whether a window can run: a chunk and its right context are in, or the end with frames left."""
        return self.frames.shape[0] >= self.chunk + self.right or (self.finished and self.frames.shape[0] > 0)

    def take_window(self) -> tuple[torch.Tensor, int]:
        """The next window, zero padded to chunk + right frames: ((chunk + right, hidden), its real frames)."""
        window = self.frames[: self.chunk + self.right]
        valid = window.shape[0]
        pad = torch.zeros(self.chunk + self.right - valid, window.shape[1], device=window.device)
        self.frames = self.frames[self.chunk :]
        return torch.cat([window, pad]), valid


@torch.no_grad()
def step_streams(streams: list[ModelStream], max_windows: int | None = None) -> list[torch.Tensor]:
    """Run every window that is ready in `streams` (all of one model), or at most `max_windows` of each, in batches
    across the streams -> per stream the (T_i, V) log-probs of the chunks done (T_i a multiple of chunk_frames but
    at the end)."""
    out: list[list[torch.Tensor]] = [[] for _ in streams]
    rounds = 0
    while (max_windows is None or rounds < max_windows) and (active := [i for i, s in enumerate(streams) if s.ready()]):
        rounds += 1
        model = streams[active[0]].model
        windows, valid = zip(*(streams[i].take_window() for i in active))
        states = [(torch.cat([streams[i].states[layer][0] for i in active], 1),
                   torch.cat([streams[i].states[layer][1] for i in active], 1)) for layer in range(len(model.lstms))]
        x = torch.stack(windows)[:, None]  # (S, 1, chunk + right, hidden)
        lengths = torch.tensor(valid, device=x.device)[:, None]  # (S, 1)
        y, states = model.layers_on_windows(x, lengths, states)  # (S, 1, chunk + right, 2 * hidden)
        log_probs = model.log_probs(y[:, 0, : model.cfg.chunk_frames])  # (S, chunk, V)
        for row, i in enumerate(active):
            streams[i].states = [(h[:, row : row + 1], c[:, row : row + 1]) for h, c in states]
            out[i].append(log_probs[row, : min(model.cfg.chunk_frames, valid[row])].cpu())
    vocab = streams[0].model.cfg.vocab_size if streams else 0
    return [torch.cat(parts) if parts else torch.zeros(0, vocab) for parts in out]
