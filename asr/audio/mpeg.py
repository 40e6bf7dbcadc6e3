"""Whether data that libsndfile opened as MP3 hold MPEG audio frames at all. libsndfile hands data that no other
format claims to libmpg123, which takes a stray sync word (11 set bits, e.g. bytes FF FE) for a frame and decodes
garbage as silence: a corrupt file was transcribed as "no speech" and exited 0. Real MPEG audio is a chain of
frames, each header saying how long its frame is and the next header starting where it ends.

    mpeg_frames_found(read_at)   # read_at(offset, n) -> bytes: True where a chain of frames starts near the front
    check_mpeg_frames(bytes_reader(data), "upload.mp3")   # AudioError naming it where none does
"""

from __future__ import annotations

from typing import Callable

from asr.audio.samples import AudioError

CHAIN = 3  # frame headers in a row that make MPEG audio (fewer where the data, or an ID3v1/APE tag, follow the last
# frame exactly). Free-format streams (bitrate index 0: no frame length in the header) are not recognised.
SEARCH_BYTES = 64 * 1024  # how far past the ID3 tag a first frame is looked for (encoders' padding, a stray byte)
HEADER_BYTES = 4

# kbit/s by bitrate index 1-14; index 0 ("free format", no length in the header) and 15 are not accepted
_BITRATES = {
    (1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),  # (MPEG-1, Layer I)
    (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),  # (MPEG-2 and 2.5, Layer I)
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits: 1, 2, 2.5


def frame_header(h: bytes) -> tuple[tuple[int, int, int], int] | None:
    """((version bits, layer, sample rate), frame length in bytes) of a valid MPEG audio frame header, else None."""
    if len(h) < HEADER_BYTES or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits, bitrate_index = (h[1] >> 3) & 3, (h[1] >> 1) & 3, h[2] >> 4
    rate_index, padding = (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits  # the bits say 3 for Layer I, 1 for Layer III
    bitrate = _BITRATES[(1 if version == 3 else 2, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        per_frame = 72 if layer == 3 and version != 3 else 144  # MPEG-2/2.5 Layer III frames hold half the samples
        length = per_frame * bitrate // rate + padding
    return (version, layer, rate), length


def id3_end(read_at: Callable[[int, int], bytes]) -> int:
    """Where the audio starts after the ID3v2 tags at the front (each: a 10-byte header, a syncsafe size, an optional
    footer; some files carry two in a row)."""
    start = 0
    while len(head := read_at(start, 10)) == 10 and head[:3] == b"ID3":
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
        start += 10 + size + (10 if head[5] & 0x10 else 0)
    return start


def chain_at(read_at: Callable[[int, int], bytes], offset: int) -> bool:
    """Whether CHAIN frame headers follow one another from `offset` (or the data end exactly after fewer)."""
    first = frame_header(read_at(offset, HEADER_BYTES))
    if first is None:
        return False
    kind, length = first
    for _ in range(CHAIN - 1):
        offset += length
        h = read_at(offset, HEADER_BYTES)
        if not h or h[:3] == b"TAG" or read_at(offset, 8) == b"APETAGEX":  # the end, or the tags after the audio:
            return len(read_at(offset - 1, 1)) == 1  # only where the frame ends there, not past the data's end
        nxt = frame_header(h)
        if nxt is None or nxt[0] != kind:
            return False
        length = nxt[1]
    return True


def mpeg_frames_found(read_at: Callable[[int, int], bytes]) -> bool:
    """Whether a chain of MPEG audio frames starts within SEARCH_BYTES past the front (and its ID3v2 tag)."""
    start = id3_end(read_at)
    window = read_at(start, SEARCH_BYTES)
    at = window.find(b"\xff")
    while at != -1:
        if chain_at(read_at, start + at):
            return True
        at = window.find(b"\xff", at + 1)
    return False


def check_mpeg_frames(read_at: Callable[[int, int], bytes], name: str) -> None:
    """AudioError naming `name` where libsndfile took data for MP3 that hold no chain of MPEG audio frames."""
    if not mpeg_frames_found(read_at):
        raise AudioError(f"{name}: not readable as audio (no MPEG audio frames: corrupt data, or not audio)")


def bytes_reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, n: data[offset : offset + n]


def file_reader(f) -> Callable[[int, int], bytes]:
    """read_at over an open binary file."""

    def read_at(offset: int, n: int) -> bytes:
        f.seek(offset)
        return f.read(n)

    return read_at
