"""libmpg123's notes ("Note: Illegal Audio-MPEG-Header ...", "Trying to resync...") kept off the terminal and the
server's log while an MP3 is read, from the first byte to the last, in any thread; our own lines untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


# --- data libsndfile takes for MP3 without any MPEG frames in them (asr.audio.mpeg)

STRAY_SYNC = b"\xff\xfe\x00garbage" * 100  # libmpg123 decoded this as 0.87 s of silence: "no speech", exit 0


def test_garbage_with_a_stray_sync_word_is_not_audio_by_any_read(tmp_path):
    from asr.audio import AudioError, audio_info, load_audio, read_blocks
    from asr.audio.pipes import read_stream

    path = tmp_path / "recording.flac"
    path.write_bytes(STRAY_SYNC)
    for read in (load_audio, audio_info, lambda p: list(read_blocks(p)), read_stream):
        with pytest.raises(AudioError) as e:
            read(path)
        assert str(e.value) == f"{path}: not readable as audio (no MPEG audio frames: corrupt data, or not audio)"


def test_transcribe_says_so_in_one_line_and_fails(tmp_path):
    path = tmp_path / "recording.mp3"
    path.write_bytes(STRAY_SYNC)
    done = subprocess.run([sys.executable, "-m", "asr.transcribe", "--decoder", "greedy", str(path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: {path}: not readable as audio (no MPEG audio frames: corrupt data, or not audio)"], done.stderr


@pytest.mark.parametrize("rate, channels", [(8000, 1), (11025, 2), (16000, 1), (22050, 1), (32000, 2), (44100, 1),
                                            (48000, 2)])
def test_real_mp3s_of_every_mpeg_version_still_load(tmp_path, rate, channels):
    from asr.audio import load_audio

    n = int(1.5 * rate)
    wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate).astype(np.float32)
    path = tmp_path / "tone.mp3"
    sf.write(path, np.stack([wave] * channels, 1), rate, format="MP3")
    assert abs(len(load_audio(path)) - 24000) < 2000


def test_an_mp3_behind_a_large_id3_tag_or_stray_bytes_still_loads(tmp_path):
    from asr.audio import load_audio
    from asr.audio.mpeg import SEARCH_BYTES

    plain = tmp_path / "plain.mp3"
    sf.write(plain, 0.3 * np.sin(np.arange(32000) / 5).astype(np.float32), 16000, format="MP3")
    audio = plain.read_bytes()
    tag_body = b"\x00" * (3 * SEARCH_BYTES)  # cover art and padding: longer than the search window
    size = len(tag_body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    tagged, stray = tmp_path / "tagged.mp3", tmp_path / "stray.mp3"
    tagged.write_bytes(b"ID3\x03\x00\x00" + syncsafe + tag_body + audio)
    stray.write_bytes(b"\x00\xff" * 500 + audio)
    expected = load_audio(plain)
    for path in (tagged, stray):
        assert np.array_equal(load_audio(path), expected)


def test_frame_headers_give_their_frames_lengths():
    from asr.audio.mpeg import frame_header

    assert frame_header(bytes([0xFF, 0xFB, 0x90, 0x00])) == ((3, 3, 44100), 417)  # MPEG-1 Layer III, 128 kbit/s
    assert frame_header(bytes([0xFF, 0xFB, 0x92, 0x00])) == ((3, 3, 44100), 418)  # the same, padded
    assert frame_header(bytes([0xFF, 0xF3, 0x88, 0x00])) == ((2, 3, 16000), 288)  # MPEG-2 Layer III, 64 kbit/s
    assert frame_header(bytes([0xFF, 0xFF, 0x18, 0x00])) == ((3, 1, 32000), 48)  # MPEG-1 Layer I, 32 kbit/s
    for bad in (b"\xff\xfe\x00g", b"\xff\xfb\xf0\x00", b"\xff\xfb\x9c\x00", b"\xff\xf9\x90\x00", b"\xff\xeb\x90\x00",
                b"\xff\xfb"):  # free format, bitrate 15, rate 3, layer 0, version 1 (reserved), too short
        assert frame_header(bad) is None, bad


def test_one_header_near_the_end_is_no_chain():
    """A frame that runs past the data's end counted as the end of a chain: garbage with one header near its end
    loaded as silence, and about 1 in 10 random blobs passed (a review)."""
    from asr.audio.mpeg import bytes_reader, mpeg_frames_found

    assert not mpeg_frames_found(bytes_reader(STRAY_SYNC + b"\xff\xfb\x90\x00" + b"x" * 96))
    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, size, np.uint8).tobytes() for size in (2048, 20_000, 60_000) for _ in range(100)]
    assert sum(mpeg_frames_found(bytes_reader(b)) for b in blobs) == 0


def test_two_id3_tags_and_frames_before_an_id3v1_tag_are_mp3(tmp_path):
    """Found by a review: a second ID3v2 tag (cover art past the search window), and a file cut to two frames with
    its ID3v1 tag after them, were refused."""
    from asr.audio.mpeg import SEARCH_BYTES, bytes_reader, frame_header, mpeg_frames_found

    sf.write(tmp_path / "a.mp3", 0.3 * np.sin(np.arange(32000) / 5).astype(np.float32), 16000, format="MP3")
    audio = (tmp_path / "a.mp3").read_bytes()

    def tag(size: int) -> bytes:
        return b"ID3\x03\x00\x00" + bytes([(size >> s) & 0x7F for s in (21, 14, 7, 0)]) + b"\x00" * size

    assert mpeg_frames_found(bytes_reader(tag(100) + tag(2 * SEARCH_BYTES) + audio))
    first = audio.index(b"\xff")
    two = first + frame_header(audio[first:first + 4])[1]
    two += frame_header(audio[two:two + 4])[1]
    assert mpeg_frames_found(bytes_reader(audio[:two] + b"TAG" + b"\x00" * 125))
    assert mpeg_frames_found(bytes_reader(audio[:two]))  # the data end exactly where the second frame does
    assert not mpeg_frames_found(bytes_reader(audio[:two - 1]))


def test_where_c_stderr_cannot_be_pointed_elsewhere_mp3s_still_read(tmp_path, monkeypatch):
    """Windows' ctypes.CDLL(None) raises TypeError, which escaped every MP3 read; musl's stderr may be read-only (a
    review): there nothing is swapped, and the notes are written as before."""
    from asr.audio import load_audio, quiet

    path = tmp_path / "a.mp3"
    sf.write(path, np.zeros(16000, np.float32), 16000, format="MP3")
    patches = ((quiet.sys, "platform", "win32", False),  # (soundfile itself would read as on Windows: no load)
               (quiet.platform, "libc_ver", lambda: ("musl", "1.2"), True),
               (quiet.ctypes, "CDLL", lambda name: (_ for _ in ()).throw(TypeError("as on Windows")), True))
    for where, name, value, load in patches:
        quiet.c_stderr.cache_clear()
        monkeypatch.setattr(where, name, value)
        try:
            assert quiet.c_stderr() is None
            assert not load or len(load_audio(path)) > 0
        finally:
            monkeypatch.undo()
            quiet.c_stderr.cache_clear()


def test_an_mp3_behind_leading_bytes_reads_from_a_pipe_as_from_its_file(tmp_path):
    """libsndfile's open of data in memory does not skip bytes before the first frame, as its open of a file does:
    from a pipe such an MP3 was read as raw PCM, noise (a review)."""
    from asr.audio import load_audio
    from asr.audio.pipes import read_stream

    path = tmp_path / "late.mp3"
    sf.write(path, 0.3 * np.sin(np.arange(32000) / 5).astype(np.float32), 16000, format="MP3")
    path.write_bytes(b"\x00" * 100 + path.read_bytes())
    assert np.array_equal(read_stream(str(path)), load_audio(path))
