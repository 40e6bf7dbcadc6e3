"""Greedy CTC decoding over (B, T, V) log-probs + (B,) lengths: the best class per frame, repeats
collapsed, blanks removed, with the frame that emitted each token (for word timestamps)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.text import Vocab, transcript


def check_log_probs(log_probs: torch.Tensor, lengths: torch.Tensor) -> None:
    """Reject anything but (B, T, V) log-probs with (B,) lengths of at most T."""
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must be (B, T, V), got {tuple(log_probs.shape)}")
    if lengths.shape != (log_probs.shape[0],):
        raise ValueError(f"lengths must be ({log_probs.shape[0]},), got {tuple(lengths.shape)}")
    if len(lengths) and int(lengths.max()) > log_probs.shape[1]:
        raise ValueError(f"a length of {int(lengths.max())} exceeds the {log_probs.shape[1]} frames given")


@dataclass(frozen=True)
class Alignment:
    tokens: tuple[int, ...]  # emitted token ids, blanks and repeats removed
    frames: tuple[int, ...]  # frame that emitted each token, increasing


def greedy_alignments(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[Alignment]:
    """Best class per frame, repeats collapsed, blanks removed, with the frame of each token kept:
    (B, T, V) log-probs + (B,) lengths -> one Alignment per utterance."""
    check_log_probs(log_probs, lengths)
    best = log_probs.argmax(dim=-1)  # (B, T)
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = changed & (best != blank)
    out = []
    for b in range(best.shape[0]):
        frames = torch.nonzero(keep[b, : int(lengths[b])]).flatten()
        out.append(Alignment(tuple(best[b, frames].tolist()), tuple(frames.tolist())))
    return out


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best class per frame, repeats collapsed, blanks removed: one id list per utterance."""
    return [list(a.tokens) for a in greedy_alignments(log_probs, lengths, blank)]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocab) -> list[str]:
    """Greedy CTC decoding to text, one string per utterance (spaces tidied)."""
    return [transcript(vocab, ids) for ids in greedy_ids(log_probs, lengths, vocab.blank)]
