"""ARPA files: read (plain or gzip) and write back-off n-gram models; NgramLM scores words from them.

ARPA holds log10 probabilities; NgramLM keeps them as read (so a read -> write -> read round trip is
exact) and returns natural logs, through the LanguageModel interface of asr/lm/interface.py.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence, TextIO

from asr.lm.interface import LMError, ScoreCache
from asr.manifest import not_utf8

LN10 = math.log(10.0)  # log10 -> natural log
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NO_UNK_LOGPROB10 = -100.0  # log10 probability of an unknown word when the LM has no <unk> (as KenLM)
MAX_LOGPROB10 = 1e-6  # above this a log10 probability is a probability over one, not rounding of log10(1)


class NgramLM:
    """A back-off n-gram model held in dicts keyed by word-id tuples (log10 values as in ARPA).

    A state is the tuple of word ids of the longest history suffix that the model can still use.
    """

    def __init__(self, order: int, words: list[str], logprob10: dict, backoff10: dict):
        self.order = order
        self.words = list(words)  # id -> word
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.logprob10 = logprob10  # (id, ...) -> log10 p(last | rest)
        self.backoff10 = backoff10  # (id, ...) -> log10 back-off weight of that history
        self.unk = self.ids.get(UNK)
        self.vocabulary = frozenset(w for w in self.words if w not in (BOS, EOS, UNK))
        self.score = ScoreCache(self._score)  # score(state, word) -> (natural-log p(word | state), state after)

    def __len__(self) -> int:
        return len(self.logprob10)

    def counts(self) -> list[int]:
        """Number of n-grams of each order, 1..order."""
        out = [0] * self.order
        for key in self.logprob10:
            out[len(key) - 1] += 1
        return out

    def logprob10_ids(self, history: tuple[int, ...], w: int) -> float:
        """log10 p(w | history) with back-off; history is any tuple of ids."""
        history = history[max(0, len(history) - self.order + 1):]
        total = 0.0
        for start in range(len(history) + 1):
            ctx = history[start:]
            p = self.logprob10.get(ctx + (w,))
            if p is not None:
                return total + p
            total += self.backoff10.get(ctx, 0.0)
        return total + NO_UNK_LOGPROB10  # w has no unigram: not a word of this model

    def _state_after(self, history: tuple[int, ...]) -> tuple[int, ...]:
        """The longest suffix (at most order - 1 words) that is a history the model knows."""
        history = history[max(0, len(history) - self.order + 1):]
        while history and history not in self.backoff10:
            history = history[1:]
        return history

    def logprob(self, history: Sequence[str], word: str) -> float:
        """Natural-log p(word | history); unknown words count as <unk> (or the fixed penalty)."""
        ids = tuple(self.ids.get(h, self.unk if self.unk is not None else -1) for h in history)
        w = self.ids.get(word, self.unk)
        if w is None:
            return NO_UNK_LOGPROB10 * LN10
        return self.logprob10_ids(ids, w) * LN10

    def begin_state(self) -> tuple[int, ...]:
        return self._state_after((self.ids[BOS],)) if BOS in self.ids else ()

    def _score(self, state: tuple[int, ...], word: str) -> tuple[float, tuple[int, ...]]:
        """(natural-log p(word | state), the state after word)."""
        w = self.ids.get(word, self.unk)
        if w is None:
            return NO_UNK_LOGPROB10 * LN10, ()
        return self.logprob10_ids(state, w) * LN10, self._state_after(state + (w,))

    def final_score(self, state: tuple[int, ...]) -> float:
        """Natural-log p(</s> | state)."""
        return self.score(state, EOS)[0]


def open_text(path: Path):
    """A text file, plain or gzip, read as UTF-8; a byte-order mark at its start (utf-8-sig) is dropped. A pipe
    (not a regular file) is read whole, here: it cannot be opened again to read what a look at its start took."""
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            data = f.read()
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig")
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                yield lineno, line.strip()
    except UnicodeDecodeError:
        raise LMError(not_utf8(path) + "; save it as UTF-8") from None
    except (OSError, EOFError) as e:
        raise LMError(f"{path}: cannot read ({e})") from e


def _read_counts(path: Path, lines: Iterator[tuple[int, str]]) -> list[int]:
    """The \\data\\ header -> [count of 1-grams, count of 2-grams, ...]; stops at the first section."""
    for lineno, line in lines:
        if line == "\\data\\":
            break
        if line.startswith("\\"):
            raise LMError(f"{path}:{lineno}: expected \\data\\ before {line!r}")
    else:
        raise LMError(f"{path}: not an ARPA file (no \\data\\ line)")
    counts: list[int] = []
    for lineno, line in lines:
        if not line:
            if counts:
                return counts
            continue
        if line.startswith("\\") and counts:
            raise LMError(f"{path}:{lineno}: expected a blank line between the counts and {line!r}")
        head, _, value = line.partition("=")
        parts = head.split()
        if len(parts) != 2 or parts[0] != "ngram" or not parts[1].isdigit() or not value.strip().isdigit():
            raise LMError(f"{path}:{lineno}: expected 'ngram N=COUNT', got {line!r}")
        if int(parts[1]) != len(counts) + 1:
            raise LMError(f"{path}:{lineno}: expected 'ngram {len(counts) + 1}=...', got {line!r}")
        counts.append(int(value))
    raise LMError(f"{path}: ends inside the \\data\\ header")


def _add_ngram(path: Path, lineno: int, line: str, n: int, order: int, lm: tuple[dict, dict, dict]) -> None:
    """Parse one line of the \\N-grams: section into (word ids, log-probs, back-offs)."""
    ids, logprob10, backoff10 = lm
    parts = line.split()
    if len(parts) not in (n + 1, n + 2) or (len(parts) == n + 2 and n == order):
        words = " ".join(f"w{i}" for i in range(1, n + 1))
        raise LMError(f"{path}:{lineno}: a {n}-gram line must be 'logprob {words}"
                      f"{'' if n == order else ' [backoff]'}', got {line!r}")
    try:
        key = tuple(ids[w] if n > 1 else ids.setdefault(w, len(ids)) for w in parts[1:n + 1])
        values = [float(v) for v in (parts[0], *parts[n + 1:])]  # log-prob [, back-off]
    except KeyError as e:
        raise LMError(f"{path}:{lineno}: word {e.args[0]!r} has no 1-gram") from None
    except ValueError:
        raise LMError(f"{path}:{lineno}: probabilities must be numbers, got {line!r}") from None
    if not math.isfinite(values[0]) or values[0] > MAX_LOGPROB10:
        raise LMError(f"{path}:{lineno}: a log10 probability must be a finite number <= 0, got {line!r}")
    if not all(map(math.isfinite, values[1:])):
        raise LMError(f"{path}:{lineno}: a back-off weight (log10) must be a finite number, got {line!r}")
    if key in logprob10:  # a second line would silently win, and the model's mass be off
        raise LMError(f"{path}:{lineno}: the {n}-gram {' '.join(parts[1:n + 1])!r} again")
    logprob10[key] = values[0]
    if len(values) == 2:
        backoff10[key] = values[1]


def read_arpa(path: str | Path) -> NgramLM:
    """Read an ARPA file (plain or gzip) into an NgramLM; a malformed line raises LMError(path:line)."""
    path = Path(path)
    if not path.is_file():
        kind = "a folder, not a language model file" if path.is_dir() else "no such language model file"
        raise LMError(f"{path}: {kind}")
    lines = numbered_lines(path)
    counts = _read_counts(path, lines)
    if not counts[0]:  # mixed with another, it would hold half the probability mass and give it to no word
        raise LMError(f"{path}: no 1-grams (ngram 1=0): an empty language model")
    order = len(counts)
    lm: tuple[dict, dict, dict] = ({}, {}, {})  # word ids, log-probs, back-offs
    n, seen = 0, 0  # the section being read (0: none yet), its lines so far
    for lineno, line in lines:
        if not line:
            continue
        if not line.startswith("\\"):
            if n == 0:
                raise LMError(f"{path}:{lineno}: an n-gram line before \\1-grams:")
            _add_ngram(path, lineno, line, n, order, lm)
            seen += 1
            continue
        if n and seen != counts[n - 1]:
            raise LMError(f"{path}:{lineno}: \\{n}-grams: has {seen} entries, the header says {counts[n - 1]}")
        expected = "\\end\\" if n == order else f"\\{n + 1}-grams:"
        if line != expected:
            raise LMError(f"{path}:{lineno}: expected {expected}, got {line!r}")
        if n == order:
            break
        n, seen = n + 1, 0
    else:
        raise LMError(f"{path}: ends before \\end\\ (in the {n}-grams)")
    ids, logprob10, backoff10 = lm
    for key in list(logprob10):  # a history with longer n-grams but no written back-off has weight 1
        if len(key) > 1 and key[:-1] not in backoff10:
            backoff10[key[:-1]] = 0.0
    return NgramLM(order, sorted(ids, key=ids.get), logprob10, backoff10)


@contextmanager
def replacing(path: Path) -> Iterator[TextIO]:
    """A text file (gzip if the name ends in .gz) written in a temporary folder beside `path`, then moved over it
    once complete: `path` is never half-written, and nothing is left behind when writing fails. A `path` that is
    there and is not a regular file (a named pipe, /dev/stdout) is written into as it is, never replaced."""
    if path.exists() and not path.is_file():
        with (gzip.open if path.suffix == ".gz" else open)(path, "wt", encoding="utf-8") as f:
            yield f
        return
    folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        tmp = folder / path.name  # the same name: gzip's header holds it
        with (gzip.open if path.suffix == ".gz" else open)(tmp, "wt", encoding="utf-8") as f:
            yield f
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_arpa(lm: NgramLM, path: str | Path) -> None:
    """Write an NgramLM as an ARPA file (gzip if the name ends in .gz), replacing `path` only once complete;
    floats round-trip exactly. LMError(path) when it cannot be written."""
    path = Path(path)
    by_order: list[list[tuple[str, float, float | None]]] = [[] for _ in range(lm.order)]
    for key, p in lm.logprob10.items():
        bo = lm.backoff10.get(key) if len(key) < lm.order else None
        by_order[len(key) - 1].append((" ".join(lm.words[i] for i in key), p, bo))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            f.write("\\data\\\n")
            f.writelines(f"ngram {n}={len(rows)}\n" for n, rows in enumerate(by_order, 1))
            for n, rows in enumerate(by_order, 1):
                f.write(f"\n\\{n}-grams:\n")
                for text, p, bo in sorted(rows):
                    f.write(f"{p!r}\t{text}\n" if bo is None else f"{p!r}\t{text}\t{bo!r}\n")
            f.write("\n\\end\\\n")
    except OSError as e:
        raise LMError(f"{path}: cannot write it ({e.strerror or e})") from e


def arpa_vocabulary(path: str | Path) -> frozenset[str]:
    """The words of an ARPA file's \\1-grams: section (without <s>, </s>, <unk>), read without the rest."""
    words = set()
    in_unigrams = False
    for lineno, line in numbered_lines(Path(path)):
        if line.startswith("\\"):
            if in_unigrams:
                break
            in_unigrams = line == "\\1-grams:"
        elif in_unigrams and line:
            parts = line.split()
            if len(parts) < 2:
                raise LMError(f"{path}:{lineno}: a 1-gram line needs 'logprob word', got {line!r}")
            words.add(parts[1])
    return frozenset(words - {BOS, EOS, UNK})
