"""libmpg123's notes ("Note: Illegal Audio-MPEG-Header ...", "Trying to resync...") kept off the terminal and the
server's log while an MP3 is read, from the first byte to the last, in any thread; our own lines untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
NOTE_MARKS = ("Note:", "Warning:", "libmpg123")


def mp3_damaged_inside(path: Path) -> Path:
    """An MP3 whose first frames are good and whose middle is garbage: libmpg123 complains as it reads the blocks,
    after the file opened cleanly."""
    wave = (np.random.default_rng(0).standard_normal(32000) * 0.1).astype(np.float32)
    sf.write(path, wave, 16000, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] + b"\x00" * 500 + bytes(range(256)) * 4 + data[len(data) // 2 :])
    return path


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


READ_ALL_WAYS = """
import sys, threading
from asr.audio import AudioError, load_audio, read_blocks
from asr.audio.pipes import read_stream
if {other_thread}:  # as in the server, which reads uploads in threads
    threading.Thread(target=threading.Event().wait, args=(30,), daemon=True).start()
for read in (load_audio, lambda p: list(read_blocks(p, block_seconds=0.25)), read_stream):
    try:
        read({path!r})
        print("read", file=sys.stderr)
    except AudioError as e:
        print(e, file=sys.stderr)
"""


def test_an_mp3_damaged_inside_gives_our_lines_only(tmp_path):
    path = mp3_damaged_inside(tmp_path / "damaged.mp3")
    for other_thread in (False, True):
        done = run_python(READ_ALL_WAYS.format(path=str(path), other_thread=other_thread))
        lines = done.stderr.splitlines()
        assert not any(mark in done.stderr for mark in NOTE_MARKS), (other_thread, done.stderr)
        said = re.compile(re.escape(f"{path}: not readable as audio") + r"( after \d+\.\d s)?, truncated or corrupt")
        assert len(lines) == 3 and all(said.match(line) for line in lines), (other_thread, done.stderr)
        # (the pipe's too: a damaged MP3 is not raw PCM)


def test_python_lines_written_while_an_mp3_is_read_are_kept(tmp_path):
    """Only libmpg123's own writes are dropped: a line another thread logs meanwhile reaches stderr, whole."""
    code = (
        "import sys, threading\n"
        "from asr.audio.quiet import mpg123_notes_dropped\n"
        "with mpg123_notes_dropped(b'ID3\\x03'):\n"
        "    t = threading.Thread(target=lambda: print('the server log line', file=sys.stderr, flush=True))\n"
        "    t.start(); t.join()\n"
        "    import ctypes; libc = ctypes.CDLL(None); libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]\n"
        "    libc.fputs(b'Note: Trying to resync...\\n', ctypes.c_void_p.in_dll(libc, 'stderr'))\n"
        "print('after', file=sys.stderr)\n")
    done = run_python(code)
    assert done.stderr.splitlines() == ["the server log line", "after"], done.stderr


def test_after_the_read_c_code_writes_to_stderr_again():
    code = (
        "import ctypes\n"
        "from asr.audio.quiet import mpg123_notes_dropped\n"
        "with mpg123_notes_dropped(b'ID3\\x03'):\n"
        "    pass\n"
        "libc = ctypes.CDLL(None); libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]\n"
        "libc.fputs(b'a C line\\n', ctypes.c_void_p.in_dll(libc, 'stderr'))\n")
    assert run_python(code).stderr == "a C line\n"
