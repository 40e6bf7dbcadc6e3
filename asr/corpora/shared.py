"""Audio that two sets of a corpus share: refused where one set is held out (dev, test, eval...) and the other is
not, since a clip in both would be scored on what the model trained on; a note for other sets (Kaldi's data/train
and its copy data/train_hires, nested lhotse subsets), which share files on purpose. Files are told apart by device
and inode, so a path written through ".." or a link is the same file; within a file, rows share audio where their
stretches of it overlap (a whole file overlaps every segment of it)."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.corpora.rows import Row

# sets scored on: dev, devel, dev93, valid, validation, val, test, testing, test-other, eval, eval2000, heldout
HELD_OUT = re.compile(r"(?<![a-z])(dev(el(opment)?)?|val(id(ation)?)?|test(ing)?|eval|heldout)(?![a-z])",
                      re.IGNORECASE)


def file_key(path: Path) -> object:
    """What tells files apart however their paths are written (links, "..", hard links): device and inode; the
    path itself for a file that is not there (refused later)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL or a lone surrogate in it (refused later, naming the row)
        return path
    return st.st_dev, st.st_ino


def stretch(row: Row) -> tuple[float, float]:
    """The seconds of its file a row covers: the whole file, or its segment (to the end where no duration)."""
    if row.start is None:
        return 0.0, math.inf
    return row.start, row.start + row.duration if row.duration is not None else math.inf


def first_overlap(a: list[Row], b: list[Row]) -> tuple[Row, Row] | None:
    """A row of `a` and one of `b` whose stretches overlap, or None: both sorted by start, the one ending first
    moved on (linear)."""
    a, b = sorted(a, key=stretch), sorted(b, key=stretch)
    i = j = 0
    while i < len(a) and j < len(b):
        (a0, a1), (b0, b1) = stretch(a[i]), stretch(b[j])
        if max(a0, b0) < min(a1, b1):
            return a[i], b[j]
        if a1 <= b1:
            i += 1
        else:
            j += 1
    return None


def shared_files(sets: dict[str, list[Row]]) -> str | None:
    """The error line for the first audio listed in a held-out set (HELD_OUT's names) and in a set that is not,
    however its path is written (None: there is none); a note on stderr for each other pair of sets that share
    audio."""
    if len(sets) < 2:
        return None
    keys: dict[Path, object] = {}
    files: dict[object, dict[str, list[Row]]] = {}  # file -> set -> its rows of that file, in the set's order
    for name, rows in sets.items():
        for row in rows:
            key = keys[row.audio] if row.audio in keys else keys.setdefault(row.audio, file_key(row.audio))
            files.setdefault(key, {}).setdefault(name, []).append(row)
    shared: dict[tuple[str, str], list[tuple[Row, Row]]] = {}  # (set, later set) -> an overlap in each file
    for in_sets in files.values():
        if len(in_sets) > 1:
            names = list(in_sets)
            for i, a in enumerate(names):
                for b in names[i + 1:]:
                    if pair := first_overlap(in_sets[a], in_sets[b]):
                        shared.setdefault((a, b), []).append(pair)
    for (a, b), pairs in shared.items():
        x, y = pairs[0]
        if bool(HELD_OUT.search(a)) != bool(HELD_OUT.search(b)):
            held, kept, row = (b, y, x) if HELD_OUT.search(b) else (a, x, y)
            return (f"{row.where}: {row.audio} is in held-out set {held!r} too ({kept.where}): it would be scored on "
                    f"what the model trained on (where that is meant, import the sets one at a time)")
        print(f"note: sets {a!r} and {b!r} share {len(pairs)} audio file{'s' if len(pairs) > 1 else ''} (e.g. "
              f"{x.audio}, {x.where} and {y.where})", file=sys.stderr)
    return None
