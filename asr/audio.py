"""Load any audio file as float32 mono at 16 kHz. The one module that touches audio files."""

from __future__ import annotations

import errno
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000  # Hz, what every other module expects
MAX_SECONDS = 4 * 3600.0  # refuse to load more than 4 hours in one piece (use read_blocks for longer)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".sph", ".mp3", ".opus", ".aiff", ".aif", ".au")
# formats that libsndfile cannot read (AAC, ALAC, WebM/Matroska, WMA, AMR): found in folders, they are counted and named
UNREADABLE_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".webm", ".mka", ".mkv", ".wma", ".asf", ".amr")
CONVERT_HINT = "ffmpeg -i in.m4a -ar 16000 -ac 1 out.wav"  # the command that makes any of them readable
_CONTAINERS = (  # (offset, first bytes, what the file is) for the containers above, whatever the file's name
    (4, b"ftyp", "MP4/M4A (AAC or ALAC)"),
    (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "WMA/ASF"),
)




class AudioError(Exception):
    """A file could not be read as audio; the message starts with the path."""


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) -> (N,) by averaging channels."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) at orig_sr -> (M,) at target_sr, with soxr (high quality, fast)."""
    if orig_sr == target_sr:
        return samples
    import soxr  # comes with librosa; imported here so that `import asr.audio` stays cheap

    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def check_samples(samples: np.ndarray, name: str) -> np.ndarray:
    """Reject empty or non-finite audio; returns the samples unchanged."""
    if samples.size == 0:
        raise AudioError(f"{name}: no audio samples (empty or zero-length file)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return samples


def os_reason(e: OSError) -> str:
    """What went wrong opening or listing a path, in words for an error message."""
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    return (e.strerror or type(e).__name__).lower()


def check_readable(path: Path) -> None:
    """Raise AudioError naming the path unless it is a file that this process can open."""
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        broken = " (a broken symbolic link)" if isinstance(e, FileNotFoundError) and path.is_symlink() else ""
        raise AudioError(f"{path}: {os_reason(e)}{broken}") from e


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read wav/flac/ogg/sph/... at any rate and channel count; returns (N,) float32 at `sample_rate`."""
    path = Path(path)
    check_readable(path)
    try:
        check_wav_complete(path)
        info = sf.info(str(path))
        if info.frames / max(info.samplerate, 1) > MAX_SECONDS:
            raise AudioError(
                f"{path}: {info.frames / info.samplerate:.0f} s is longer than the {MAX_SECONDS:.0f} s limit"
            )
        samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError, TypeError... on bad files
        raise not_readable(path, e) from e
    samples = check_samples(to_mono(samples), str(path))
    return resample(samples, sr, sample_rate)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header, without decoding."""
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise AudioError(f"{path}: not readable as audio ({e})") from e
    return info.frames / info.samplerate


BLOCK_SECONDS = 30.0  # s; the most audio read_blocks holds or returns at a time
# data sizes written by streaming writers that did not know the length: read to the end of the file, as libsndfile,
# ffmpeg and sox do (0x7FFFF000: espeak-ng --stdout and many recorders; 0xFFFFFFFF: the largest size)
_WAV_SIZE_PLACEHOLDERS = (0, 0x7FFFF000, 0xFFFFFFFF)
_warned: set[str] = set()  # messages already printed by warn_once


@dataclass
class FolderScan:
    audio: list[Path] = field(default_factory=list)  # files with an audio extension (reading them may still fail)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed, and why
    unreadable: list[Path] = field(default_factory=list)  # files in formats libsndfile cannot read (by extension)


def scan_folder(directory: str | Path) -> FolderScan:
    """The audio files under `directory` (recursively, by extension, hidden files and folders skipped, links
    to folders not followed), sorted; the folders that could not be listed, with the reason; and the files in
    formats that cannot be read (UNREADABLE_EXTENSIONS)."""
    scan, pending = FolderScan(), [Path(directory)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            scan.problems.append((folder, f"{folder}: {os_reason(e)} (cannot list this folder)"))
            continue
        for entry in entries:
            path = folder / entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif path.suffix.lower() in AUDIO_EXTENSIONS and not path.is_dir():  # broken links too: reading says why
                scan.audio.append(path)
            elif path.suffix.lower() in UNREADABLE_EXTENSIONS:
                scan.unreadable.append(path)
    scan.audio.sort()
    scan.unreadable.sort()
    scan.problems.sort()
    return scan


def find_audio_files(directory: str | Path) -> list[Path]:
    """Audio files under `directory` (recursively, by extension, hidden files skipped), sorted."""
    return [p for p in scan_folder(directory).audio if p.is_file()]


def check_wav_complete(path: str | Path) -> None:
    """Raise AudioError if a RIFF/WAVE file holds fewer audio bytes than its header declares.
    libsndfile reads a cut-short WAV without complaint; other formats fail on reading instead."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(8)
            chunk, length = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"data":
                present = size - pos - 8
                if length in _WAV_SIZE_PLACEHOLDERS and length not in (0, present):
                    warn_once(f"{path}: the WAV header gives a placeholder data size (0x{length:08X}, written by "
                              f"a streaming writer); reading the {present} bytes to the end of the file")
                elif present < length:
                    raise AudioError(f"{path}: truncated: the header declares {length} bytes of audio, "
                                     f"the file holds {present}")
                return
            pos += 8 + length + (length & 1)  # chunks are padded to an even length


def warn_once(message: str) -> None:
    """Print `warning: <message>` on stderr the first time this process sees the message (a file read twice,
    as long files are by asr.longform, is named once; each affected file is named)."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def not_readable(path: Path, e: Exception) -> AudioError:
    """The error for a file that libsndfile could not open: for a format it cannot read, what is supported
    and the ffmpeg command that converts it."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    kind = next((name for at, magic, name in _CONTAINERS if head[at : at + len(magic)] == magic), None)
    if kind is None and path.suffix.lower() in UNREADABLE_EXTENSIONS:
        kind = path.suffix[1:].upper()
    if kind is None:
        return AudioError(f"{path}: not readable as audio ({_reason(e)})")
    out = path.with_name(f"{path.stem}-16k.wav")
    return AudioError(f"{path}: {kind} audio cannot be read (readable: {' '.join(AUDIO_EXTENSIONS)}); convert it "
                      f"first, e.g. ffmpeg -i {shlex.quote(str(path))} -ar 16000 -ac 1 {shlex.quote(str(out))}")


def _reason(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[-1] if text else type(e).__name__


def read_blocks(
    path: str | Path, block_seconds: float = BLOCK_SECONDS, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Stream a file of any length: (n,) float32 mono blocks at `sample_rate`, 0 < n <= block_seconds * sample_rate,
    in order, resampled block by block (soxr's streaming resampler gives the samples of a whole-file resample).
    Raises AudioError naming the path when the file is missing, unreadable, truncated, empty, or not finite;
    an error can come after some blocks have been returned."""
    path = Path(path)
    check_readable(path)
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    block = max(1, int(block_seconds * sample_rate))
    try:
        check_wav_complete(path)
        f = sf.SoundFile(str(path))
    except AudioError:
        raise
    except Exception as e:
        raise not_readable(path, e) from e
    with f:
        if f.frames == 0:
            raise AudioError(f"{path}: no audio samples (zero-length file)")
        stream = None
        if f.samplerate != sample_rate:
            import soxr

            stream = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        frames_per_read = max(1, block * f.samplerate // sample_rate)  # input frames that give <= ~one block
        seen = 0
        while True:
            try:
                x = f.read(frames_per_read, dtype="float32", always_2d=True)  # (n, channels)
            except Exception as e:
                where = f" after {seen / f.samplerate:.1f} s" if seen else ""
                raise AudioError(f"{path}: not readable as audio{where}, truncated or corrupt ({_reason(e)})") from e
            last = len(x) < frames_per_read
            x = to_mono(x)
            if not np.all(np.isfinite(x)):
                raise AudioError(f"{path}: audio contains NaN or infinite samples (near {seen / f.samplerate:.1f} s)")
            seen += len(x)
            y = stream.resample_chunk(x, last=last) if stream is not None else x
            for i in range(0, len(y), block):  # the resampler can hand back a little more than one block
                yield y[i : i + block]
            if last:
                break
        if seen == 0:
            raise AudioError(f"{path}: no audio samples (empty or zero-length file)")
