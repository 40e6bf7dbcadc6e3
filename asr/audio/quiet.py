"""libmpg123's notes kept off the terminal. libsndfile hands data that no other format claims to libmpg123, which
writes notes straight to the process's stderr ("Note: Illegal Audio-MPEG-Header ...", "Trying to resync...") before
libsndfile fails: a corrupt or non-audio file gave four lines of them above our one-line error.

    with mpg123_notes_dropped(path):   # a file's path, or the data themselves (a pipe's)
        f = sf.SoundFile(path)
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

from asr.audio.header import SNIFF_BYTES, sniff

# what libmpg123 writes: "Note: ...", "Warning: ...", "[src/libmpg123/id3.c:...] warning: ..."
MPG123_NOTE = re.compile(rb"^(Note: |Warning: |\[src/libmpg123/)")
_HOLDING = threading.Lock()  # one holder of the process's stderr at a time


def may_reach_mpg123(head: bytes) -> bool:
    """Whether libsndfile may hand these data to libmpg123: MP3 by its first bytes, or no format we know of
    (WAV, FLAC, Ogg and the others are read without it, and without holding stderr)."""
    fmt = sniff(head)
    return fmt is None or fmt.name == "MP3"


def holding_is_safe() -> bool:
    """Whether stderr may be held: this thread is the process's only Python thread (as in transcribe's and evaluate's
    reads), so no other thread's line can be split or glued to a note while it is held. The server reads uploads in
    threads: there the notes still reach its log, next to its own lines."""
    return threading.active_count() == 1 and sys.stderr is not None


def head_of(source: Path | bytes) -> bytes:
    """The first SNIFF_BYTES bytes of a file, or of data."""
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    with open(source, "rb") as f:
        return f.read(SNIFF_BYTES)


@contextlib.contextmanager
def mpg123_notes_dropped(source: Path | bytes):
    """Inside the block, what C code writes to stderr (file descriptor 2) is held in a temporary file; afterwards it
    is written out, less libmpg123's notes. Only for data that may reach libmpg123 (may_reach_mpg123), and only where
    holding is safe (holding_is_safe); a failure to write the rest out afterwards never fails the read. Wraps the
    open only: corruption further into an MP3 still gets libmpg123's notes as the blocks are read."""
    if not holding_is_safe() or not may_reach_mpg123(head_of(source)):  # (the file's head read only if it may be)
        yield
        return
    with _HOLDING, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)  # stderr back first, whatever happens next
            os.close(saved)
            with contextlib.suppress(OSError):  # (a pipe closed meanwhile: the notes and the rest are lost)
                held.seek(0)
                kept = [line for line in held.read().splitlines(keepends=True) if not MPG123_NOTE.match(line)]
                if kept:
                    os.write(2, b"".join(kept))
