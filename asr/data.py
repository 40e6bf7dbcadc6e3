"""The dataset and collate -> Batch, over the manifests of asr.manifest (Utterance, read_manifest, write_manifest...,
which can be imported from here too); the length-bucketed batches are asr.batching's (BucketBatchSampler and
length_batches, importable from here as well).

    python -m asr.data import [--from FORMAT] SRC OUT_DIR     # a corpus in a common layout -> manifests (asr.corpora)

A manifest has one utterance a line: {"id": str, "audio": path, "duration": seconds, "text": str};
"audio" is absolute or relative to the manifest's folder.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from asr.audio import load_audio
from asr.batching import BucketBatchSampler, length_batches  # noqa: F401 (their home is asr.batching)
from asr.features import Frontend
from asr.manifest import (MISSING, SHOW, ManifestError, Utterance, drop_line, lossy_text_note,  # noqa: F401
                          named, numbered_rows, read_jsonl, read_manifest, write_manifest)  # (their home)
from asr.text import Vocab


@dataclass
class Batch:
    features: torch.Tensor  # (B, T, n_mels), zero-padded
    feature_lengths: torch.Tensor  # (B,) frames
    tokens: torch.Tensor  # (B, U), zero-padded token ids
    token_lengths: torch.Tensor  # (B,)
    ids: list[str]
    texts: list[str]
    seconds: float  # audio seconds in the batch (before augmentation)

    def pin_memory(self) -> "Batch":
        """The same batch in page-locked memory, for asynchronous copies to a GPU (DataLoader(pin_memory=True))."""
        pinned = {k: getattr(self, k).pin_memory() for k in ("features", "feature_lengths", "tokens", "token_lengths")}
        return dataclasses.replace(self, **pinned)


class SpeechDataset(torch.utils.data.Dataset):
    """Utterance i -> dict(features (T, n_mels), tokens (U,), ...). Augmentation draws from a generator
    seeded by (seed, epoch, i), so results do not depend on worker count or order."""

    def __init__(
        self,
        utts: list[Utterance],
        frontend: Frontend,
        vocab: Vocab,
        wave_augment: list[Callable] = (),
        feature_augment: list[Callable] = (),
        seed: int = 0,
    ):
        self.utts = utts
        self.frontend = frontend
        self.vocab = vocab
        self.wave_augment = list(wave_augment)
        self.feature_augment = list(feature_augment)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        utt = self.utts[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        wave = load_audio(utt.audio)
        for aug in self.wave_augment:
            wave = aug(wave, rng)
        feats = self.frontend(wave)
        for aug in self.feature_augment:
            feats = aug(feats, rng)
        tokens = torch.tensor(self.vocab.encode(utt.text), dtype=torch.long)
        return {"id": utt.id, "text": utt.text, "features": feats, "tokens": tokens, "seconds": utt.duration}


def collate(items: list[dict]) -> Batch:
    """Pad features and tokens with zeros; keep the true lengths."""
    feats = [it["features"] for it in items]
    toks = [it["tokens"] for it in items]
    return Batch(
        features=torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),  # (B, T_max, n_mels)
        feature_lengths=torch.tensor([f.shape[0] for f in feats], dtype=torch.long),
        tokens=torch.nn.utils.rnn.pad_sequence(toks, batch_first=True) if toks else torch.zeros(0, 0),
        token_lengths=torch.tensor([t.shape[0] for t in toks], dtype=torch.long),
        ids=[it["id"] for it in items],
        texts=[it["text"] for it in items],
        seconds=float(sum(it["seconds"] for it in items)),
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m asr.data import|split ...`: asr.corpora's command line (corpora -> manifests, train/dev/test)."""
    from asr.corpora.cli import main as corpora_main  # here, not at the top: the dataset needs none of it

    return corpora_main(argv)


if __name__ == "__main__":
    sys.exit(main())
