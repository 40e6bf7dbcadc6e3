"""Steering: what a caller tells the beam search for one call or one stream (hotwords, a grammar), checked.

    steering = make_steering(vocab, hotwords=[("rubout", None), ("new york", 2.0)], phrase_list=["yes", "[unk]"])
    CTCBeamSearch(vocab, cfg, lm)(log_probs, steering)           # or Decoder(...)(log_probs, lengths, steering)

Each request or stream makes its own; nothing of it outlives the call (what it works out as it goes, the
matchers' steps, is kept in the object). Phrases are folded as text is (lower case, accents dropped) and must
then be spelt by the vocabulary: anything else is refused with one line (SteeringError) naming the phrase.
The words of the phrases count as known to the LM's spelling check: they get no unk_penalty from it (the LM
still scores them as it scores any word it does not list).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from asr.decoding.grammar import UNK_WORD, Grammar
from asr.decoding.hotwords import Hotwords
from asr.decoding.trie import Spelling
from asr.manifest import parse_json
from asr.text import Vocab, _fold

DEFAULT_HOTWORD_SCORE = 1.0  # bonus per token of a hotword phrase (natural log), where none is given; chosen
# on AN4 dev for the shipped model (python bench/biasing.py --manifest manifests/an4/dev.jsonl --score S: 1.0 and
# 1.5 recover the same recall, 1.5 moves the WER of the other utterances by +0.49 points, 1.0 by 0)
MAX_HOTWORD_SCORE = 10.0  # per token: more would let a hotword outweigh any acoustics
GRAMMAR_UNK_PENALTY = -3.0  # natural log per "[unk]" in a grammar's parse; chosen on AN4 dev for the shipped model
# (python bench/biasing.py --manifest manifests/an4/dev.jsonl --grammar-unk-penalty P): at -10, the LM's unknown-word
# penalty it was before, the search dropped short words rather than pay it (dev WER against the references with
# [unk] for the words outside the grammar: 19.87% at -10, 8.26% at -3; on the words the grammar lists: 9.57 / 8.70%)
MAX_PHRASES = 10_000  # hotwords, or phrases in a grammar
MAX_PHRASE_CHARS = 100
MAX_FILE_BYTES = 16 * 2**20  # a hotwords or grammar file (MAX_PHRASES phrases of MAX_PHRASE_CHARS take 1 MB)


class SteeringError(ValueError):
    """Hotwords or a grammar that cannot be used; the message says which (`what`: a flag, file or field) and why,
    in one line."""

    def __init__(self, what: str, message: str):
        super().__init__(f"{what}: {message}")
        self.what = what


def spell(text: str, vocab: Vocab, what: str) -> str:
    """The phrase folded (lower case, accents dropped, single spaces); SteeringError unless the vocabulary spells it."""
    phrase = " ".join(_fold(text).split())
    if not phrase:
        raise SteeringError(what, "an empty phrase")
    if len(phrase) > MAX_PHRASE_CHARS:
        raise SteeringError(what, f"a phrase of {len(phrase)} characters (at most {MAX_PHRASE_CHARS}): {text[:40]!r}...")
    if bad := sorted({ch for ch in phrase if ch not in vocab.index}):
        raise SteeringError(what, f"{text!r} has characters the model cannot spell: {''.join(bad)!r} "
                            "(spell numbers and symbols as words)")
    return phrase


def parse_hotword(text: str) -> tuple[str, float | None]:
    """"PHRASE[:SCORE]" -> (phrase, score or None)."""
    phrase, colon, score = text.rpartition(":")
    if colon and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*|\s*[-+]?(inf|nan)\s*", score, re.I):
        return phrase, float(score)
    return text, None


def split_hotwords(text: str) -> list[tuple[str, float | None]]:
    """One text of hotwords, as a request field or a stream's config gives it: PHRASE[:SCORE] items separated
    by commas or new lines (blank items skipped) -> [(phrase, score or None)]."""
    return [parse_hotword(item) for item in re.split(r"[,\n]", text) if item.strip()]


def read_steering_file(path: str | Path, what: str, holding: str = "it") -> str:
    """The text of a hotwords or grammar file (a byte-order mark dropped); SteeringError naming `what` for one that
    cannot be read, is not UTF-8, or holds more than MAX_FILE_BYTES (/dev/zero given as one grew without end)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SteeringError(what, f"more than {MAX_FILE_BYTES // 2**20} MiB: no list of phrases is that long")
        return data.decode("utf-8-sig")  # -sig: a byte-order mark is dropped
    except (OSError, UnicodeDecodeError) as e:
        raise SteeringError(what, f"cannot read {holding} ({getattr(e, 'strerror', None) or e})") from e


def read_hotwords(path: str | Path) -> list[tuple[str, float | None, str]]:
    """A hotwords file: one PHRASE[:SCORE] a line, each with "path:line" for what hotword_scores says of it; blank
    lines and lines starting with # are skipped."""
    lines = read_steering_file(path, str(path), "the hotwords").splitlines()
    hotwords = [(*parse_hotword(line), f"{path}:{n}") for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not hotwords:
        raise SteeringError(str(path), "no hotwords in the file (one PHRASE[:SCORE] a line)")
    return hotwords


def read_grammar(text: str, what: str) -> list[str]:
    """A phrase list as Vosk takes it: a JSON list of strings ("[unk]" among them for any other word)."""
    try:
        value = parse_json(text)
    except ValueError as e:
        raise SteeringError(what, f"not JSON ({e}); expected a list of phrases") from None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise SteeringError(what, f"expected a JSON list of phrases (strings), got {text.strip()[:60]!r}")
    return value


def hotword_scores(hotwords: list[tuple], vocab: Vocab, what: str = "hotwords",
                   default: float = DEFAULT_HOTWORD_SCORE) -> dict[str, float]:
    """Checked hotwords, each (phrase, score or None[, where it was given: named in its error instead of `what`])
    -> {phrase: score per token} (a phrase given twice keeps its higher score)."""
    if not hotwords:
        raise SteeringError(what, "an empty list")
    if len(hotwords) > MAX_PHRASES:
        raise SteeringError(what, f"{len(hotwords)} phrases (at most {MAX_PHRASES})")
    out: dict[str, float] = {}
    for text, score, *given_at in hotwords:
        where = given_at[0] if given_at else what
        score = default if score is None else score
        if not (math.isfinite(score) and 0 < score <= MAX_HOTWORD_SCORE):
            raise SteeringError(where, f"{text!r} has a score of {score:g}; a score is a bonus per token "
                                f"(character) in (0, {MAX_HOTWORD_SCORE:g}]")
        phrase = spell(text, vocab, where)
        out[phrase] = max(score, out.get(phrase, score))
    return out


def grammar_phrases(phrases: list[str], vocab: Vocab, what: str = "phrase_list") -> list[str]:
    """Checked grammar phrases, folded; "[unk]" kept as it is."""
    if not phrases:
        raise SteeringError(what, "an empty list of phrases")
    if len(phrases) > MAX_PHRASES:
        raise SteeringError(what, f"{len(phrases)} phrases (at most {MAX_PHRASES})")
    out = [p.strip().lower() if p.strip().lower() == UNK_WORD else spell(p, vocab, what) for p in phrases]
    if all(p == UNK_WORD for p in out):
        raise SteeringError(what, f"only {UNK_WORD}; list the phrases to expect")
    return out


def make_steering(vocab: Vocab, hotwords: list[tuple[str, float | None]] | None = None,
                  phrase_list: list[str] | None = None, unk_penalty: float = GRAMMAR_UNK_PENALTY,
                  default_score: float = DEFAULT_HOTWORD_SCORE,
                  names: tuple[str, str] = ("hotwords", "phrase_list")) -> Steering | None:
    """A Steering of the checked hotwords and phrase list (None: neither given); SteeringError if one is bad,
    naming it as `names` says (a flag, a request field)."""
    hot = (Hotwords(hotword_scores(hotwords, vocab, names[0], default_score), vocab) if hotwords is not None
           else None)
    grammar = (Grammar(grammar_phrases(phrase_list, vocab, names[1]), vocab, unk_penalty) if phrase_list is not None
               else None)
    return None if hot is None and grammar is None else Steering(vocab, hot, grammar)


class Steering:
    """Hotwords and a grammar read together: the search's one matcher (states are made as they are met)."""

    def __init__(self, vocab: Vocab, hotwords: Hotwords | None = None, grammar: Grammar | None = None):
        self.hotwords, self.grammar = hotwords, grammar
        words = (hotwords.words() if hotwords else set()) | (grammar.words() if grammar else set())
        self.words = Spelling(frozenset(words), vocab) if words else None  # no unk_penalty from the LM for these
        self._pairs: list[tuple[int, int]] = [(0, 0)]  # state -> (hotword state, grammar state)
        self._ids: dict[tuple[int, int], int] = {(0, 0): 0}
        self._steps: dict[tuple[int, int], tuple[int, float, float] | None] = {}

    def step(self, state: int, token: int) -> tuple[int, float, float] | None:
        """(next state, score kept by the step, rank bonus of the match in progress after it), or None where the
        grammar forbids the token."""
        key = (state, token)
        if key in self._steps:
            return self._steps[key]
        h, g = self._pairs[state]
        kept = rank = 0.0
        moved = self.grammar.step(g, token) if self.grammar is not None else (0, 0.0, 0.0)
        if moved is not None:
            g, kept, rank = moved
            if self.hotwords is not None:
                h, gain = self.hotwords.step(h, token)
                kept, rank = kept + gain, rank + self.hotwords.rank(h)
            nxt = self._ids.setdefault((h, g), len(self._pairs))
            if nxt == len(self._pairs):
                self._pairs.append((h, g))
            moved = (nxt, kept, rank)
        self._steps[key] = moved
        return moved

    def end(self, state: int) -> float:
        """Score of ending the text in `state`: hotwords completed by the end, the grammar's last word (-inf
        where the grammar's phrases do not end here)."""
        h, g = self._pairs[state]
        score = self.hotwords.gain(h) if self.hotwords is not None else 0.0
        return score + (self.grammar.end(g) if self.grammar is not None else 0.0)

    def label(self, words: list[str]) -> list[str]:
        """The words, with those that only [unk] spells as "[unk]" (unchanged without a grammar)."""
        return self.grammar.label(words) if self.grammar is not None else list(words)
