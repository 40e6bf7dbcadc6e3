"""What an import writes to OUT_DIR besides the corpus's own sets, and where it must not write: a manifest per set
(and per set a split of one makes: MoreSets), all written or none by prepare_sets, none over a corpus file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from asr.manifest import Utterance

# More sets to write beside the corpus's own, from them (a split of one: asr.data import --dev-fraction ...); it
# runs before anything is written, so that a split it refuses leaves OUT_DIR as it was.
MoreSets = Callable[[dict[str, list[Utterance]]], dict[str, list[Utterance]]]


def read_from(names: list[str], files: set[str], out_dir: Path) -> str | None:
    """The error when OUT_DIR/<name>.jsonl is one of `files`, which the corpus is read from (a NeMo train.jsonl
    imported into its own folder): writing the manifest would replace it; None when none is."""
    read = {os.path.realpath(file): file for file in files}
    for name in names:
        path = out_dir / f"{name}.jsonl"
        if os.path.realpath(path) in read:
            return (f"{path}: writing the manifest here would replace {read[os.path.realpath(path)]}, which the "
                    f"corpus is read from; give another OUT_DIR")
    return None


def segments_blocked(sets: dict, out_dir: Path) -> str | None:
    """The error when the import has segments to cut (rows with a start) into OUT_DIR/segments/ and something that
    is not a folder is there (a Kaldi directory imported into itself: its segments file); None otherwise."""
    folder = out_dir / "segments"
    cuts = any(row.start is not None for rows in sets.values() for row in rows)
    if not cuts or folder.is_dir() or not os.path.lexists(folder):
        return None
    return (f"{folder}: the import cuts the corpus's segments into a folder of this name, and a file is there (the "
            "corpus's own segments?); give another OUT_DIR")
