"""Text: normalisation, the character vocabulary, encode/decode."""

from __future__ import annotations

import re
import string

BLANK = "<blank>"  # CTC blank, always index 0
CHARACTERS = [BLANK, " ", "'", *string.ascii_lowercase]

_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, punctuation and digits to spaces (apostrophes kept), single spaces, stripped."""
    text = text.lower().replace("-", " ")
    text = _NOT_ALLOWED.sub(" ", text)
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)  # quotes, not apostrophes inside words
    return _SPACES.sub(" ", text).strip()


class CharVocab:
    """Index <-> character; index 0 is the CTC blank."""

    def __init__(self, tokens: list[str] = CHARACTERS):
        if not tokens or tokens[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}, got {tokens[:3]}")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def blank(self) -> int:
        return 0

    def encode(self, text: str) -> list[int]:
        """Normalised text -> token ids (characters outside the vocabulary are dropped)."""
        return [self.index[c] for c in normalize_text(text) if c in self.index]

    def decode(self, ids) -> str:
        """Token ids -> text; blanks are skipped, nothing is collapsed (see decode.py for CTC)."""
        return "".join(self.tokens[i] for i in ids if i != self.blank)
