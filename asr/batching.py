"""Length-bucketed batches: the packing rule of training, evaluation and long-form inference (length_batches),
and the training sampler, which forms its batches anew each epoch (BucketBatchSampler)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

JITTER = 0.02  # each epoch, training sorts lengths scaled by a seeded factor in [1 - JITTER, 1 + JITTER]


def pack(order: Sequence[int], lengths: Sequence[float], budget: float) -> list[list[int]]:
    """`order` (indices into lengths) cut into consecutive batches whose padded size (count x longest) stays
    within `budget` (a longer item gets a batch to itself)."""
    batches, current, longest = [], [], 0.0
    for i in order:
        if current and (len(current) + 1) * max(longest, lengths[i]) > budget:
            batches.append(current)
            current, longest = [], 0.0
        current.append(i)
        longest = max(longest, lengths[i])
    if current:
        batches.append(current)
    return batches


def length_batches(lengths: Sequence[float], budget: float) -> list[list[int]]:
    """Indices sorted by length, cut into batches whose padded size (count x longest) stays within
    `budget` (a longer item gets a batch to itself). The one batching rule of training, evaluation and
    long-form inference; lengths and budget in the same unit (seconds, samples)."""
    return pack(sorted(range(len(lengths)), key=lambda i: lengths[i]), lengths, budget)


def jittered_batches(lengths: Sequence[float], budget: float, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches, in a random order: the indices shuffled, sorted by length x a random factor in
    [1 - JITTER, 1 + JITTER] (ties and near-ties fall differently each epoch), then packed as length_batches
    packs them, within `budget` by the true lengths. A function of (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    shuffled = rng.permutation(len(lengths))
    keys = np.asarray(lengths, dtype=np.float64)[shuffled] * rng.uniform(1 - JITTER, 1 + JITTER, len(lengths))
    batches = pack(shuffled[np.argsort(keys, kind="stable")].tolist(), lengths, budget)
    return [batches[b] for b in rng.permutation(len(batches))]


def left_out(batches: list[list[int]], upper: np.ndarray, epoch: int, count: int) -> set[int]:
    """Positions of the `count` batches an epoch leaves out (so that every replica gets as many): the first in
    `batches` (shuffled) that lie wholly in the shorter utterances in even epochs, the longer ones in odd epochs
    (upper[i]: utterance i is among the longer ones, which hold half the audio, so about half the batches);
    others after them only if too few do."""
    if count == 0:
        return set()
    turn = epoch % 2 == 1
    in_turn = [p for p, b in enumerate(batches) if all(upper[i] == turn for i in b)]
    others = sorted(set(range(len(batches))) - set(in_turn))
    return set((in_turn + others)[:count])


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of utterances of similar duration whose padded size (count x longest) stays under max_seconds
    of audio. shuffle=True (training): formed anew each epoch by jittered_batches, so their contents change,
    a function of (seed, epoch); shuffle=False (evaluation): length_batches, the same every epoch.
    With num_replicas > 1 the epoch's batches are shared out, batch j of rank r being batch j * num_replicas + r
    of the list, less len(list) % num_replicas batches that the epoch leaves out so that every rank gets
    len(self) batches (left_out: from the shorter utterances, which hold half the audio, in even epochs, from
    the longer ones in odd epochs, so that none is left out of two epochs running). set_epoch(epoch, start)
    resumes an epoch at batch `start` of this rank's share without reading the batches before it; len(self) is
    that epoch's count, which can differ a little from epoch to epoch."""

    def __init__(
        self,
        durations: list[float],
        max_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.durations, self.max_seconds = list(durations), max_seconds
        self.shuffle, self.seed = shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        seconds = np.asarray(self.durations, dtype=np.float64)
        by_length = np.lexsort((np.random.default_rng(seed).permutation(len(seconds)), seconds))  # ties: by seed
        shorter_seconds = np.cumsum(seconds[by_length]) - seconds[by_length]  # audio of the utterances before
        self.upper = np.zeros(len(seconds), dtype=bool)  # upper[i]: i is among the longer ones (half the audio)
        self.upper[by_length[shorter_seconds >= seconds.sum() / 2]] = True
        self.start = 0  # first batch of this rank's share that __iter__ yields (resuming mid-epoch)
        self._form(0)

    def _form(self, epoch: int) -> None:
        """This epoch's batches (self.batches, in order) and this rank's share of them (self.share)."""
        self.epoch = epoch
        if self.shuffle:
            self.batches = jittered_batches(self.durations, self.max_seconds, self.seed, epoch)
        else:
            self.batches = length_batches(self.durations, self.max_seconds)
        count = len(self.batches) % self.num_replicas
        if self.shuffle:
            dropped = left_out(self.batches, self.upper, epoch, count)
        else:
            dropped = set(range(len(self.batches) - count, len(self.batches)))
        kept = [b for p, b in enumerate(self.batches) if p not in dropped]
        self.share = kept[self.rank :: self.num_replicas]

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if epoch != self.epoch:
            self._form(epoch)
        self.start = start

    def __len__(self) -> int:
        """Batches this rank gets in the whole epoch (whatever `start` is)."""
        return len(self.share)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.share[self.start :]
