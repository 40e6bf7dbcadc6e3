"""libmpg123's notes kept off the terminal. libsndfile hands data that no other format claims to libmpg123, which
writes notes straight to the process's stderr ("Note: Illegal Audio-MPEG-Header ...", "Trying to resync...") before
libsndfile fails: a corrupt or non-audio file gave four lines of them above our one-line error.

    with mpg123_notes_dropped(head):   # head: the data's first SNIFF_BYTES bytes
        f = sf.SoundFile(path)
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

from asr.audio.header import sniff

# what libmpg123 writes: "Note: ...", "Warning: ...", "[src/libmpg123/id3.c:...] warning: ..."
MPG123_NOTE = re.compile(rb"^(Note: |Warning: |\[src/libmpg123/)")
_HOLDING = threading.Lock()  # one holder of the process's stderr at a time


def may_reach_mpg123(head: bytes) -> bool:
    """Whether libsndfile may hand these data to libmpg123: MP3 by its first bytes, or no format we know of
    (WAV, FLAC, Ogg and the others are read without it, and without holding stderr)."""
    fmt = sniff(head)
    return fmt is None or fmt.name == "MP3"


@contextlib.contextmanager
def mpg123_notes_dropped(head: bytes):
    """Inside the block, what anything in the process writes to stderr (file descriptor 2) is held in a temporary
    file; afterwards it is written out, less libmpg123's notes. Another thread's lines written meanwhile come out
    late, never lost. Data that cannot reach libmpg123 (may_reach_mpg123) leave stderr alone."""
    if not may_reach_mpg123(head):
        yield
        return
    with _HOLDING, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not MPG123_NOTE.match(line)]
            if kept:
                os.write(2, b"".join(kept))
