"""The prefixes of a CTC beam search, as a trie, with what the word LM says about each prefix.

A prefix is a node id (0: the empty prefix). Per node the trie keeps the partial word (the
characters after the last space), the LM state after the completed words, and their fused score
`lm_done` = sum over completed words of alpha * ln P_lm(word | history) + beta (+ unk_penalty for
a word outside the LM's vocabulary). `lm_rank` adds unk_penalty while the partial word is no
prefix of any LM word. `key` numbers (LM state, partial word, steering state): prefixes with the same key are
scored alike from now on, whatever came before (their last tokens are the same, the root counting as
a space). Without an LM every prefix ending in a space has one key: nothing scores their futures
apart. A shared key alone never merges two texts: see the recombination rule in beam.py's docstring
and PrefixSearch._recombine (search.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

from asr.lm import LanguageModel
from asr.text import Vocab


class Spelling:
    """The LM's words as a character trie over token ids: which partial words can still become words."""

    def __init__(self, words: frozenset[str], vocab: Vocab):
        self.next: list[dict[int, int]] = [{}]  # state -> {token: state}; state 0 is the empty spelling
        self.is_word: list[bool] = [False]
        for word in words:
            if not all(ch in vocab.index for ch in word):
                continue  # cannot be spelt with this vocabulary
            state = 0
            for token in (vocab.index[ch] for ch in word):
                nxt = self.next[state].get(token)
                if nxt is None:
                    nxt = self.next[state][token] = len(self.next)
                    self.next.append({})
                    self.is_word.append(False)
                state = nxt
            self.is_word[state] = True


@dataclass(frozen=True)
class Fusion:
    """A word LM and how its scores join the acoustic ones (see the module docstring)."""

    lm: LanguageModel
    alpha: float  # LM weight, on natural-log probabilities
    beta: float  # bonus per word
    unk_penalty: float  # per word outside the LM's vocabulary
    spelling: Spelling | None  # the LM's words (None: not known, no unk_penalty)

    @classmethod
    def make(cls, lm: LanguageModel, vocab: Vocab, alpha: float, beta: float, unk_penalty: float) -> Fusion:
        spelling = Spelling(lm.vocabulary, vocab) if lm.vocabulary is not None else None
        return cls(lm, alpha, beta, unk_penalty, spelling)


class PrefixTrie:
    """Prefix nodes; `add` makes a child and scores a completed word once. Read often: token, lm_rank, key
    (lists by node); the rest sits in `info[node]` = (parent, word, LM state, done, spell, known, steer).

    With a Steering (asr.decoding.steering: hotwords, a grammar) `done` also holds the score its matcher kept
    (hotwords completed, [unk] penalties), lm_rank the bonus of the match in progress, `key` the matcher's
    state, and `final` its end; `known` spells the steering's words, which get no unk_penalty from the LM.
    """

    def __init__(self, vocab: Vocab, fusion: Fusion | None, steering=None):
        self.space, self.size, self.chars = vocab.index[" "], len(vocab), vocab.tokens
        self.fusion, self.steering = fusion, steering
        self.unk_penalty = fusion.unk_penalty if fusion is not None else 0.0
        self.spelling = fusion.spelling if fusion is not None else None
        self.known = steering.words if steering is not None and self.spelling is not None else None
        state = fusion.lm.begin_state() if fusion is not None else None
        self.children: dict[int, int] = {}  # node * vocabulary size + token -> node
        self.token = [self.space]  # the root counts as a space: a space never starts a prefix
        self.lm_rank = [0.0]
        self._keys: dict[tuple, int] = {(state, 0): 0}  # (LM state, steer) after a space, (parent key, token) else
        self.key = [0]
        # spell: state in self.spelling, -1: no LM word; known: in self.known, -1: none; steer: the Steering's state
        self.info: list[tuple] = [(-1, "", state, 0.0, 0, 0 if self.known else -1, 0)]
        self._completions: dict[int, tuple[float, Hashable]] = {}

    def completion(self, node: int) -> tuple[float, Hashable]:
        """(fused score of completing the node's partial word, the LM state after it), cached."""
        done = self._completions.get(node)
        if done is None:
            _, word, state, _, spell, known, _ = self.info[node]
            if word and self.fusion is not None:
                f = self.fusion
                logprob, state = f.lm.score(state, word)
                known = (f.spelling is None or (spell >= 0 and f.spelling.is_word[spell])
                         or (known >= 0 and self.known.is_word[known]))
                done = (f.alpha * logprob + f.beta + (0.0 if known else f.unk_penalty), state)
            else:
                done = (0.0, state)
            self._completions[node] = done
        return done

    def letter_scores(self, node: int) -> tuple[float, dict | None, dict | None]:
        """(lm_done of the node, the tokens that keep its partial word a prefix of an LM word or None if any
        does, those that keep it a prefix of a steering word or None): a letter child's lm_rank is lm_done, plus
        unk_penalty unless the token follows, plus the steering's bonus (steer_rank)."""
        _, _, _, done, spell, known, _ = self.info[node]
        if self.spelling is None:
            return done, None, None
        return done, self.spelling.next[spell] if spell >= 0 else {}, self.known.next[known] if known >= 0 else None

    def steer_rank(self, node: int, token: int) -> float | None:
        """The steering's part of the child's lm_rank (score kept + bonus in progress); None if it forbids it."""
        step = self.steering.step(self.info[node][6], token)
        return None if step is None else step[1] + step[2]

    def space_rank(self, node: int) -> float:
        """lm_rank of the child node + space, before it is made (without the steering's part)."""
        return self.info[node][3] + self.completion(node)[0]

    def lm_done(self, node: int) -> float:
        return self.info[node][3]

    def final(self, node: int) -> float:
        """Fused score of ending the utterance after the node: its partial word, then </s>, then the steering's
        end (-inf where a grammar does not let the text end here)."""
        end = self.steering.end(self.info[node][6]) if self.steering is not None else 0.0
        if self.fusion is None:
            return end
        score, state = self.completion(node)
        return score + self.fusion.alpha * self.fusion.lm.final_score(state) + end

    def add(self, parent: int, token: int) -> int:
        """Make the child parent + token (a space after a space is not a child; the caller keeps out those
        the steering forbids)."""
        node = len(self.token)
        self.children[parent * self.size + token] = node
        self.token.append(token)
        _, word, state, done, spell, known, steer = self.info[parent]
        kept = bonus = 0.0
        if self.steering is not None:
            steer, kept, bonus = self.steering.step(steer, token)
        if token == self.space:
            score, state = self.completion(parent)
            word, done, spell, known = "", done + score + kept, 0, 0 if self.known else -1
            rank = done
            key = self._keys.setdefault((state, steer), len(self._keys))
        else:
            word, done = word + self.chars[token], done + kept
            rank = done
            if self.spelling is not None:
                spell = self.spelling.next[spell].get(token, -1) if spell >= 0 else -1
                known = self.known.next[known].get(token, -1) if known >= 0 else -1
                rank = done if spell >= 0 or known >= 0 else done + self.fusion.unk_penalty
            key = self._keys.setdefault((self.key[parent], token), len(self._keys))
        self.lm_rank.append(rank + bonus)
        self.key.append(key)
        self.info.append((parent, word, state, done, spell, known, steer))
        return node

    def tokens(self, node: int) -> list[int]:
        out = []
        while node > 0:
            out.append(self.token[node])
            node = self.info[node][0]
        return out[::-1]
