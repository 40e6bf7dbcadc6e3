"""Hotwords: phrases the beam search favours, given per call (contextual biasing, as sherpa-onnx and pyctcdecode).

    hot = Hotwords({"rubout": 2.0, "new york": 1.5}, vocab)     # phrase -> bonus per token (natural log)
    state, gain = hot.step(state, token)                         # the matcher, one token at a time

A phrase is spelt by the character vocabulary and matched as whole words: it starts where a word starts (the
start of the text, or after a space) and ends where one ends (a space, or the end of the text). Definition:

    bonus(text) = sum over phrases p of score_p * len(p) * (the whole-word occurrences of p in text)

(len in tokens, spaces inside the phrase included; occurrences may overlap: "new york" and "york" both count
in "new york"). While a prefix is being spelt the matcher's state is the longest suffix of it that starts at
a word start and begins some phrase; the prefix is ranked with `partial[state]` = its length * the best score
of the phrases it begins, a bonus per matched token. When the match breaks the state falls back to a shorter
such suffix (or to none), and the bonus of the tokens lost goes with it: taken back. A completed phrase's
len * score is kept (`gain`) once the word boundary after it is emitted, or at the end of the text (`end`).
Each transition is worked out once per call and kept, so the search's cost per token does not grow with the
number of phrases.
"""

from __future__ import annotations

from asr.text import Vocab

DEAD = -1  # matcher state inside a word that began no phrase: nothing can match until the next space


class Hotwords:
    """Phrases (already spellable: see asr.decoding.steering.make_steering) as a trie over token ids, with a
    whole-word matcher. Node 0 is the empty match, at a word start."""

    def __init__(self, phrases: dict[str, float], vocab: Vocab):
        self.space = vocab.index[" "]
        self.phrases = dict(phrases)
        self.next: list[dict[int, int]] = [{}]  # node -> {token: node}
        self.path: list[tuple[int, ...]] = [()]  # node -> its tokens
        self.partial: list[float] = [0.0]  # node -> len * best score of the phrases it begins (the rank bonus)
        self.bonus: list[float] = [0.0]  # node -> len * score where a phrase ends here, else 0
        for phrase, score in self.phrases.items():
            node = 0
            for depth, token in enumerate((vocab.index[ch] for ch in phrase), 1):
                node = self._child(node, token)
                self.partial[node] = max(self.partial[node], depth * score)
            self.bonus[node] = max(self.bonus[node], len(phrase) * score)
        self._steps: dict[tuple[int, int], tuple[int, float]] = {}
        self._gains: dict[int, float] = {}

    def _child(self, node: int, token: int) -> int:
        child = self.next[node].get(token)
        if child is None:
            child = self.next[node][token] = len(self.next)
            self.next.append({})
            self.path.append(self.path[node] + (token,))
            self.partial.append(0.0)
            self.bonus.append(0.0)
        return child

    def find(self, tokens: tuple[int, ...]) -> int | None:
        """The node spelling `tokens` from a word start, or None if no phrase begins so."""
        node = 0
        for token in tokens:
            node = self.next[node].get(token)
            if node is None:
                return None
        return node

    def _word_starts(self, tokens: tuple[int, ...]) -> list[int]:
        """Where words start in `tokens` (which start at a word start): 0 and after each space, longest suffix first."""
        return [0] + [i + 1 for i, t in enumerate(tokens) if t == self.space]

    def gain(self, state: int) -> float:
        """The bonus kept when a word boundary follows `state`: every phrase ending here as whole words."""
        if state == DEAD:
            return 0.0
        done = self._gains.get(state)
        if done is None:
            path = self.path[state]
            found = (self.find(path[i:]) for i in self._word_starts(path))
            done = self._gains[state] = sum(self.bonus[n] for n in found if n is not None)
        return done

    def step(self, state: int, token: int) -> tuple[int, float]:
        """(the state after `token`, the bonus kept by it: gain(state) if it is a space, else 0)."""
        key = (state, token)
        done = self._steps.get(key)
        if done is None:
            if state == DEAD:
                done = (0 if token == self.space else DEAD, 0.0)
            else:
                path = self.path[state] + (token,)
                found = (self.find(path[i:]) for i in self._word_starts(path))
                after = next((n for n in found if n is not None), DEAD)  # a space always finds the empty match
                done = (after, self.gain(state) if token == self.space else 0.0)
            self._steps[key] = done
        return done

    def rank(self, state: int) -> float:
        """The bonus of the partial match in progress (taken back if it breaks)."""
        return 0.0 if state == DEAD else self.partial[state]

    def words(self) -> set[str]:
        return {word for phrase in self.phrases for word in phrase.split()}
