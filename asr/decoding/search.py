"""The search over one utterance behind asr.decoding.beam: hypotheses, their scores, the frames of their tokens.

PrefixSearch holds the beam as {prefix node: [p_blank, p_nonblank, link_blank, link_nonblank]};
CTCBeamSearch (asr/decoding/beam.py) feeds it frame by frame: `blank_run` for near-certain blank frames,
`step` for the others, then `finish` for the n-best list.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field

from asr.decoding.config import BeamSearchConfig
from asr.decoding.greedy import Alignment
from asr.decoding.trie import PrefixTrie
from asr.text import Vocab, transcript

NEG = -math.inf
_log1p, _exp = math.log1p, math.exp


@dataclass(frozen=True)
class Hypothesis:
    text: str  # words separated by single spaces (with a grammar, "[unk]" for each word only [unk] spells)
    score: float  # acoustic_score + lm_score, what the n-best list is sorted by
    tokens: tuple[int, ...]  # token ids: no blank, repeats collapsed, no leading, trailing or double space
    frames: tuple[int, ...]  # frame (0-based) at which each token was emitted, one per token, increasing
    acoustic_score: float  # natural-log CTC probability, summed over the alignments kept
    lm_score: float  # fused LM score: sum over words of alpha * ln P_lm + beta, </s> included (0 without LM),
    # plus the steering's (hotwords completed, a grammar's [unk] penalties)
    # exp(score) / the sum of exp(score) over every text the final beam holds, in [0, 1]; not compared (it
    # depends on the rest of the beam, not on the hypothesis)
    confidence: float = field(default=1.0, compare=False)

    def alignment(self) -> Alignment:
        return Alignment(self.tokens, self.frames)


def _logadd(a: float, b: float) -> float:
    """log(exp(a) + exp(b))."""
    if a < b:
        a, b = b, a
    return a + _log1p(_exp(b - a)) if b > NEG else a


class PrefixSearch:
    """The beam of one utterance: {prefix node: [p_blank, p_nonblank, link_blank, link_nonblank]}.

    p_* are acoustic log-probs of the alignments ending in blank / in the node's last token; a link
    is (frame, link before) for the last token emitted along the best of those alignments.
    """

    def __init__(self, trie: PrefixTrie, cfg: BeamSearchConfig):
        self.trie, self.cfg = trie, cfg
        self.beam: dict[int, list] = {0: [0.0, NEG, None, None]}

    def blank_run(self, logprob: float) -> None:
        """Frames where blank is near-certain (their blank log-probs summed): blank continuations only."""
        for entry in self.beam.values():
            if entry[1] > NEG:  # (P, blank) and (P, non-blank) become one (P, blank)
                if entry[1] > entry[0]:
                    entry[2] = entry[3]
                entry[0], entry[1], entry[3] = _logadd(entry[0], entry[1]), NEG, None
            entry[0] += logprob

    def step(self, t: int, blank: float, tokens: dict[int, float]) -> None:
        """One frame (blank log-prob, {token: log-prob} of the non-blank tokens tried): each hypothesis
        continues with blank, with its last token if tried, or with another token tried."""
        space, rank, last_token = self.trie.space, self.trie.lm_rank, self.trie.token
        out: dict[int, list] = {}
        sources, best = [], NEG
        for node, (pb, pnb, lb, lnb) in self.beam.items():  # stays: blank, repeat, a space after a space
            if pb >= pnb:
                total, link = (pb + _log1p(_exp(pnb - pb)) if pnb > NEG else pb), lb
            else:
                total, link = (pnb + _log1p(_exp(pb - pnb)) if pb > NEG else pnb), lnb
            last = last_token[node]
            repeat = tokens.get(last)
            if repeat is None:
                nonblank, stay_link = NEG, None
            elif last == space:
                nonblank, stay_link = total + repeat, link
            else:
                nonblank, stay_link = pnb + repeat, lnb
            out[node] = [total + blank, nonblank, link, stay_link]
            score = (total + blank if total + blank > nonblank else nonblank) + rank[node]
            if score > best:
                best = score
            sources.append((node, last, pb, lb, total, link))
        if tokens:
            best = self._extend(t, tokens, sources, out, best)
        self.beam = self._select(out, best - self.cfg.beam_threshold)

    def _extend(self, t: int, tokens: dict[int, float], sources: list, out: dict[int, list], best: float) -> float:  # long: the hot loop, one call per frame
        """Add the extensions of every hypothesis -> the best score now. A prefix new to the beam is
        made (and a new trie node with it) only if it ends up within beam_threshold of the best."""
        trie, space, rank, steered = self.trie, self.trie.space, self.trie.lm_rank, self.trie.steering is not None
        children, width = trie.children, trie.size
        threshold, pending = self.cfg.beam_threshold, []
        for node, last, pb, lb, total, link in sources:
            base, (done, follows, known) = node * width, trie.letter_scores(node)
            for token, logprob in tokens.items():
                if token != last:
                    score, source = total + logprob, link
                elif token == space or pb == NEG:
                    continue
                else:
                    score, source = pb + logprob, lb  # a repeat needs a blank in between
                child = children.get(base + token)
                if child is None:
                    bonus = trie.steer_rank(node, token) if steered else 0.0
                    if bonus is None:
                        continue  # the grammar has no such text
                    if token == space:
                        ranked = score + trie.space_rank(node) + bonus
                    elif follows is None or token in follows or (known is not None and token in known):
                        ranked = score + done + bonus
                    else:  # plus the spelling penalty: the partial word leaves the LM's (and steering's) words
                        ranked = score + done + trie.unk_penalty + bonus
                elif child in out:  # already in the beam: log-add into its non-blank score
                    entry = out[child]
                    old = entry[1]
                    if score > old:
                        entry[1] = score + _log1p(_exp(old - score)) if old > NEG else score
                        entry[3] = (t, source)
                    elif score > NEG:
                        entry[1] = old + _log1p(_exp(score - old))
                    if entry[1] + rank[child] > best:
                        best = entry[1] + rank[child]
                    continue
                else:
                    ranked = score + rank[child]
                if ranked >= best - threshold:
                    pending.append((ranked, score, node, token, child, (t, source)))
                    if ranked > best:
                        best = ranked
        floor = best - threshold
        for ranked, score, node, token, child, link in pending:
            if ranked >= floor:
                out[trie.add(node, token) if child is None else child] = [NEG, score, None, link]
        return best

    def _select(self, out: dict[int, list], floor: float) -> dict[int, list]:
        """The (node, ending) pairs not below `floor`, recombined, then the best beam_size of them."""
        rank, cfg = self.trie.lm_rank, self.cfg
        self._threshold(out, floor, rank)
        if cfg.recombine:
            self._recombine(out, rank)
        if 2 * len(out) <= cfg.beam_size:
            return out
        states = [(e[i] + rank[node], node, i) for node, e in out.items() for i in (0, 1) if e[i] > NEG]
        if len(states) <= cfg.beam_size:
            return out
        beam: dict[int, list] = {}
        for _, node, i in heapq.nlargest(cfg.beam_size, states):
            entry = beam.get(node)
            if entry is None:
                entry = beam[node] = [NEG, NEG, None, None]
            e = out[node]
            entry[i], entry[i + 2] = e[i], e[i + 2]
        return beam

    @staticmethod
    def _threshold(out: dict[int, list], floor: float, rank: list[float]) -> None:
        """Drop, in place, the (node, ending) pairs below `floor`."""
        dead = []
        for node, e in out.items():
            r = rank[node]
            if e[0] + r < floor:
                e[0], e[2] = NEG, None
            if e[1] + r < floor:
                e[1], e[3] = NEG, None
                if e[0] == NEG:
                    dead.append(node)
        for node in dead:
            del out[node]

    def _recombine(self, out: dict[int, list], rank: list[float]) -> None:
        """Drop, in place, every closed prefix that another prefix with the same key dominates.

        Closed: neither its parent (which could feed it) nor any prefix below it is in the beam. One
        below it holds mass of its own for texts below the prefix ("a " below the empty prefix holds
        part of the text "a", which the empty prefix reaches by emitting 'a'), so the empty prefix is
        never closed. From then on a text below it, the prefix + rest, gets acoustic probability
        P_blank * F_blank(rest) + P_nonblank * F_nonblank(rest) (P = exp p) and fused LM score
        lm_rank + L(rest), where F_* (the alignments of the rest, given the last token) and L depend
        only on the key. So if p_blank + lm_rank and p_nonblank + lm_rank of another prefix with the
        same key are both at least as high, prefix + rest never outscores other + rest, whatever the
        rest: no text below the closed prefix can be the best. It goes, both endings together;
        nothing is merged.
        """
        key, info = self.trie.key, self.trie.info
        groups: dict[int, list[int]] = {}
        for node in out:
            groups.setdefault(key[node], []).append(node)
        if len(groups) == len(out):
            return  # every key once
        shared = [nodes for nodes in groups.values() if len(nodes) > 1]
        lowest = min(node for nodes in shared for node in nodes if node)  # the oldest prefix that may go
        above = set()  # the prefixes from `lowest` on with one below them in the beam
        for node in out:  # a child's node id is higher than its parent's: stop below `lowest`
            up = info[node][0]
            while up >= lowest and up not in above:
                above.add(up)
                up = info[up][0]
        for nodes in shared:
            for node in nodes:
                if not node or node in above or info[node][0] in out:
                    continue  # not closed
                pb, pnb = out[node][0] + rank[node], out[node][1] + rank[node]
                for other in nodes:
                    e = out.get(other)
                    if other != node and e is not None and e[0] + rank[other] >= pb and e[1] + rank[other] >= pnb:
                        del out[node]
                        break

    def finish(self, vocab: Vocab, nbest: int | None = None) -> list[Hypothesis]:
        """Merge prefixes with the same text (a trailing space), add the end-of-utterance scores -> the best
        `nbest` (default cfg.nbest) distinct texts, best first (with a grammar, texts as it labels them: those
        that read alike are one, with their confidences added). Ends a grammar forbids are left out."""
        trie, merged = self.trie, {}
        for node, (pb, pnb, lb, lnb) in self.beam.items():
            if node and trie.token[node] == trie.space:
                node = trie.info[node][0]
            for score, link in ((pb, lb), (pnb, lnb)):
                old = merged.get(node, (NEG, None))
                merged[node] = (_logadd(old[0], score), link if score > old[0] else old[1])
        scored = [(a + trie.lm_done(n) + trie.final(n), n, a, link) for n, (a, link) in merged.items()]
        scored = [item for item in scored if item[0] > NEG]
        if not scored:
            return []
        top = max(item[0] for item in scored)
        total = top + math.log(sum(_exp(item[0] - top) for item in scored))  # the confidences' denominator
        nbest = nbest or self.cfg.nbest
        steering = trie.steering
        if steering is None or steering.grammar is None:
            return [self._hypothesis(vocab, *item, total) for item in heapq.nlargest(nbest, scored)]
        hyps: dict[str, Hypothesis] = {}
        for item in sorted(scored, key=lambda item: item[0], reverse=True):
            hyp = self._hypothesis(vocab, *item, total, steering.label)
            first = hyps.setdefault(hyp.text, hyp)
            if first is not hyp:
                hyps[hyp.text] = dataclasses.replace(first, confidence=first.confidence + hyp.confidence)
        return list(hyps.values())[:nbest]

    def _hypothesis(self, vocab: Vocab, score: float, node: int, acoustic: float, link, total: float,
                    label=None) -> Hypothesis:
        tokens, frames = self.trie.tokens(node), []
        while link is not None:
            frames.append(link[0])
            link = link[1]
        frames = frames[::-1][: len(tokens)]  # a trailing space merged away drops its frame
        text = transcript(vocab, tokens)
        return Hypothesis(" ".join(label(text.split())) if label else text, score, tuple(tokens), tuple(frames), acoustic,
                          score - acoustic, min(1.0, _exp(score - total)))
