"""The audio files in a folder (recursively), the folders that could not be listed, and the files in formats
that cannot be read (those libsndfile cannot read, where ffmpeg is not on PATH to read them)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from asr.audio.ffmpeg import have_ffmpeg
from asr.audio.files import os_reason
from asr.audio.header import AUDIO_EXTENSIONS, UNREADABLE_EXTENSIONS


# Path's own order: on POSIX its parts compared as tuples of strings (in C, several times faster than Path's
# comparisons); elsewhere Path's (Windows compares case-blind)
ORDER = attrgetter("parts") if os.name == "posix" else None


@dataclass
class FolderScan:
    audio: list[Path] = field(default_factory=list)  # files with an audio extension (reading them may still fail)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed, and why
    special: list[Path] = field(default_factory=list)  # named pipes, sockets, devices (opening a pipe would wait)
    unreadable: list[Path] = field(default_factory=list)  # files in formats libsndfile cannot read, without ffmpeg


def readable_extensions() -> tuple[str, ...]:
    """The extensions of the files read as audio: libsndfile's, and with ffmpeg on PATH those it reads."""
    return AUDIO_EXTENSIONS + UNREADABLE_EXTENSIONS if have_ffmpeg() else AUDIO_EXTENSIONS


def _special(path: Path, entry: os.DirEntry) -> bool:
    """Whether an entry (or what its link points at) exists and is neither a regular file nor a folder."""
    if entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False):
        return False
    try:
        mode = path.stat().st_mode  # a link's target; a pipe's or a device's own
    except OSError:  # a broken link or a loop: reading it says why
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def scan_folder(directory: str | Path) -> FolderScan:
    """The audio files under `directory` (recursively, by extension, hidden files and folders skipped, links
    to folders not followed), sorted; the folders that could not be listed, with the reason; and the files in
    formats libsndfile cannot read (UNREADABLE_EXTENSIONS) where there is no ffmpeg (with ffmpeg they are audio)."""
    scan, pending, extensions = FolderScan(), [Path(directory)], readable_extensions()
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            scan.problems.append((folder, f"{folder}: {os_reason(e)} (cannot list this folder)"))
            continue
        for entry in entries:  # the entries' own types: a stat only for links (to folders are not audio)
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(folder / entry.name)
                continue
            suffix = os.path.splitext(entry.name)[1].lower()
            # broken links and link loops too (Path.is_dir says False for them): reading says why
            if suffix in extensions and not (entry.is_symlink() and (folder / entry.name).is_dir()):
                if _special(folder / entry.name, entry):  # opening a named pipe waits for a writer
                    scan.special.append(folder / entry.name)
                    continue
                scan.audio.append(folder / entry.name)
            elif suffix in UNREADABLE_EXTENSIONS:
                scan.unreadable.append(folder / entry.name)
    scan.audio.sort(key=ORDER)
    scan.unreadable.sort(key=ORDER)
    scan.special.sort(key=ORDER)
    scan.problems.sort()
    return scan


def find_audio_files(directory: str | Path) -> list[Path]:
    """Audio files under `directory` (recursively, by extension, hidden files skipped), sorted."""
    return [p for p in scan_folder(directory).audio if p.is_file()]
