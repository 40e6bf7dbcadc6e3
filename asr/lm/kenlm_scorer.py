"""The optional KenLM backend: a `kenlm.Model` (ARPA or KenLM binary) behind the LanguageModel interface."""

from __future__ import annotations

from pathlib import Path

from asr.lm.arpa import EOS, LN10, arpa_vocabulary
from asr.lm.interface import LMError, ScoreCache


def is_kenlm_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"mmap lm "  # KenLM's binary files start "mmap lm http://kheafield.com/code"


class KenLMScorer:
    """The same interface as NgramLM over a `kenlm.Model` (ARPA or KenLM binary; natural-log scores)."""

    def __init__(self, path: str | Path):
        try:
            import kenlm  # optional: pip install kenlm (or the package's [kenlm] extra)
        except ImportError as e:
            raise LMError(f"{path}: the kenlm backend needs the kenlm module (pip install kenlm)") from e
        self._kenlm = kenlm
        try:
            self.model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as e:
            raise LMError(f"{path}: kenlm cannot load it ({e})") from e
        self.order = self.model.order
        self.vocabulary = None if is_kenlm_binary(Path(path)) else arpa_vocabulary(path)
        self.score = ScoreCache(self._score)

    def begin_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def _score(self, state, word: str):
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out) * LN10, out

    def final_score(self, state) -> float:
        return self.score(state, EOS)[0]
