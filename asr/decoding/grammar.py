"""A grammar in Vosk's shape: a list of phrases, and "[unk]" for any other word; the search keeps to it.

    g = Grammar(["yes", "no", "call home", "[unk]"], vocab, unk_penalty=-3.0)
    state, penalty, rank = g.step(state, token)     # None where the token would leave the grammar
    g.label("call mom".split())                     # ["call", "[unk]"]: the words [unk] stands for

A text is in the grammar's language when its words are a sequence of phrases, where "[unk]" (if listed) stands
for any one word. Each [unk] in the parse with the fewest of them costs `unk_penalty`. The matcher reads the
text token by token; its state is the set of places the parses so far can be in (a node of the phrases' trie,
or UNK: inside a word that [unk] spells), each with how many more [unk]s than the best parse it took, so that
a step's penalty is exact: the growth of the best parse's count. States and steps are made as they are met.
"""

from __future__ import annotations

import math

from asr.text import Vocab

UNK_WORD = "[unk]"
UNK = -1  # the place inside a word that [unk] spells
NEG = -math.inf


class Grammar:
    def __init__(self, phrases: list[str], vocab: Vocab, unk_penalty: float):
        self.space, self.penalty = vocab.index[" "], unk_penalty
        self.unk = UNK_WORD in phrases
        self.phrases = sorted({p for p in phrases if p != UNK_WORD})
        self.next: list[dict[int, int]] = [{}]  # trie node -> {token: node}
        self.ends = [False]  # a phrase ends at the node
        for phrase in self.phrases:
            node = 0
            for token in (vocab.index[ch] for ch in phrase):
                child = self.next[node].get(token)
                if child is None:
                    child = self.next[node][token] = len(self.next)
                    self.next.append({})
                    self.ends.append(False)
                node = child
            self.ends[node] = True
        start = frozenset({(0, 0)})
        self._sets: list[frozenset] = [start]  # state -> {(place, extra [unk]s)}
        self._ids: dict[frozenset, int] = {start: 0}
        self._steps: dict[tuple[int, int], tuple[int, float, float] | None] = {}
        self._word_set = {tuple(p.split()) for p in self.phrases}
        self._longest = max((len(p) for p in self._word_set), default=0)

    def _moves(self, place: int, token: int) -> list[tuple[int, int]]:
        """(place, [unk]s completed) after `token` from `place`."""
        if place == UNK:
            return [(0, 1)] if token == self.space else [(UNK, 0)]
        out = [(self.next[place][token], 0)] if token in self.next[place] else []
        if token == self.space and self.ends[place]:
            out.append((0, 0))  # the next phrase
        elif token != self.space and self.unk and place == 0:
            out.append((UNK, 0))  # [unk] is a phrase of its own: it starts where a phrase may
        return out

    def step(self, state: int, token: int) -> tuple[int, float, float] | None:
        """(next state, penalty of the [unk]s this step completed, rank penalty of the word in progress),
        or None where no parse goes on."""
        key = (state, token)
        if key in self._steps:
            return self._steps[key]
        best: dict[int, int] = {}
        for place, extra in self._sets[state]:
            for after, unks in self._moves(place, token):
                best[after] = min(best.get(after, math.inf), extra + unks)
        done = None
        if best:
            low = min(best.values())
            places = frozenset((p, k - low) for p, k in best.items())
            nxt = self._ids.setdefault(places, len(self._sets))
            if nxt == len(self._sets):
                self._sets.append(places)
            done = (nxt, low * self.penalty, self.rank(nxt))
        self._steps[key] = done
        return done

    def rank(self, state: int) -> float:
        """The penalty the best parse will pay for the word in progress (when only [unk] spells it)."""
        return min(k + (p == UNK) for p, k in self._sets[state]) * self.penalty

    def end(self, state: int) -> float:
        """The penalty of ending the text here (its last word counted), or -inf if no parse ends here."""
        ends = [k + (p == UNK) for p, k in self._sets[state] if p == UNK or self.ends[p] or p == 0]
        return min(ends) * self.penalty if ends else NEG

    def label(self, words: list[str]) -> list[str]:
        """The words as the parse with the fewest [unk]s reads them: listed words as they are, others "[unk]".
        Words no parse covers are left as they are (the search never ends there)."""
        n, cost = len(words), [math.inf] * (len(words) + 1)
        back: list[tuple[int, bool]] = [(0, False)] * (n + 1)
        cost[0] = 0
        for i in range(n):
            if cost[i] == math.inf:
                continue
            for j in range(i + 1, min(n, i + self._longest) + 1):
                if tuple(words[i:j]) in self._word_set and cost[i] < cost[j]:
                    cost[j], back[j] = cost[i], (i, False)
            if self.unk and cost[i] + 1 < cost[i + 1]:
                cost[i + 1], back[i + 1] = cost[i] + 1, (i, True)
        if cost[n] == math.inf:
            return list(words)
        out, j = list(words), n
        while j > 0:
            i, unk = back[j]
            if unk:
                out[i] = UNK_WORD
            j = i
        return out

    def words(self) -> set[str]:
        return {word for phrase in self.phrases for word in phrase.split()}
