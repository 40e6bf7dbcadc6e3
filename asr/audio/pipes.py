"""Audio from standard input and pipes (`-`, /dev/stdin, FIFOs, <(...)): read whole (read_stream, for the
long-form path, which spools it to a file) or block by block as it is written (audio_blocks, for --stream).

    for samples in audio_blocks("-", block_s=0.1):        # stdin: a WAV header, or raw 16-bit 16 kHz mono
        ...
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np
import soundfile as sf

from asr.audio.ffmpeg import ffmpeg_blocks, have_ffmpeg
from asr.audio.files import BLOCK_SECONDS, open_audio, os_reason, read_blocks
from asr.audio.header import SNIFF_BYTES, check_wav_size, chunk_follows, read_wav_header, sized_header, sniff
from asr.audio.mpeg import bytes_reader, check_mpeg_frames, mpeg_frames_found
from asr.audio.pcm import PcmDecoder, wav_encoding
from asr.audio.quiet import mpg123_notes_dropped
from asr.audio.samples import SAMPLE_RATE, AudioError, check_format, check_samples, resample, to_mono, warn_once
from asr.audio.sndfile import sized_flac_bytes, sndfile_reason

MAX_STREAM_BYTES = 2**30  # bytes read from a pipe or stdin at most (1 GiB; 4 h of 16 kHz 16-bit mono is 0.46 GB)
RAW_FORMAT = "raw 16-bit little-endian PCM at 16 kHz mono"  # what a stream without a known header is read as
CONVERT = "convert it first, e.g. ffmpeg -i IN -ar 16000 -ac 1 OUT.wav"


def is_stream(path: str) -> bool:
    """Whether `path` is "-" (stdin), a pipe or a character device (/dev/stdin, a FIFO, <(...): /dev/fd/N)."""
    try:
        return path == "-" or stat.S_ISFIFO(mode := os.stat(path).st_mode) or stat.S_ISCHR(mode)
    except OSError:
        return False


def looks_like_text(data: bytes) -> bool:
    """Whether the first 4 KiB are (almost all) printable ASCII: text piped in by mistake, not 16-bit audio."""
    head = data[:4096]
    return sum(32 <= b < 127 or b in (9, 10, 13) for b in head) > 0.95 * len(head)


def _decode_whole(name: str, data: bytes) -> tuple[np.ndarray, int]:
    """All the bytes of a stream -> ((N, C) float32, rate): a WAV (its header checked by asr.audio.header) or
    whatever else libsndfile recognises (FLAC, Ogg, MP3, ...), a container it cannot read through ffmpeg where it is on
    PATH, else RAW_FORMAT; text, such a container without ffmpeg, or under 0.1 s of raw audio is an AudioError."""
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is not None and not fmt.readable and have_ffmpeg():
        return _through_ffmpeg(name, data), SAMPLE_RATE
    if fmt is not None and fmt.name == "WAV":
        whole = io.BytesIO(data)
        wav = read_wav_header(whole.read, name)
        present, after = len(data) - wav.data_offset, data[wav.data_offset : wav.data_offset + 8]
        if check_wav_size(wav, present, name, "stream") and wav.data_size == 0 and not chunk_follows(after, present):
            data = sized_header(data, wav, present) + data[wav.data_offset :]
    data = sized_flac_bytes(data, name)  # a FLAC of unknown length (a streaming encoder's) given the one it has
    try:
        with mpg123_notes_dropped(data):
            opened = sf.SoundFile(io.BytesIO(data))
    except Exception as e:  # LibsndfileError and friends: not a format libsndfile knows
        reason = sndfile_reason(e).split(": ")[-1]  # no BytesIO repr
        if fmt is None and mpeg_frames_found(bytes_reader(data)):  # MP3 behind bytes an open in memory does not skip
            return _through_a_file(name, data)
    else:
        with opened, mpg123_notes_dropped(data):
            check_format(name, opened.samplerate, opened.channels, what="the audio is")
            if opened.format == "MP3":
                check_mpeg_frames(bytes_reader(data), name)
            try:
                return opened.read(dtype="float32", always_2d=True), opened.samplerate
            except Exception as e:  # a format libsndfile knows, damaged inside: not raw PCM
                raise AudioError(f"{name}: not readable as audio, truncated or corrupt ({sndfile_reason(e)})") from e
    if fmt is not None:
        what = (f"{fmt.name} audio cannot be read without ffmpeg; install ffmpeg, or" if not fmt.readable
                else f"not readable as audio ({reason});")
        raise AudioError(f"{name}: {what} {CONVERT}")
    if looks_like_text(data):
        raise AudioError(f"{name}: text, not audio")
    if len(data) < 2 * SAMPLE_RATE // 10:
        raise AudioError(f"{name}: {len(data)} bytes with no audio header: too short for {RAW_FORMAT}")
    warn_once(f"{name}: no audio header that libsndfile knows: read as {RAW_FORMAT}")
    return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32)[:, None] / 32768.0, SAMPLE_RATE


def _through_ffmpeg(name: str, data: bytes) -> np.ndarray:
    """All the bytes of a stream in a format only ffmpeg reads (MP4 needs to seek: it goes through a temporary
    file) -> (N, 1) float32 at 16 kHz; AudioError naming `name`, never the temporary file."""
    with tempfile.TemporaryDirectory(prefix="asr-pipe-") as folder:
        path = Path(folder) / "stream"
        path.write_bytes(data)
        try:
            return np.concatenate(list(ffmpeg_blocks(path, int(BLOCK_SECONDS * SAMPLE_RATE))))[:, None]
        except AudioError as e:
            raise AudioError(str(e).replace(str(path), name)) from e


def _through_a_file(name: str, data: bytes) -> tuple[np.ndarray, int]:
    """All the bytes of a stream read as a file is ((N, C) float32, rate): libsndfile's open of a file finds an MP3's
    first frame past bytes before it, its open of data in memory does not. AudioError naming `name`."""
    with tempfile.TemporaryDirectory(prefix="asr-pipe-") as folder:
        path = Path(folder) / "stream.mp3"
        path.write_bytes(data)
        try:
            with open_audio(path) as f, mpg123_notes_dropped(data):
                return f.read(dtype="float32", always_2d=True), f.samplerate
        except AudioError as e:
            raise AudioError(str(e).replace(str(path), name)) from e
        except Exception as e:  # damaged inside
            raise AudioError(f"{name}: not readable as audio, truncated or corrupt ({sndfile_reason(e)})") from e


def read_stream(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read stdin ("-") or a pipe to its end (at most MAX_STREAM_BYTES): any format libsndfile reads, else
    RAW_FORMAT; returns (N,) float32 at `sample_rate`. Raises AudioError naming `path`."""
    try:
        with open(sys.stdin.fileno() if path == "-" else path, "rb", closefd=path != "-") as f:
            data = f.read(MAX_STREAM_BYTES + 1)
    except OSError as e:
        raise AudioError(f"{path}: {os_reason(e)}") from e
    if not data:
        raise AudioError(f"{path}: no audio (empty input)")
    if len(data) > MAX_STREAM_BYTES:
        raise AudioError(f"{path}: more than {MAX_STREAM_BYTES} bytes from a pipe; save it to a file first")
    samples, rate = _decode_whole(path, data)
    return resample(to_mono(check_samples(samples, path, 0.0, rate)), rate, sample_rate)


def _prefixed(head: bytes, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """`read`, with `head` (bytes already read) handed out first."""
    pending = [head]

    def read_more(n: int) -> bytes:
        first, pending[0] = pending[0][:n], pending[0][n:]
        return first + (read(n - len(first)) if len(first) < n else b"")

    return read_more


def pipe_blocks(f: BinaryIO, name: str, block_s: float) -> Iterator[np.ndarray]:
    """Blocks of a pipe as it is written: a PCM or float WAV (asr.audio.header parses it), or RAW_FORMAT;
    other formats are refused (they cannot be decoded before they end)."""
    head = f.read(4)
    read, pcm, wav = f.read, PcmDecoder(SAMPLE_RATE, 1, "s16", name), None
    fmt = sniff(head)
    if fmt is not None and fmt.name == "WAV":
        wav = read_wav_header(_prefixed(head, f.read), name)
        pcm, head = PcmDecoder(wav.rate, wav.channels, wav_encoding(wav, name), name), b""
    elif fmt is not None:
        raise AudioError(f"{name}: {fmt.name} audio; --stream reads WAV or raw 16-bit PCM from a pipe "
                         "(drop --stream to transcribe the whole input)")
    size = max(pcm.frame_bytes, int(block_s * pcm.rate) * pcm.frame_bytes)
    data = head + read(size - len(head))
    if not data:
        raise AudioError(f"{name}: no audio (empty input)")
    if head and looks_like_text(data):
        raise AudioError(f"{name}: text, not audio")
    if head:
        warn_once(f"{name}: no WAV header: read as {RAW_FORMAT}")
    present = 0
    while data:
        present += len(data)
        if len(out := pcm.feed(data)):
            yield out
        data = read(size)
    if wav is not None:  # what came is said once it has all come
        check_wav_size(wav, present, name, "stream")
    if len(out := pcm.finish()):
        yield out


def _closing_pipe(path: str, block_s: float) -> Iterator[np.ndarray]:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise AudioError(f"{path}: {os_reason(e)}") from e
    with f:
        yield from pipe_blocks(f, path, block_s)


def audio_blocks(path: str, block_s: float = 0.1, realtime: bool = False) -> Iterator[np.ndarray]:
    """(N,) float32 blocks at 16 kHz of a file (any format read_blocks reads) or of stdin ("-") and pipes,
    block_s seconds each (the last shorter); `realtime`: no faster than the audio plays."""
    if path == "-":
        blocks = pipe_blocks(sys.stdin.buffer, "stdin", block_s)
    elif is_stream(path):
        blocks = _closing_pipe(path, block_s)
    else:
        blocks = read_blocks(path, block_s)
    start, played = time.monotonic(), 0.0
    for block in blocks:
        played += len(block) / SAMPLE_RATE
        if realtime and (ahead := start + played - time.monotonic()) > 0:  # a block is there once it has played
            time.sleep(ahead)
        yield block
