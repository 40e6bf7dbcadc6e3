"""CTC forced alignment: the most probable path of a known token sequence through (T, V) log-probs (Viterbi),
as the frames each token occupies. bench/streaming.py takes word ends from it."""

from __future__ import annotations

import numpy as np
import torch

NEG = -1e30  # log(0) for the trellis


def forced_alignment(log_probs: torch.Tensor, tokens: list[int], blank: int = 0) -> list[tuple[int, int]]:
    """(T, V) log-probs, the utterance's token ids (no blank) -> per token its (first, last) frame on the best
    CTC path. ValueError where the tokens cannot fit in T frames (a repeat needs a blank between)."""
    if log_probs.ndim != 2 or log_probs.shape[0] == 0:
        raise ValueError(f"log_probs must be (T, V) with T >= 1, got {tuple(log_probs.shape)}")
    if not tokens:
        return []
    lp = log_probs.detach().double().cpu().numpy()
    labels = np.full(2 * len(tokens) + 1, blank)
    labels[1::2] = tokens  # blank, t1, blank, t2, ..., blank
    frames, states = lp.shape[0], len(labels)
    skip = np.zeros(states, bool)  # a state may be entered from two back: a token after a different token
    skip[3::2] = labels[3::2] != labels[1:-2:2]
    score = np.full(states, NEG)
    score[0] = lp[0, blank]
    if states > 1:
        score[1] = lp[0, labels[1]]
    back = np.zeros((frames, states), np.int8)  # 0: stayed, 1: from s - 1, 2: from s - 2
    for t in range(1, frames):
        stay, one = score, np.concatenate([[NEG], score[:-1]])
        two = np.where(skip, np.concatenate([[NEG, NEG], score[:-2]]), NEG)
        options = np.stack([stay, one, two])  # (3, S)
        back[t] = options.argmax(0)
        score = options.max(0) + lp[t, labels]
    end = states - 1 if states == 1 or score[-1] >= score[-2] else states - 2
    if score[end] <= NEG / 2:
        raise ValueError(f"{len(tokens)} tokens do not fit in {frames} frames")
    spans: dict[int, list[int]] = {}
    state = end
    for t in range(frames - 1, -1, -1):
        if state % 2:
            spans.setdefault(state // 2, [t, t])[0] = t
        state -= int(back[t, state])
    return [tuple(spans[i]) for i in range(len(tokens))]
