"""What the beam search needs of a word language model, the error every LM reader raises, and the one
(state, word) score cache that the scorers share. Every score is a natural log."""

from __future__ import annotations

from typing import Callable, Hashable, Protocol

CACHE_LIMIT = 1 << 20  # cached (state, word) scores before a cache is emptied


class LMError(Exception):
    """A language model file is missing or malformed; the message starts with `path` or `path:line`."""


class LanguageModel(Protocol):
    """What the beam search needs from a word language model (natural-log scores)."""

    order: int
    vocabulary: frozenset[str] | None  # the LM's words (None: unknown, e.g. a KenLM binary)

    def begin_state(self) -> Hashable: ...
    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]: ...
    def final_score(self, state: Hashable) -> float: ...


class ScoreCache:
    """score(state, word) -> (logprob, state after) through a dict; emptied once it holds `limit` entries,
    so memory stays bounded on long inputs. The beam search asks the same (state, word) very often."""

    def __init__(self, score: Callable[[Hashable, str], tuple[float, Hashable]], limit: int = CACHE_LIMIT):
        self._score, self._limit = score, limit
        self._entries: dict = {}

    def __call__(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        key = (state, word)
        hit = self._entries.get(key)
        if hit is None:
            hit = self._score(state, word)
            if len(self._entries) >= self._limit:
                self._entries.clear()
            self._entries[key] = hit
        return hit
