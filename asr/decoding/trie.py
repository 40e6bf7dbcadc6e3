"""The prefixes of a CTC beam search, as a trie, with what the word LM says about each prefix.

A prefix is a node id (0: the empty prefix). Per node the trie keeps the partial word (the
characters after the last space), the LM state after the completed words, and their fused score
`lm_done` = sum over completed words of alpha * ln P_lm(word | history) + beta (+ unk_penalty for
a word outside the LM's vocabulary). `lm_rank` adds unk_penalty while the partial word is no
prefix of any LM word. `key` numbers (LM state, partial word): prefixes with the same key are
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
    """Prefix nodes; `add` makes a child and scores a completed word once. Read often: token,
    lm_rank, key (lists by node); the rest sits in `info[node]` = (parent, word, LM state, lm_done, spell)."""

    def __init__(self, vocab: Vocab, fusion: Fusion | None):
        self.space, self.size, self.chars = vocab.index[" "], len(vocab), vocab.tokens
        self.fusion = fusion
        self.unk_penalty = fusion.unk_penalty if fusion is not None else 0.0
        self.spelling = fusion.spelling if fusion is not None else None
        state = fusion.lm.begin_state() if fusion is not None else None
        self.children: dict[int, int] = {}  # node * vocabulary size + token -> node
        self.token = [self.space]  # the root counts as a space: a space never starts a prefix
        self.lm_rank = [0.0]
        self._keys: dict[tuple, int] = {(state,): 0}  # (LM state,) after a space, (parent key, token) else
        self.key = [0]
        self.info: list[tuple] = [(-1, "", state, 0.0, 0)]  # spell: state in self.spelling, -1: no LM word
        self._completions: dict[int, tuple[float, Hashable]] = {}

    def completion(self, node: int) -> tuple[float, Hashable]:
        """(fused score of completing the node's partial word, the LM state after it), cached."""
        done = self._completions.get(node)
        if done is None:
            _, word, state, _, spell = self.info[node]
            if word and self.fusion is not None:
                f = self.fusion
                logprob, state = f.lm.score(state, word)
                known = f.spelling is None or (spell >= 0 and f.spelling.is_word[spell])
                done = (f.alpha * logprob + f.beta + (0.0 if known else f.unk_penalty), state)
            else:
                done = (0.0, state)
            self._completions[node] = done
        return done

    def letter_scores(self, node: int) -> tuple[float, dict | None]:
        """(lm_done of the node, the tokens that keep its partial word a prefix of an LM word, or None
        if any does): a letter child's lm_rank is lm_done, plus unk_penalty unless the token follows."""
        _, _, _, done, spell = self.info[node]
        if self.spelling is None:
            return done, None
        return done, self.spelling.next[spell] if spell >= 0 else {}

    def space_rank(self, node: int) -> float:
        """lm_rank of the child node + space, before it is made."""
        return self.info[node][3] + self.completion(node)[0]

    def lm_done(self, node: int) -> float:
        return self.info[node][3]

    def final(self, node: int) -> float:
        """Fused score of ending the utterance after the node: its partial word, then </s>."""
        if self.fusion is None:
            return 0.0
        score, state = self.completion(node)
        return score + self.fusion.alpha * self.fusion.lm.final_score(state)

    def add(self, parent: int, token: int) -> int:
        """Make the child parent + token (a space after a space is not a child: the caller keeps it out)."""
        node = len(self.token)
        self.children[parent * self.size + token] = node
        self.token.append(token)
        _, word, state, done, spell = self.info[parent]
        if token == self.space:
            score, state = self.completion(parent)
            word, done, spell, rank = "", done + score, 0, done + score
            key = self._keys.setdefault((state,), len(self._keys))
        else:
            word, rank = word + self.chars[token], done
            if self.spelling is not None:
                spell = self.spelling.next[spell].get(token, -1) if spell >= 0 else -1
                rank = done if spell >= 0 else done + self.fusion.unk_penalty
            key = self._keys.setdefault((self.key[parent], token), len(self._keys))
        self.lm_rank.append(rank)
        self.key.append(key)
        self.info.append((parent, word, state, done, spell))
        return node

    def tokens(self, node: int) -> list[int]:
        out = []
        while node > 0:
            out.append(self.token[node])
            node = self.info[node][0]
        return out[::-1]
