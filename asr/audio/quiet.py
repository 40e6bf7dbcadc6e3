"""libmpg123's notes kept off the terminal and the server's log. libsndfile hands MP3s, and data that no other format
claims, to the libmpg123 inside it, which writes notes through C's `stderr` as it opens and reads them ("Note:
Illegal Audio-MPEG-Header ...", "Trying to resync...", "[src/libmpg123/parse.c:...] error: ..."): a damaged file gave
lines of them around our one-line error.

    with mpg123_notes_dropped(path):   # a file's path, or the data themselves (a pipe's)
        f = sf.SoundFile(path)

While any such block runs, in any thread, C's `stderr` (the FILE * that fprintf(stderr, ...) writes through) points at
/dev/null: whatever any C code writes through it meanwhile is dropped, libmpg123's notes and any other library's
alike. Python's own writes (sys.stderr, logging) go to file descriptor 2 without it and are never held or dropped,
so a server's log lines from other threads reach it as they are written. Where C's `stderr` is not a variable that
may be pointed elsewhere (only glibc's and macOS's are: STDERR_VARIABLES), nothing changes and the notes are written
as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import sys
import threading
from pathlib import Path

from asr.audio.header import SNIFF_BYTES, sniff

_LOCK = threading.Lock()  # guards the count and the swap below
_state = {"holders": 0, "saved": None}  # the blocks inside now; C's stderr as it was before the first


def may_reach_mpg123(head: bytes) -> bool:
    """Whether libsndfile may hand these data to libmpg123: MP3 by its first bytes, or no format we know of
    (WAV, FLAC, Ogg and the others are read without it)."""
    fmt = sniff(head)
    return fmt is None or fmt.name == "MP3"


def head_of(source: Path | bytes) -> bytes:
    """The first SNIFF_BYTES bytes of a file, or of data."""
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    with open(source, "rb") as f:
        return f.read(SNIFF_BYTES)


# where C's `stderr` is a variable that may be pointed elsewhere: glibc's `stderr`, macOS's `__stderrp` (musl's is a
# `FILE *const`, which may sit in read-only memory; Windows' C runtime has none to load by name)
STDERR_VARIABLES = {"glibc": "stderr", "darwin": "__stderrp"}


def _reset_in_child() -> None:
    """After a fork, the child's count starts again (a thread inside a block in the parent is not in the child)."""
    _state["holders"] = 0
    found = c_stderr()
    if found is not None and _state["saved"] is not None:
        found[0].value = _state["saved"]


@functools.lru_cache(maxsize=1)
def c_stderr() -> tuple[ctypes.c_void_p, int] | None:
    """C's `stderr` variable and a FILE * open on /dev/null to point it at; None where the C library is not one whose
    variable may be written (STDERR_VARIABLES) or either cannot be had: there the notes are written as before."""
    kind = "darwin" if sys.platform == "darwin" else platform.libc_ver()[0] if sys.platform.startswith("linux") else ""
    if kind not in STDERR_VARIABLES:
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
        variable = ctypes.c_void_p.in_dll(libc, STDERR_VARIABLES[kind])
        sink = libc.fopen(b"/dev/null", b"w")  # kept open for the process's life: never closed under a writer
    except (OSError, AttributeError, TypeError, ValueError):  # no such library or variable
        return None
    if not sink:
        return None
    os.register_at_fork(after_in_child=_reset_in_child)
    return variable, sink


@contextlib.contextmanager
def mpg123_notes_dropped(source: Path | bytes):
    """Inside the block, what C code writes through C's `stderr` goes to /dev/null, for data that may reach libmpg123
    (may_reach_mpg123); the first block in sets it, the last one out puts it back, so reads in several threads
    overlap safely. Wrap each open and each read of such data."""
    found = c_stderr() if may_reach_mpg123(head_of(source)) else None
    if found is None:
        yield
        return
    variable, sink = found
    with _LOCK:
        if _state["holders"] == 0:
            _state["saved"], variable.value = variable.value, sink
        _state["holders"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["holders"] -= 1
            if _state["holders"] == 0:
                variable.value = _state["saved"]
