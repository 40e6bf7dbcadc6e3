"""A Recognizer: everything needed to go from a waveform to log-probs and text (the acoustic model, its
feature front-end, its vocabulary and its metadata), as asr.checkpoint.load_model returns it.

    rec = load_model()                                   # the shipped model
    log_probs = utterance_log_probs(rec, read_manifest("test.jsonl"))   # [(T_i, V)], in manifest order
    texts = Decoder(DecodingConfig(), rec.vocab).transcripts(log_probs)  # asr.decoding: greedy
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch

from asr.audio import AudioError
from asr.data import Batch, BucketBatchSampler, SpeechDataset, Utterance, collate
from asr.features import Frontend
from asr.model import AcousticModel
from asr.text import Vocab


@dataclass
class Recognizer:
    model: AcousticModel  # (features, lengths) -> (log_probs, lengths)
    frontend: Frontend  # waveform -> normalised log-mel frames
    vocab: Vocab  # output classes
    metadata: dict  # what the checkpoint says of itself: training, results, recommended decoding

    def __post_init__(self):
        if len(self.vocab) != self.model.cfg.vocab_size:
            raise ValueError(f"the vocabulary has {len(self.vocab)} tokens but the model gives "
                             f"{self.model.cfg.vocab_size} classes")
        weights = self.model.state_dict().items() if isinstance(self.model, torch.nn.Module) else ()  # not ONNX's
        bad = next((name for name, w in weights if w.is_floating_point() and not torch.isfinite(w).all()), None)
        if bad is not None:
            raise ValueError(f"the weights are not finite (nan or inf) in {bad}")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def with_chunks(rec: Recognizer, chunk_frames: int | None = None,
                right_context_frames: int | None = None) -> Recognizer:
    """The recogniser with its model run at another chunk / right-context setting (None keeps the model's): the
    same weights, another latency (0, 0: full context). ModelConfig's ValueError names a setting it refuses."""
    cfg = rec.model.cfg
    cfg = dataclasses.replace(cfg, chunk_frames=cfg.chunk_frames if chunk_frames is None else chunk_frames,
                              right_context_frames=cfg.right_context_frames if right_context_frames is None
                              else right_context_frames)
    model = AcousticModel(cfg).to(rec.device)
    model.load_state_dict(rec.model.state_dict())
    return dataclasses.replace(rec, model=model.eval())


class Readable(torch.utils.data.Dataset):
    """A SpeechDataset whose items are (item, None), or (None, the AudioError) for audio that cannot be read."""

    def __init__(self, dataset: SpeechDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            return self.dataset[i], None
        except AudioError as e:
            return None, e


def collate_readable(pairs: list) -> tuple[Batch | None, list[tuple[int, AudioError]]]:
    """(the batch of the items that were read, or None; (position in the batch, its error) for those that were not)."""
    items = [item for item, _ in pairs if item is not None]
    return (collate(items) if items else None), [(k, e) for k, (_, e) in enumerate(pairs) if e is not None]


@torch.no_grad()
def utterance_log_probs(
    rec: Recognizer, utts: list[Utterance], batch_seconds: float = 200.0, num_workers: int = 0,
    on_progress: Callable[[float], None] | None = None, on_unreadable: Callable[[int, AudioError], None] | None = None,
) -> list[torch.Tensor]:
    """The model's (T_i, V) log-probs of each utterance, on the CPU, in the order given (length-sorted batches).
    on_progress(seconds) is called after each batch with the audio seconds (manifest durations) it held. With
    on_unreadable, an utterance whose audio cannot be read gets on_unreadable(its index, the AudioError) and empty
    log-probs, and the others go on; without it the AudioError ends the run."""
    dataset = SpeechDataset(utts, rec.frontend, rec.vocab)
    sampler = BucketBatchSampler([u.duration for u in utts], batch_seconds, shuffle=False)
    loader = torch.utils.data.DataLoader(
        Readable(dataset) if on_unreadable else dataset, batch_sampler=sampler, num_workers=num_workers,
        collate_fn=collate_readable if on_unreadable else collate)
    out: list[torch.Tensor] = [torch.empty(0)] * len(utts)
    for indices, batch in zip(sampler, loader):  # the loader yields the sampler's batches, in its order
        if on_unreadable:
            batch, errors = batch
            for k, e in errors:
                on_unreadable(indices[k], e)
            unread = {k for k, _ in errors}
            read = [i for k, i in enumerate(indices) if k not in unread]
        else:
            read = indices
        if batch is not None:
            log_probs, lengths = rec.model(batch.features.to(rec.device), batch.feature_lengths.to(rec.device))
            for i, lp, n in zip(read, log_probs, lengths.tolist()):
                out[i] = lp[:n].cpu()  # by position: ids need not be unique here
        if on_progress is not None:
            on_progress(sum(utts[i].duration for i in indices))
    return out
