"""Live audio in: 16-bit PCM bytes (raw, or WAV from a pipe, as `arecord` writes it) and files, as blocks of
float32 mono samples at 16 kHz, resampled as they come (soxr's streaming resampler).

    for samples in audio_blocks("-", block_s=0.1):        # stdin: WAV header or raw 16-bit 16 kHz mono
        ...
    pcm = PcmDecoder(sample_rate=44100)                   # the server: bytes of each WebSocket message
    samples = pcm.feed(message); ...; samples = pcm.finish()
"""

from __future__ import annotations

import struct
import sys
import time
from typing import BinaryIO, Iterator

import numpy as np

from asr.audio import SAMPLE_RATE, AudioError, read_blocks, warn_once
from asr.audio_stream import RAW_FORMAT, is_stream, looks_like_text

MAX_RATE = 384000  # Hz; the highest sample rate accepted (studio audio); 0 or less, or more, is an error
_OTHER_HEADERS = {b"fLaC": "FLAC", b"OggS": "Ogg", b"ID3": "MP3", b"FORM": "AIFF", b"NIST": "SPHERE", b".snd": "AU"}


class PcmDecoder:
    """Bytes of 16-bit little-endian PCM (interleaved channels) -> (N,) float32 mono at 16 kHz, piece by piece."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1):
        if not 0 < sample_rate <= MAX_RATE:
            raise ValueError(f"sample_rate must be 1..{MAX_RATE} Hz, got {sample_rate}")
        if not 0 < channels <= 64:
            raise ValueError(f"channels must be 1..64, got {channels}")
        self.rate, self.channels = int(sample_rate), int(channels)
        self.rest = b""  # bytes short of a whole frame (all channels of one sample)
        self.resampler = None
        if self.rate != SAMPLE_RATE:
            import soxr  # comes with librosa

            self.resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def feed(self, data: bytes) -> np.ndarray:
        data = self.rest + data
        whole = len(data) // (2 * self.channels) * 2 * self.channels
        self.rest = data[whole:]
        x = np.frombuffer(data[:whole], "<i2").astype(np.float32) / 32768.0
        x = x.reshape(-1, self.channels).mean(axis=1) if self.channels > 1 else x
        return self._resampled(x, last=False)

    def finish(self) -> np.ndarray:
        """The resampler's last samples (a partial frame left over is dropped)."""
        return self._resampled(np.zeros(0, np.float32), last=True)

    def _resampled(self, x: np.ndarray, last: bool) -> np.ndarray:
        if self.resampler is None:
            return x
        return self.resampler.resample_chunk(x, last=last).astype(np.float32, copy=False)


def wav_header(f: BinaryIO, name: str) -> tuple[int, int]:
    """The rest of a WAV header whose "RIFF" was read: -> (sample rate, channels); 16-bit PCM only."""
    if f.read(8)[4:] != b"WAVE":
        raise AudioError(f"{name}: RIFF but not WAVE")
    rate = channels = None
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise AudioError(f"{name}: WAV header ends before its data chunk")
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        if kind == b"data":
            break
        body = f.read(size + size % 2)
        if kind == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if fmt not in (1, 0xFFFE) or bits != 16:
                raise AudioError(f"{name}: --stream reads 16-bit PCM WAV; this one is format {fmt}, {bits}-bit "
                                 "(arecord -f S16_LE, or drop --stream to read the whole file)")
    if rate is None:
        raise AudioError(f"{name}: WAV data before its fmt chunk")
    if not 0 < rate <= MAX_RATE or not 0 < channels <= 64:
        raise AudioError(f"{name}: WAV header says {rate} Hz, {channels} channels (1..{MAX_RATE} Hz, 1..64 channels)")
    return rate, channels


def pipe_blocks(f: BinaryIO, name: str, block_s: float) -> Iterator[np.ndarray]:
    """Blocks of a pipe as it is written: WAV (16-bit PCM) or raw RAW_FORMAT; other formats are refused."""
    head = f.read(4)
    rate, channels, first = SAMPLE_RATE, 1, head
    if head == b"RIFF":
        (rate, channels), first = wav_header(f, name), b""
    elif kind := next((k for magic, k in _OTHER_HEADERS.items() if head.startswith(magic)), None):
        raise AudioError(f"{name}: {kind} audio; --stream reads WAV or raw 16-bit PCM from a pipe "
                         "(drop --stream to transcribe the whole input)")
    pcm = PcmDecoder(rate, channels)
    size = max(2 * channels, int(block_s * rate) * 2 * channels)
    data = first + f.read(size - len(first))
    if not data:
        raise AudioError(f"{name}: no audio (empty input)")
    if first and looks_like_text(data):
        raise AudioError(f"{name}: text, not audio")
    if first:
        warn_once(f"{name}: no WAV header: read as {RAW_FORMAT}")
    while data:
        if len(out := pcm.feed(data)):
            yield out
        data = f.read(size)
    if len(out := pcm.finish()):
        yield out


def _closing_pipe(path: str, block_s: float) -> Iterator[np.ndarray]:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise AudioError(f"{path}: {e.strerror or e}") from e
    with f:
        yield from pipe_blocks(f, path, block_s)


def audio_blocks(path: str, block_s: float = 0.1, realtime: bool = False) -> Iterator[np.ndarray]:
    """(N,) float32 blocks at 16 kHz of a file (any format asr.audio reads) or of stdin ("-") and pipes,
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
