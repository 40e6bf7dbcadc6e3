"""Audio from standard input and pipes (`-`, /dev/stdin, FIFOs, <(...)): read to the end, then decoded as
asr.audio decodes files. The CLI spools what it reads to a file (asr.longform.pipeline.spool_stream)."""

from __future__ import annotations

import io
import os
import stat
import sys

import numpy as np
import soundfile as sf

from asr.audio import _CONTAINERS, SAMPLE_RATE, AudioError, _reason, check_samples, os_reason, resample, to_mono, warn_once

MAX_STREAM_BYTES = 2**30  # bytes read from a pipe or stdin at most (1 GiB; 4 h of 16 kHz 16-bit mono is 0.46 GB)
RAW_FORMAT = "raw 16-bit little-endian PCM at 16 kHz mono"  # what a stream without a known header is read as
_HEADERS = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b".snd", b"NIST", b"ID3")  # what libsndfile reads


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


def _decode_stream(path: str, data: bytes) -> tuple[np.ndarray, int]:
    """Bytes of a stream -> ((N, C) or (N,) float32, rate): whatever libsndfile recognises (it sniffs WAV, FLAC,
    Ogg, MP3, ...), else RAW_FORMAT; text, a container libsndfile cannot read, or under 0.1 s of raw audio is an
    AudioError."""
    try:
        return sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # LibsndfileError and friends: not a format libsndfile knows
        reason = _reason(e).split(": ")[-1]  # without the repr of the BytesIO object
    kind = next((name for at, magic, name in _CONTAINERS if data[at : at + len(magic)] == magic), None)
    if kind is not None or data[:4] in _HEADERS:
        what = f"{kind} audio cannot be read" if kind else f"not readable as audio ({reason})"
        raise AudioError(f"{path}: {what}; convert it first, e.g. ffmpeg -i IN -ar 16000 -ac 1 OUT.wav")
    if looks_like_text(data):
        raise AudioError(f"{path}: text, not audio")
    if len(data) < 2 * SAMPLE_RATE // 10:
        raise AudioError(f"{path}: {len(data)} bytes with no audio header: too short for {RAW_FORMAT}")
    warn_once(f"{path}: no audio header that libsndfile knows: read as {RAW_FORMAT}")
    return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0, SAMPLE_RATE  # whole samples


def read_stream(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read stdin ("-") or a pipe to its end (at most MAX_STREAM_BYTES): any format libsndfile reads, else
    RAW_FORMAT (see _decode_stream); returns (N,) float32 at `sample_rate`. Raises AudioError naming `path`."""
    try:
        with open(sys.stdin.fileno() if path == "-" else path, "rb", closefd=path != "-") as f:
            data = f.read(MAX_STREAM_BYTES + 1)
    except OSError as e:
        raise AudioError(f"{path}: {os_reason(e)}") from e
    if not data:
        raise AudioError(f"{path}: no audio (empty input)")
    if len(data) > MAX_STREAM_BYTES:
        raise AudioError(f"{path}: more than {MAX_STREAM_BYTES} bytes from a pipe; save it to a file first")
    samples, sr = _decode_stream(path, data)
    return resample(check_samples(to_mono(samples), path), sr, sample_rate)
