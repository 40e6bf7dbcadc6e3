"""One-line notes on stderr about files that were transcribed but may not be what the user expects: files in
formats that cannot be read (skipped in a folder), files whose words the model is unsure of, files in which it
heard no words or whose speech is too quiet for it. A note never fails a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asr.audio import CONVERT_HINT
from asr.features import V1_QUIETEST_DB

if TYPE_CHECKING:
    from asr.longform.pipeline import FileResult

SHOWN = 10  # files named in one note at most, then "..."
# Speech level (dBFS, segment.py's speech_percentile of the 10 ms frame energies) below which a file is flagged as too
# quiet for the shipped model. With v1's level guard (asr.features.level_guard), AN4 test written as 16-bit WAV at
# -40, -50, -60 dB (speech at -74..-58, -84..-68, -92..-78 dBFS) gives 8.2, 18.5, 97.7% WER (greedy, python
# bench/level_guard.py; 7.12% as recorded, at -34..-18): below about -80 dBFS 16-bit speech is mostly quantisation
# noise, which the guard does not bring up.
QUIET_DB = V1_QUIETEST_DB  # -80: what the shipped model's level guard no longer brings up


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def unreadable_note(files: list[Path], shown: int = 3) -> str:
    """One line: how many files are in formats that cannot be read, the first few (as given), how to convert them."""
    names = ", ".join(str(f) for f in files[:shown]) + (", ..." if len(files) > shown else "")
    if len(files) == 1:
        return (f"1 file in a format that cannot be read without ffmpeg was skipped ({names}); install ffmpeg, or "
                f"convert it first, e.g. {CONVERT_HINT}")
    return (f"{len(files)} files in formats that cannot be read without ffmpeg were skipped ({names}); install "
            f"ffmpeg, or convert them first, e.g. {CONVERT_HINT}")


def special_note(files: list[Path], shown: int = 3) -> str:
    """One line: the named pipes, sockets or devices with audio names skipped in a folder, the first few."""
    names = ", ".join(str(f) for f in files[:shown]) + (", ..." if len(files) > shown else "")
    return (f"{len(files)} named pipe(s), socket(s) or device(s) skipped ({names}): not files; give one on its own "
            "to read it as a stream")


def low_confidence(result: FileResult, least: float) -> bool:
    return result.error is None and result.mean_confidence is not None and result.mean_confidence < least


def unheard(result: FileResult) -> bool:
    return result.no_speech or result.too_quiet


def needs_a_note(result: FileResult, least: float) -> bool:
    """Whether result_notes would name the file: a mean word confidence below `least`, no words, too quiet."""
    return low_confidence(result, least) or unheard(result)


def result_notes(results: list[FileResult], least: float) -> list[str]:
    """The notes on the files of a run: one for those whose mean word confidence is below `least`, one for those
    with no speech heard or too quiet (none where no file is either)."""
    doubtful = [r for r in results if low_confidence(r, least)]
    quiet = [r for r in results if unheard(r)]
    return [low_confidence_note(doubtful, least)] * bool(doubtful) + [unheard_note(quiet)] * bool(quiet)


def low_confidence_note(results: list[FileResult], least: float, shown: int = SHOWN) -> str:
    """One line naming the files (the first few) whose mean word confidence is below `least`."""
    names = ", ".join(f"{r.audio} ({r.mean_confidence:.3f})" for r in results[:shown])  # 0.798 < 0.80
    names += ", ..." if len(results) > shown else ""
    return (f"note: {_files(len(results))} with a mean word confidence below {least:.2f}, probably outside what the "
            f"model knows (the shipped one: AN4's spelled letters, digits, numbers and commands, not general English): "
            f"{names}")


def unheard_note(results: list[FileResult], shown: int = SHOWN) -> str:
    """One line naming the files (the first few) in which no words were heard or whose speech is too quiet, each
    with its speech level, and what to do about a quiet one."""

    def why(r: FileResult) -> str:
        words = "no words" if r.no_speech else "some words"
        if r.level_db is None:
            return f"{words}; no speech found"
        if r.silent:
            return f"{words}; digital silence"
        return f"{words}; speech at {r.level_db:.0f} dBFS" + (", too quiet" if r.too_quiet else "")

    names = ", ".join(f"{r.audio} ({why(r)})" for r in results[:shown]) + (", ..." if len(results) > shown else "")
    advice = (f"; below {QUIET_DB:.0f} dBFS the shipped model loses most words: raise the level, e.g. "
              "sox IN OUT gain -n -3" if any(r.too_quiet for r in results) else "")
    return f"note: {_files(len(results))} with no speech heard, or too quiet to hear well: {names}{advice}"
