"""What a file or stream is, from its first bytes, and the one WAV header parser (files, pipes and uploads).

    sniff(b"fLaC...")                      # -> Format("FLAC", readable=True)
    wav = read_wav_header(f.read, "x.wav")  # -> WavHeader(rate=16000, channels=1, ...), f left at the audio
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asr.audio.samples import AudioError, check_format

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".sph", ".mp3", ".opus", ".aiff", ".aif", ".aifc", ".au", ".caf",
                    ".w64", ".rf64")
# formats that libsndfile cannot read (AAC, ALAC, WebM/Matroska, WMA, AMR): read through ffmpeg where it is on PATH
# (asr.audio.ffmpeg); without it, refused with the command that converts them, and in folders counted and named
UNREADABLE_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".webm", ".mka", ".mkv", ".wma", ".asf", ".amr")
CONVERT_HINT = "ffmpeg -i in.m4a -ar 16000 -ac 1 out.wav"  # the command that makes any of them readable
SNIFF_BYTES = 16  # the first bytes that sniff() needs


@dataclass(frozen=True)
class Format:
    name: str  # in words, for messages: "FLAC", "MP4/M4A (AAC or ALAC)"
    readable: bool  # whether libsndfile reads it


_MAGIC = (  # (offset, first bytes, the format), whatever the file's name
    (0, b"RIFF", Format("WAV", True)),
    (0, b"RF64", Format("WAV (RF64)", True)),
    (0, b"fLaC", Format("FLAC", True)),
    (0, b"OggS", Format("Ogg", True)),
    (0, b"FORM", Format("AIFF", True)),
    (0, b".snd", Format("AU", True)),
    (0, b"NIST", Format("SPHERE", True)),
    (0, b"ID3", Format("MP3", True)),
    (4, b"ftyp", Format("MP4/M4A (AAC or ALAC)", False)),
    (0, b"\x1a\x45\xdf\xa3", Format("WebM/Matroska", False)),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", Format("WMA/ASF", False)),
)


def sniff(head: bytes) -> Format | None:
    """The format whose signature `head` (the first SNIFF_BYTES bytes) starts with, or None."""
    return next((fmt for at, magic, fmt in _MAGIC if head[at : at + len(magic)] == magic), None)


def unreadable_kind(path: Path, head: bytes) -> str | None:
    """A file libsndfile cannot read, in words, by its first bytes or else by its extension; None if neither says."""
    fmt = sniff(head)
    if fmt is not None:
        return None if fmt.readable else fmt.name
    return path.suffix[1:].upper() if path.suffix.lower() in UNREADABLE_EXTENSIONS else None


# WAVE format tags: 1 integer PCM, 3 IEEE float, 6 A-law, 7 mu-law, 0xFFFE extensible (the real tag in its GUID)
PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_MAX_SKIPPED = 1 << 20  # bytes of chunks before the audio (LIST, junk, ...) read past at most


@dataclass(frozen=True)
class WavHeader:
    rate: int  # Hz
    channels: int
    format_tag: int  # PCM, FLOAT, ALAW, MULAW (an EXTENSIBLE header's real tag)
    bits: int  # bits per sample
    data_size: int  # bytes of audio the header declares (a streaming writer's placeholder included)
    data_offset: int  # bytes before the audio


# data sizes a streaming writer puts in a header it cannot go back to: espeak-ng 0x7FFFF000, arecord 0x80000000 (its
# WAVE size limit; 0x7FFFFF00 in some versions), ffmpeg 0xFFFFFFFF; others 0 or 0x7FFFFFFF
SIZE_PLACEHOLDERS = (0, 0x7FFFF000, 0x7FFFFF00, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def check_wav_size(wav: WavHeader, present: int, name: str, what: str = "file") -> bool:
    """Raise AudioError naming `name` where the `present` bytes of audio are fewer than the header declares (a file
    or stream cut short); True where the header's size is a streaming writer's placeholder that the audio does not
    match (the caller reads to the end and may say so; a 0 it must also put right: sized_header)."""
    if wav.data_size in SIZE_PLACEHOLDERS:
        return wav.data_size != present
    if present < wav.data_size:
        raise AudioError(f"{name}: truncated: the header declares {wav.data_size} bytes of audio, the {what} holds "
                         f"{present}")
    return False


def chunk_follows(head: bytes, remaining: int) -> bool:
    """Whether `head` (the 8 bytes after a data chunk that declares 0 bytes) is another chunk's header, as LIST or
    id3 metadata after an empty data chunk: 4 ASCII letters, digits or spaces, and a size within the `remaining`
    bytes. Then the 0 is the truth, not a streaming writer's placeholder."""
    return (len(head) == 8 and all(48 <= c < 58 or 65 <= c < 91 or 97 <= c < 123 or c == 32 for c in head[:4])
            and struct.unpack("<I", head[4:])[0] + 8 <= remaining)


def sized_header(head: bytes, wav: WavHeader, present: int) -> bytes:
    """A WAV's first wav.data_offset bytes (`head`) rewritten to declare the `present` bytes of audio that follow
    (libsndfile takes a header's 0 at its word: no audio), and its RIFF size to match."""
    sized = bytearray(head[: wav.data_offset])
    sized[wav.data_offset - 4 : wav.data_offset] = min(present, 0xFFFFFFFF).to_bytes(4, "little")
    sized[4:8] = min(present + wav.data_offset - 8, 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(sized)


# FLAC's STREAMINFO, the first metadata block, gives the samples per channel in 36 bits from byte 21 of the file (low
# 4 bits of that byte); 0 is "unknown", what a streaming encoder (flac -, ffmpeg -f flac -) leaves there
FLAC_HEAD = 42  # bytes: "fLaC", STREAMINFO's 4-byte block header and its 34 bytes
_FLAC_TOTAL = slice(21, 26)  # the bytes that hold the 36-bit total (big-endian), under 4 bits of bits-per-sample
_TOTAL_BITS = 2**36 - 1


def flac_length_unknown(head: bytes) -> bool:
    """Whether `head` (a file's first FLAC_HEAD bytes) is a FLAC whose STREAMINFO gives 0 samples: a streaming
    encoder's "unknown", which libsndfile takes as 2**63 - 1 frames (and then fails to read to the end)."""
    return (len(head) >= FLAC_HEAD and head[:4] == b"fLaC" and head[4] & 0x7F == 0 and head[5:8] == b"\x00\x00\x22"
            and int.from_bytes(head[_FLAC_TOTAL], "big") & _TOTAL_BITS == 0)


def sized_flac_header(head: bytes, frames: int) -> bytes:
    """A FLAC's first FLAC_HEAD bytes (`head`) rewritten to give the `frames` (samples per channel) that its audio
    holds, as sized_header does for a WAV (FLAC cannot say more than 2**36 - 1: 397 hours at 48 kHz)."""
    sized = bytearray(head[:FLAC_HEAD])
    total = int.from_bytes(sized[_FLAC_TOTAL], "big") & ~_TOTAL_BITS | min(frames, _TOTAL_BITS)
    sized[_FLAC_TOTAL] = total.to_bytes(5, "big")
    return bytes(sized)


def read_wav_header(read: Callable[[int], bytes], name: str) -> WavHeader:
    """Parse a RIFF/WAVE header from `read` (a file's or pipe's read, at its first byte), leaving it at the first
    byte of the audio. Raises AudioError naming `name` for a header that is not WAVE, ends early, has no or a short
    fmt chunk, or describes a rate or channel count outside the limits (asr.audio.samples)."""
    riff = read(12)
    if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a WAV file (a RIFF/WAVE header was expected)")
    pos, fmt = 12, None
    while True:
        head = read(8)
        if len(head) < 8:
            raise AudioError(f"{name}: the WAV header ends before its data chunk")
        kind, size = head[:4], struct.unpack("<I", head[4:])[0]
        pos += 8
        if kind == b"data":
            break
        if kind != b"fmt " and size > _MAX_SKIPPED:
            raise AudioError(f"{name}: a {size}-byte {kind!r} chunk before the audio; is this a WAV file?")
        body = read(size + size % 2)  # chunks are padded to an even length
        pos += len(body)
        if len(body) < size:
            raise AudioError(f"{name}: the WAV header ends inside its {kind.decode('latin-1')!r} chunk")
        if kind == b"fmt ":
            fmt = _fmt_chunk(body[:size], name)
    if fmt is None:
        raise AudioError(f"{name}: WAV audio before its fmt chunk")
    tag, channels, rate, bits = fmt
    check_format(name, rate, channels, what="the WAV header says")
    return WavHeader(rate, channels, tag, bits, size, pos)


def _fmt_chunk(body: bytes, name: str) -> tuple[int, int, int, int]:
    """A fmt chunk's (format tag, channels, rate, bits per sample)."""
    if len(body) < 16:
        raise AudioError(f"{name}: the WAV fmt chunk is {len(body)} bytes; it needs at least 16")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # the first two bytes of the sub-format GUID
    return tag, channels, rate, bits
