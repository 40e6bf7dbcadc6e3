"""Audio files of any format libsndfile reads, rate and channel count -> float32 mono at 16 kHz, whole
(load_audio) or block by block (read_blocks), checked against asr.audio.samples' limits on the way in; the formats
libsndfile cannot read (M4A, AAC, WebM, WMA, ...) through ffmpeg (asr.audio.ffmpeg) where it is on PATH."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import soundfile as sf

from asr.audio.ffmpeg import ffmpeg_blocks, ffprobe_header, needs_ffmpeg
from asr.audio.header import check_wav_size, chunk_follows, read_wav_header, sized_header
from asr.audio.mpeg import check_mpeg_frames, file_reader
from asr.audio.quiet import head_of, mpg123_notes_dropped
from asr.audio.samples import (MAX_SECONDS, SAMPLE_RATE, AudioError, check_format, check_samples, resample, to_mono,
                               warn_once)
from asr.audio.sndfile import SizedFile, SizedSoundFile, sized_flac, sndfile_reason

BLOCK_SECONDS = 30.0  # s; the most audio read_blocks holds or returns at a time


def os_reason(e: OSError) -> str:
    """What went wrong opening or listing a path, in words for an error message."""
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    return (e.strerror or type(e).__name__).lower()


def sndfile_path(path: str | Path) -> str | bytes:
    """A path as soundfile takes it: the text (which it opens with wide characters on Windows), or its bytes where
    the name is not valid Unicode (a POSIX name that is not UTF-8: soundfile's strict encoding of text refused it)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def check_readable(path: Path) -> None:
    """Raise AudioError naming the path unless it is a file that this process can open and, if a regular file, not
    an empty one."""
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        broken = " (a broken symbolic link)" if isinstance(e, FileNotFoundError) and path.is_symlink() else ""
        raise AudioError(f"{path}: {os_reason(e)}{broken}") from e
    check_not_empty(path)


def check_not_empty(path: Path) -> None:
    """Raise AudioError for an empty regular file (a pipe's size is 0 too, and it may hold audio); one stat, and
    nothing said where it fails (the reader says why)."""
    try:
        info = path.stat()
    except OSError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def open_audio(path: Path) -> sf.SoundFile:
    """The file opened by libsndfile, its header checked first (check_wav_complete) and its rate and channels
    against the limits; AudioError naming the path otherwise. A WAV or FLAC whose header does not give its length
    (a streaming writer's) is read as if it did (asr.audio.sndfile)."""
    check_not_empty(path)
    sized = None
    try:
        head = check_wav_complete(path) or sized_flac(path)
        sized = SizedFile(path, head) if head is not None else None
        with mpg123_notes_dropped(path):
            f = SizedSoundFile(sized) if sized is not None else sf.SoundFile(sndfile_path(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError... on bad files
        if sized is not None:
            sized.close()  # not left to the garbage collector (the traceback holds it)
        if isinstance(e, AudioError):
            raise
        raise not_readable(path, e) from e
    try:
        check_format(str(path), f.samplerate, f.channels, what="the file is")
        if f.format == "MP3":
            with open(path, "rb") as raw:
                check_mpeg_frames(file_reader(raw), str(path))
    except AudioError:
        f.close()
        raise
    except OSError as e:  # (the file gone or changed since libsndfile opened it)
        f.close()
        raise AudioError(f"{path}: {os_reason(e)}") from e
    return f


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read wav/flac/ogg/sph/... at any rate and channel count (m4a/aac/webm/wma/... through ffmpeg); returns (N,)
    float32 at `sample_rate`."""
    path = Path(path)
    check_readable(path)
    if needs_ffmpeg(path):
        return np.concatenate(list(ffmpeg_blocks(path, int(BLOCK_SECONDS * sample_rate), sample_rate)))
    with open_audio(path) as f:
        if f.frames / f.samplerate > MAX_SECONDS:
            raise AudioError(f"{path}: {f.frames / f.samplerate:.0f} s is longer than the {MAX_SECONDS:.0f} s limit")
        try:
            with mpg123_notes_dropped(path):
                samples = f.read(dtype="float32", always_2d=True)  # (N, channels)
        except Exception as e:  # opened, then damaged inside: as read_blocks says it
            raise AudioError(f"{path}: not readable as audio, truncated or corrupt ({sndfile_reason(e)})") from e
        rate = f.samplerate
    check_samples(samples, str(path), 0.0, rate)  # every channel within the limits, not only their mean
    return resample(to_mono(samples), rate, sample_rate)


class AudioInfo(NamedTuple):
    seconds: float  # duration
    sample_rate: int  # Hz, as stored (load_audio resamples to 16 kHz)
    channels: int


def audio_info(path: str | Path) -> AudioInfo:
    """Duration, sample rate and channels from the file header, without decoding (formats read through ffmpeg:
    as ffprobe reads their header); checked against the limits."""
    path = Path(path)
    if needs_ffmpeg(path):
        check_readable(path)
        seconds, rate, channels = ffprobe_header(path)
        check_format(str(path), rate, channels, what="the file is")
        return AudioInfo(seconds, rate, channels)
    with open_audio(path) as f:
        return AudioInfo(f.frames / f.samplerate, f.samplerate, f.channels)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file's header, without decoding (a file read through ffmpeg is decoded and its
    samples counted: their headers need not say it exactly)."""
    if needs_ffmpeg(Path(path)):
        return sum(len(x) for x in ffmpeg_blocks(path, int(BLOCK_SECONDS * SAMPLE_RATE))) / SAMPLE_RATE
    return audio_info(path).seconds


def write_wav(path: str | Path | io.BytesIO, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write (N,) float32 samples as a 32-bit float WAV (exact: what is read back is what was written)."""
    sf.write(sndfile_path(path) if isinstance(path, (str, Path)) else path, samples, sample_rate, subtype="FLOAT",
             format="WAV")


def codec_round_trip(wave: np.ndarray, file_format: str, subtype: str, level: float,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) float32 encoded in memory with a libsndfile codec (e.g. "MP3", "MPEG_LAYER_III") at compression
    `level` (0 best .. 1 smallest) and decoded again -> (M,) float32, M close to N (codecs pad)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), sample_rate, format=file_format, subtype=subtype,
             compression_level=level)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return decoded


def check_wav_complete(path: str | Path) -> bytes | None:
    """For a WAV file: check its header (asr.audio.header: fmt chunk, rate, channels), and raise AudioError if it
    holds fewer audio bytes than the header declares (libsndfile reads a cut-short WAV without complaint; other
    formats fail on reading instead). Other files pass unread. A header that declares 0 bytes (a streaming writer's
    placeholder) comes back rewritten to declare the audio that is there (sized_header); None otherwise."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        riff = f.read(4)
        if riff not in (b"RIFF", b"RF64"):
            return None
        f.seek(0)
        wav = read_wav_header(f.read, str(path))
        after = f.read(8)
        f.seek(0)
        head = f.read(wav.data_offset)
    present = size - wav.data_offset
    if riff == b"RF64":  # its sizes are in the ds64 chunk; libsndfile checks them
        return None
    if not check_wav_size(wav, present, str(path)) or (wav.data_size == 0 and chunk_follows(after, present)):
        return None
    warn_once(f"{path}: the WAV header gives a placeholder data size (0x{wav.data_size:08X}, written by "
              f"a streaming writer); reading the {present} bytes to the end of the file")
    return sized_header(head, wav, present) if wav.data_size == 0 else None


def not_readable(path: Path, e: Exception) -> AudioError:
    """The error for a file that libsndfile could not open, with its reason."""
    return AudioError(f"{path}: not readable as audio ({sndfile_reason(e)})")


def read_blocks(
    path: str | Path, block_seconds: float = BLOCK_SECONDS, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Stream a file of any length: (n,) float32 mono blocks at `sample_rate`, 0 < n <= block_seconds * sample_rate,
    in order, resampled block by block (soxr's streaming resampler gives the samples of a whole-file resample).
    Raises AudioError naming the path when the file is missing, unreadable, truncated, empty, or not finite (at
    once for a missing or empty file, else as the blocks are read: an error can come after some blocks)."""
    path = Path(path)
    check_readable(path)
    block = max(1, int(block_seconds * sample_rate))
    return ffmpeg_blocks(path, block, sample_rate) if needs_ffmpeg(path) else _sndfile_blocks(path, block, sample_rate)


def _sndfile_blocks(path: Path, block: int, sample_rate: int) -> Iterator[np.ndarray]:
    """read_blocks for the formats libsndfile reads: blocks of at most `block` samples at `sample_rate`."""
    with open_audio(path) as f:
        if f.frames == 0:
            raise AudioError(f"{path}: no audio samples (zero-length file)")
        stream = None
        if f.samplerate != sample_rate:
            import soxr

            stream = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        frames_per_read = max(1, block * f.samplerate // sample_rate)  # input frames that give <= ~one block
        seen, head = 0, head_of(path)
        while True:
            try:
                with mpg123_notes_dropped(head):  # (never across a yield)
                    x = f.read(frames_per_read, dtype="float32", always_2d=True)  # (n, channels)
            except Exception as e:
                where = f" after {seen / f.samplerate:.1f} s" if seen else ""
                raise AudioError(f"{path}: not readable as audio{where}, truncated or corrupt ({sndfile_reason(e)})") from e
            last = len(x) < frames_per_read
            if len(x):
                check_samples(x, str(path), seen / f.samplerate, f.samplerate)
            x = to_mono(x)
            seen += len(x)
            y = stream.resample_chunk(x, last=last) if stream is not None else x
            for i in range(0, len(y), block):  # the resampler can hand back a little more than one block
                yield y[i : i + block]
            if last:
                break
        if seen == 0:
            raise AudioError(f"{path}: no audio samples (empty or zero-length file)")
