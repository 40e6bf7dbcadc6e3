"""Bytes of uncompressed PCM, as they come (a pipe's blocks, WebSocket messages) -> float32 mono at 16 kHz,
resampled piece by piece with soxr's streaming resampler.

    pcm = PcmDecoder(sample_rate=44100)                   # the server: 16-bit PCM in each WebSocket message
    samples = pcm.feed(message); ...; samples = pcm.finish()
"""

from __future__ import annotations

import numpy as np

from asr.audio.header import FLOAT, PCM, WavHeader
from asr.audio.samples import SAMPLE_RATE, AudioError, check_format, check_samples

# sample encodings: name -> (bytes per sample, numpy dtype, full scale); "s24" is unpacked by hand
ENCODINGS = {
    "u8": (1, "u1", 128.0),  # offset binary: 128 is silence
    "s16": (2, "<i2", 32768.0),
    "s24": (3, "<i4", 2.0**31),  # three bytes, shifted into the top of an int32
    "s32": (4, "<i4", 2.0**31),
    "f32": (4, "<f4", 1.0),
    "f64": (8, "<f8", 1.0),
}


def wav_encoding(wav: WavHeader, name: str) -> str:
    """The ENCODINGS name of a WAV header's samples; AudioError for compressed ones (A-law, mu-law, ADPCM, ...)."""
    kind = {(PCM, 8): "u8", (PCM, 16): "s16", (PCM, 24): "s24", (PCM, 32): "s32",
            (FLOAT, 32): "f32", (FLOAT, 64): "f64"}.get((wav.format_tag, wav.bits))
    if kind is None:
        raise AudioError(f"{name}: WAV of format {wav.format_tag}, {wav.bits}-bit is not plain PCM or float; "
                         "read from a pipe are 8/16/24/32-bit PCM and 32/64-bit float WAV (or drop --stream)")
    return kind


class PcmDecoder:
    """Bytes of PCM (interleaved channels, little-endian, `encoding` one of ENCODINGS) -> (N,) float32 mono at
    16 kHz, piece by piece. Rates and channels are checked against asr.audio.samples' limits (ValueError), float
    samples as they come (AudioError naming `name`)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, channels: int = 1, encoding: str = "s16",
                 name: str = "stream"):
        try:
            check_format(name, sample_rate, channels, what="the audio is")
        except AudioError as e:
            raise ValueError(str(e)) from e
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}, got {encoding!r}")
        self.rate, self.channels, self.encoding, self.name = int(sample_rate), int(channels), encoding, name
        self.frame_bytes = ENCODINGS[encoding][0] * self.channels  # all channels of one sample
        self.rest = b""  # bytes short of a whole frame
        self.seen = 0  # frames decoded so far
        self.resampler = None
        if self.rate != SAMPLE_RATE:
            import soxr  # comes with librosa

            self.resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def feed(self, data: bytes) -> np.ndarray:
        data = self.rest + data
        whole = len(data) // self.frame_bytes * self.frame_bytes
        self.rest = data[whole:]
        x = self._samples(data[:whole]).reshape(-1, self.channels)  # (frames, channels)
        if self.encoding.startswith("f") and len(x):
            check_samples(x, self.name, self.seen / self.rate, self.rate)
        self.seen += len(x)
        x = x.mean(axis=1, dtype=np.float32) if self.channels > 1 else x[:, 0]
        return self._resampled(np.ascontiguousarray(x, dtype=np.float32), last=False)

    def finish(self) -> np.ndarray:
        """The resampler's last samples (a partial frame left over is dropped)."""
        return self._resampled(np.zeros(0, np.float32), last=True)

    def _samples(self, data: bytes) -> np.ndarray:
        """Whole frames' bytes -> (n,) float32 samples, full scale 1.0."""
        _, dtype, scale = ENCODINGS[self.encoding]
        if self.encoding == "s24":
            raw = np.frombuffer(data, np.uint8).reshape(-1, 3)
            wide = np.zeros((len(raw), 4), np.uint8)
            wide[:, 1:] = raw  # little-endian: the three bytes become the top of an int32
            x = wide.view("<i4")[:, 0]
        else:
            x = np.frombuffer(data, dtype)
        if self.encoding == "u8":
            return (x.astype(np.float32) - 128.0) / scale
        with np.errstate(over="ignore"):  # float64 past float32's range becomes inf: refused by check_samples
            x = x.astype(np.float32)
        return x / np.float32(scale) if scale != 1.0 else x

    def _resampled(self, x: np.ndarray, last: bool) -> np.ndarray:
        if self.resampler is None:
            return x
        return self.resampler.resample_chunk(x, last=last).astype(np.float32, copy=False)
