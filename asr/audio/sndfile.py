"""Where libsndfile needs help: its errors in words, and audio whose header does not give its length, as a streaming
writer leaves it (it cannot go back to the header): a WAV data size of 0, a FLAC STREAMINFO of 0 samples. libsndfile
takes those at their word (no audio; 2**63 - 1 frames, which it fails to read to the end), so such a file is read
with its first bytes rewritten to give the length its audio has (asr.audio.header: sized_header, sized_flac_header).

    head = sized_flac(path)                              # None, or the first bytes that give its length
    with SizedSoundFile(SizedFile(path, head)) as f: ...  # read as a FLAC that gave it
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import BinaryIO

import soundfile as sf

from asr.audio.header import FLAC_HEAD, flac_length_unknown, sized_flac_header
from asr.audio.samples import AudioError

COUNT_FRAMES = 1 << 16  # frames decoded at a time while counting a FLAC's (16-bit, whatever it holds: 8 MiB at most)

# libsndfile's words for data it does not recognise, said of a file that exists and was opened a moment before
_NOT_RECOGNISED = "File does not exist or is not a regular file (possibly a pipe?)."


def sndfile_reason(e: Exception) -> str:
    """What libsndfile (or soundfile) said went wrong, in one line; without soundfile's "Error opening 'NAME': " (the
    caller names the file, and a name's line break cut the reason at it)."""
    text = (e.error_string if isinstance(e, sf.LibsndfileError) else str(e)).strip()
    line = text.splitlines()[-1] if text else type(e).__name__
    return "no audio format that libsndfile recognises, or corrupt data" if line.endswith(_NOT_RECOGNISED) else line


class SizedFile(io.RawIOBase):
    """A file read as if its first len(head) bytes were `head`, a header rewritten to give the length of the audio
    that follows; the rest from the file."""

    def __init__(self, path: Path, head: bytes):
        super().__init__()
        self._file = open(path, "rb")
        self._head = head

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        at = self._file.tell()
        n = self._file.readinto(buffer)
        if at < len(self._head) and n:
            k = min(n, len(self._head) - at)
            buffer[:k] = self._head[at : at + k]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class SizedSoundFile(sf.SoundFile):
    """libsndfile over a SizedFile, closed with it (a SoundFile leaves a file object it was given open)."""

    def __init__(self, raw: SizedFile):
        self._raw = raw  # first: a SoundFile that fails to open is still closed as it is freed
        super().__init__(raw)

    def close(self) -> None:
        super().close()
        self._raw.close()


class _InOrder(sf.SoundFile):
    """libsndfile's frames read in order, without the seek soundfile makes after each read of a seekable file: at
    the end of a FLAC of unknown length libsndfile's seek fails ("Internal psf_fseek() failed.")."""

    def seekable(self) -> bool:
        return False


def flac_frames(source: BinaryIO, name: str) -> int:
    """The frames (samples per channel) a FLAC's audio holds, decoded from `source` (at its first byte) to its end.
    AudioError naming `name` for audio that breaks off (cut short or damaged: as libsndfile says of a FLAC with its
    length) or that holds no frames."""
    seen = 0
    with _InOrder(source) as f:
        buffer = bytearray(COUNT_FRAMES * f.channels * 2)  # int16: the cheapest of libsndfile's conversions
        while True:
            try:
                n = f.buffer_read_into(buffer, "int16")
            except Exception as e:  # LibsndfileError: "flac decoder lost sync", ...
                where = f" after {seen / f.samplerate:.1f} s" if seen else ""
                raise AudioError(f"{name}: not readable as audio{where}, truncated or corrupt ({sndfile_reason(e)})"
                                 ) from e
            seen += n
            if n < COUNT_FRAMES:
                break
    if seen == 0:
        raise AudioError(f"{name}: no audio samples (empty or zero-length file)")
    return seen


def sized_flac(path: Path) -> bytes | None:
    """For a FLAC file of unknown length (asr.audio.header.flac_length_unknown): its first FLAC_HEAD bytes rewritten
    to give the frames its audio holds (counted by decoding it once: nothing else says); None for any other file.
    AudioError as flac_frames."""
    with open(path, "rb") as f:
        head = f.read(FLAC_HEAD)
    if not flac_length_unknown(head):
        return None
    stat = path.stat()
    return sized_flac_header(head, counted_frames(str(path), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def counted_frames(path: str, size: int, mtime_ns: int) -> int:
    """flac_frames of a file, kept for as long as its size and time say it is the same file: a door opens a file
    several times (its length, its level, its blocks), and counting decodes it whole."""
    with open(path, "rb") as f:
        return flac_frames(f, path)


def sized_flac_bytes(data: bytes, name: str) -> bytes:
    """A whole stream's bytes, with the header of a FLAC of unknown length rewritten to give its length (as
    sized_flac); any other stream's as they are."""
    if not flac_length_unknown(data[:FLAC_HEAD]):
        return data
    return sized_flac_header(data, flac_frames(io.BytesIO(data), name)) + data[FLAC_HEAD:]
