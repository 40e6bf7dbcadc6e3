"""Files that two sets of a corpus share: refused where one set is held out (dev, test...) and the other is not,
since a clip in both would be scored on what the model trained on; a note for other sets (Kaldi's data/train and
its copy data/train_hires, nested lhotse subsets), which share files on purpose. Files are told apart by device
and inode, so a path written through ".." or a link is the same file."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asr.corpora.rows import Row

HELD_OUT = re.compile(r"(^|[_.-])(dev|valid|validation|val|test|eval)([_.-]|$)", re.IGNORECASE)  # sets scored on


def file_key(path: Path) -> object:
    """What tells files apart however their paths are written (links, "..", hard links): device and inode; the
    path itself for a file that is not there (refused later)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return st.st_dev, st.st_ino


def shared_files(sets: dict[str, list[Row]]) -> str | None:
    """The error line for the first audio (or segment of it) listed in a held-out set (HELD_OUT's names) and in a
    set that is not, however its path is written (None: there is none); a note on stderr for each other pair of
    sets that share files."""
    if len(sets) < 2:
        return None
    keys = {name: [file_key(row.audio) for row in rows] for name, rows in sets.items()}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            in_b: dict[object, list[Row]] = {}
            for key, row in zip(keys[b], sets[b]):
                in_b.setdefault(key, []).append(row)
            shared = [(key, x, y) for key, x in zip(keys[a], sets[a]) for y in in_b.get(key, ())
                      if x.start is None or y.start is None or x.start == y.start]  # in a's order
            if not shared:
                continue
            _, x, y = shared[0]
            if bool(HELD_OUT.search(a)) != bool(HELD_OUT.search(b)):
                held, kept, row = (b, y, x) if HELD_OUT.search(b) else (a, x, y)
                return (f"{row.where}: {row.audio} is in held-out set {held!r} too ({kept.where}): it would be "
                        f"scored on what the model trained on")
            files = len({key for key, _, _ in shared})
            print(f"note: sets {a!r} and {b!r} share {files} audio file{'s' if files > 1 else ''} (e.g. {x.audio}, "
                  f"{x.where} and {y.where})", file=sys.stderr)
    return None
