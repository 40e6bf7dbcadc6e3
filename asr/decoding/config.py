"""Decoding settings: BeamSearchConfig (the prefix search and its LM fusion) and DecodingConfig (which
decoder, which LM file, and the beam search's settings), as flags and model metadata give them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


MAX_LM_SCORE = 1000.0  # the largest LM weight, word bonus or unknown-word penalty taken (natural log)


@dataclass(frozen=True)
class BeamSearchConfig:
    beam_size: int = 32  # hypotheses kept after each frame
    token_top_k: int = 8  # non-blank tokens tried per frame, most likely first
    token_min_logprob: float = -5.0  # tokens below this log-prob are not tried (the frame's best always is)
    beam_threshold: float = 6.0  # hypotheses scoring more than this below the best are dropped
    blank_skip_threshold: float = math.log(0.999)  # frames with a blank log-prob above this: blank only
    recombine: bool = True  # drop a closed prefix that one with the same LM state and partial word dominates (search.py)
    alpha: float = 0.5  # LM weight, on natural-log LM probabilities (only with an LM)
    beta: float = 1.5  # bonus per word (only with an LM)
    unk_penalty: float = -10.0  # per word outside the LM's vocabulary (only with an LM that lists its words)
    nbest: int = 5  # hypotheses returned per utterance (distinct texts, best first)

    def __post_init__(self):
        for name in ("beam_size", "token_top_k", "nbest"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("alpha", "beta", "unk_penalty"):  # tuned values lie within a few units; past this, nothing
            if not abs(getattr(self, name)) <= MAX_LM_SCORE:  # but the LM or the word count would decide
                raise ValueError(f"{name} must be within +-{MAX_LM_SCORE:g}, got {getattr(self, name):g}")
        if not self.beam_threshold > 0:
            raise ValueError(f"beam_threshold must be > 0, got {self.beam_threshold}")
        if not self.blank_skip_threshold <= 0:
            raise ValueError(f"blank_skip_threshold is a log-prob (<= 0; 0 never skips), got {self.blank_skip_threshold}")


@dataclass(frozen=True)
class DecodingConfig:
    decoder: str = "greedy"  # "greedy" or "beam"
    lm: str | None = None  # ARPA/KenLM file for the beam search; None: no LM
    beam: BeamSearchConfig = field(default_factory=BeamSearchConfig)  # width, LM weights, pruning (beam only)

    def __post_init__(self):
        if self.decoder not in ("greedy", "beam"):
            raise ValueError(f"decoder must be 'greedy' or 'beam', got {self.decoder!r}")

    def to_dict(self) -> dict:
        """The settings as the model's metadata and evaluate's summary.json write them: flat, beam fields
        beside decoder and lm."""
        return {"decoder": self.decoder, "lm": self.lm, **asdict(self.beam)}
