"""Segments of longer recordings cut to files of their own (16 kHz WAV) for check_rows: each recording read once,
each cut written under a temporary name beside its file, and all moved into place (os.replace) only once every cut
of every set is written and every set found usable (commit_cuts), so that an import that fails (a full disk, a bad
row in a later set) leaves the files of an earlier import, which its manifest points to, as they were."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.audio import SAMPLE_RATE, AudioError, load_audio, write_wav

if TYPE_CHECKING:
    from asr.corpora.rows import Row


def segment_files(rows: list[Row], out: Path) -> dict[str, Path]:
    """Row id -> its file in `out`, named after the id: ids that differ keep files that differ ("a/1" and "a_1";
    "A" and "a", which a case-blind file system would take for one file)."""
    files, taken = {}, set()
    for row in rows:
        name = base = re.sub(r"[^A-Za-z0-9_.-]", "_", row.id)
        n = 1
        while name.lower() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        files[row.id] = out / f"{name}.wav"
    return files


def temporary(path: Path) -> Path:
    """Where a cut is written before it replaces `path`: beside it (one file system: the move is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_cut(path: Path, samples: np.ndarray) -> None:
    """(N,) samples written to path's temporary name; AudioError naming `path` when that fails."""
    try:
        write_wav(temporary(path), samples)
    except (OSError, RuntimeError) as e:  # libsndfile's errors are RuntimeErrors
        raise AudioError(f"{path}: cannot write it ({getattr(e, 'strerror', None) or e})") from e


def cut_segments(rows: list[Row], out: Path, workers: int,
                 pending: list[Path] | None = None) -> dict[str, tuple[Path, float]]:
    """The segments among rows written as WAV files in `out`: row id -> (file, seconds). AudioError for a recording
    that cannot be read or a cut that cannot be written, and then no file in `out` is replaced. With `pending` the
    cuts stay under their temporary names, their files added to it, until commit_cuts (or drop_cuts)."""
    by_audio: dict[Path, list[Row]] = {}
    for row in rows:
        if row.start is not None:
            by_audio.setdefault(row.audio, []).append(row)
    if not by_audio:
        return {}
    files = segment_files([row for group in by_audio.values() for row in group], out)

    def cut(item: tuple[Path, list[Row]]) -> list[tuple[str, float]]:
        samples = load_audio(item[0])  # (N,) at 16 kHz
        done = []
        for row in item[1]:
            a = int(round(row.start * SAMPLE_RATE))
            b = len(samples) if row.duration is None else int(round((row.start + row.duration) * SAMPLE_RATE))
            write_cut(files[row.id], samples[a:b])
            done.append((row.id, (min(b, len(samples)) - a) / SAMPLE_RATE))
        return done

    out.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            seconds = {uid: s for done in pool.map(cut, by_audio.items()) for uid, s in done}
        if pending is None:
            commit_cuts(list(files.values()))
        else:
            pending.extend(files.values())
    except BaseException:
        drop_cuts(list(files.values()))
        raise
    return {uid: (files[uid], s) for uid, s in seconds.items()}


def commit_cuts(files: list[Path]) -> None:
    """Each cut's temporary file moved over its file: AudioError, and none moved, where something other than a
    file is in a cut's place (a folder); the temporary files are removed whatever happens."""
    try:
        for path in files:
            if path.exists() and not path.is_file():
                raise AudioError(f"{path}: cannot write it (a {'folder' if path.is_dir() else 'non-file'} is in its "
                                 f"place)")
        for path in files:
            try:
                os.replace(temporary(path), path)
            except OSError as e:  # (its filename is the temporary's)
                raise AudioError(f"{path}: cannot write it ({e.strerror or e})") from e
    finally:
        drop_cuts(files)


def drop_cuts(files: list[Path]) -> None:
    """The temporary files of cuts not to be moved into place (an import that failed) removed."""
    for path in files:
        temporary(path).unlink(missing_ok=True)
