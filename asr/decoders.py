"""Choosing a decoder: greedy, or beam search with an optional word LM, from flags or the model's metadata.

A model may recommend its decoding in its metadata, e.g. the shipped AN4 model:
    {"decoding": {"decoder": "beam", "beam_size": 32, "lm": "an4_3gram.arpa.gz", "alpha": 0.3, "beta": 2.0}}
with "lm" relative to the checkpoint's folder. Flags override each field; `--lm none` turns the LM off.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.beam import BeamSearchConfig, CTCBeamSearch
from asr.lm import load_lm
from asr.text import CharVocab
from asr.decode import Alignment, greedy_alignments


@dataclass(frozen=True)
class DecodingConfig:
    decoder: str = "greedy"  # "greedy" or "beam"
    beam_size: int = 32  # hypotheses kept per frame (beam)
    lm: str | None = None  # ARPA/KenLM file (beam); None: no LM
    alpha: float = 0.5  # LM weight (beam with an LM)
    beta: float = 1.5  # word insertion bonus (beam with an LM)


def add_decoding_flags(p: argparse.ArgumentParser) -> None:
    """--decoder, --beam-size, --lm, --alpha, --beta; unset ones fall back to the model's metadata."""
    p.add_argument("--decoder", choices=["greedy", "beam"], help="default: what the model recommends, else greedy")
    p.add_argument("--beam-size", type=int, help="beam width (default: the model's, else 32)")
    p.add_argument("--lm", help="word n-gram LM (ARPA, .arpa.gz or KenLM binary) for beam search, or 'none'")
    p.add_argument("--alpha", type=float, help="LM weight")
    p.add_argument("--beta", type=float, help="word insertion bonus")


def decoding_config(args: argparse.Namespace, metadata: dict, model_path: str | Path) -> DecodingConfig:
    """Flags first, then the model's recommended decoding, then DecodingConfig's defaults."""
    recommended = dict(metadata.get("decoding") or {})
    if recommended.get("lm"):
        recommended["lm"] = str(Path(model_path).parent / recommended["lm"])
    fields = {f.name for f in dataclasses.fields(DecodingConfig)}
    values = {k: v for k, v in recommended.items() if k in fields}
    for name in fields:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    if str(values.get("lm", "")).lower() == "none":
        values["lm"] = None
    return DecodingConfig(**values)


class Decoder:
    """(B, T, V) log-probs + (B,) lengths -> one Alignment (tokens and their frames) per utterance."""

    def __init__(self, cfg: DecodingConfig, vocab: CharVocab):
        self.cfg = cfg
        self.search = None
        if cfg.decoder == "beam":
            lm = load_lm(cfg.lm) if cfg.lm else None
            beam = BeamSearchConfig(beam_size=cfg.beam_size, alpha=cfg.alpha, beta=cfg.beta, nbest=1)
            self.search = CTCBeamSearch(vocab, beam, lm)
        elif cfg.decoder != "greedy":
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {cfg.decoder!r}")

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor, vocab: CharVocab) -> list[Alignment]:
        if self.search is None:
            return greedy_alignments(log_probs, lengths, vocab.blank)
        lp = log_probs.detach().to("cpu", torch.float64).numpy()  # (B, T, V)
        out = []
        for b, n in enumerate(lengths.tolist()):
            hyps = self.search(lp[b, :n])
            out.append(Alignment(tuple(hyps[0].tokens), tuple(hyps[0].frames)) if hyps else Alignment((), ()))
        return out

    def texts(self, log_probs: torch.Tensor, lengths: torch.Tensor, vocab: CharVocab) -> list[str]:
        """Transcripts, spaces tidied."""
        return [" ".join(vocab.decode(a.tokens).split()) for a in self(log_probs, lengths, vocab)]
