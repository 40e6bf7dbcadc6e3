"""Formats libsndfile cannot read (MP4/M4A with AAC or ALAC, raw AAC, WebM/Matroska, WMA/ASF, AMR), decoded by
ffmpeg where it is on PATH, as whisper reads every format: a child process writes float32 mono at 16 kHz to a
pipe, read block by block and at most MAX_SECONDS of it (ffmpeg resamples and mixes the channels down; the
samples are checked as every door checks them). Without ffmpeg such a file is refused with the command that
converts it.

    if needs_ffmpeg(path): blocks = ffmpeg_blocks(path, 16000 * 30)    # AudioError naming the path on failure
    seconds, rate, channels = ffprobe_header(path)                       # what its header says, without decoding
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.audio.header import AUDIO_EXTENSIONS, SNIFF_BYTES, unreadable_kind
from asr.audio.samples import MAX_SECONDS, SAMPLE_RATE, AudioError, check_samples

FFMPEG = "ffmpeg"  # the program looked up on PATH
FFPROBE = "ffprobe"  # its header reader, which comes with it
BYTES_PER_SAMPLE = 4  # float32 from ffmpeg's -f f32le
PROBE_SECONDS = 60  # ffprobe's time to read a header at most
STDERR_BYTES = 1 << 16  # the end of ffmpeg's stderr kept for the error message (it logs errors only)
# What ffmpeg may open: the demuxers of the formats it reads here (mov: MP4/M4A/ALAC, aac and loas: raw AAC,
# matroska: WebM and MKV, asf: WMA, amr, caf; mp3, for an MP3 under one of their names) and local files only. Left to
# probe, ffmpeg also takes a text file under an audio name as a playlist (hls, concat) and reads the files it names:
# an upload could have the server transcribe its own files.
INPUT_LIMITS = ["-format_whitelist", "mov,aac,loas,matroska,asf,amr,caf,mp3", "-protocol_whitelist", "file"]


def have_ffmpeg() -> bool:
    return shutil.which(FFMPEG) is not None


def needs_ffmpeg(path: Path) -> str | None:
    """The format of a file libsndfile cannot read, in words (by its first bytes, else by its extension), or None
    for any other file (those libsndfile reads, and those nothing recognises: libsndfile says why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return None
    return unreadable_kind(path, head)


def refusal(path: Path, kind: str) -> AudioError:
    """The error for a file that needs ffmpeg where there is none: what it is, what is read, the command."""
    out = path.with_name(f"{path.stem}-16k.wav")
    return AudioError(f"{path}: {kind} audio cannot be read without ffmpeg (readable: {' '.join(AUDIO_EXTENSIONS)}); "
                      f"install ffmpeg, or convert it first, e.g. ffmpeg -i {shlex.quote(str(path))} -ar 16000 -ac 1 "
                      f"{shlex.quote(str(out))}")


def ffmpeg_command(path: Path, sample_rate: int = SAMPLE_RATE) -> list[str]:
    """ffmpeg's arguments: the file's first audio stream -> float32 little-endian mono at `sample_rate` on stdout.
    The path is given as a file's ("file:"), so that a name such as "take:1.m4a" is not read as a protocol; only
    INPUT_LIMITS' demuxers read it."""
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", *INPUT_LIMITS, "-i", f"file:{path}",
            "-map", "0:a:0", "-vn", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]


def ffmpeg_blocks(path: str | Path, block: int, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """(n,) float32 blocks, 0 < n <= `block` samples at `sample_rate`, of a file ffmpeg decodes. Raises AudioError
    naming the path (with ffmpeg's last line of error) when ffmpeg fails, the audio passes MAX_SECONDS, its samples
    are not finite or far past full scale, or it holds none; an error can come after some blocks. Without ffmpeg:
    AudioError, the command that converts the file. The child is ended if the reader stops early."""
    path = Path(path)
    kind = needs_ffmpeg(path) or path.suffix[1:].upper()
    if not have_ffmpeg():
        raise refusal(path, kind)
    limit = int(MAX_SECONDS * sample_rate)
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(ffmpeg_command(path, sample_rate), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=stderr)
        try:
            seen = 0
            while data := proc.stdout.read(block * BYTES_PER_SAMPLE):
                x = np.frombuffer(data[: len(data) // BYTES_PER_SAMPLE * BYTES_PER_SAMPLE], "<f4").copy()  # writable
                if seen + len(x) > limit:
                    raise AudioError(f"{path}: longer than the {MAX_SECONDS:.0f} s limit")
                check_samples(x, str(path), seen / sample_rate, sample_rate)
                seen += len(x)
                yield x
            code = proc.wait()
        finally:
            if proc.poll() is None:  # the reader stopped early, or the audio is too long
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if code != 0:
            raise AudioError(f"{path}: not readable as {kind} audio by ffmpeg ({last_line(stderr, path, code)})")
    if seen == 0:
        raise AudioError(f"{path}: no audio samples (ffmpeg decoded none)")


def ffprobe_header(path: Path, count: bool = True) -> tuple[float | None, int, int]:
    """(seconds, sample rate, channels) of the file's first audio stream as its header says (ffprobe reads it
    without decoding); a header that gives no duration (WebM written by a browser or to a pipe) has the decoded
    samples counted (count=False: None). AudioError naming the path where it cannot be read."""
    kind = needs_ffmpeg(path) or "this"
    if not have_ffmpeg():  # what cannot be decoded here is refused as it would be
        raise refusal(path, kind)
    if shutil.which(FFPROBE) is None:
        raise AudioError(f"{path}: {kind} audio needs ffprobe, which comes with ffmpeg, to read its header; it is "
                         "not on PATH")
    cmd = [FFPROBE, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels,duration:"
           "format=duration", "-of", "json", *INPUT_LIMITS, f"file:{path}"]
    try:
        done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=PROBE_SECONDS)
        found = json.loads(done.stdout or b"{}")
    except subprocess.TimeoutExpired:
        raise AudioError(f"{path}: ffprobe did not read its header within {PROBE_SECONDS} s") from None
    except (OSError, ValueError) as e:
        raise AudioError(f"{path}: ffprobe could not read its header ({e})") from e
    streams = found.get("streams") or [{}]
    try:
        rate, channels = int(streams[0]["sample_rate"]), int(streams[0]["channels"])
    except (KeyError, ValueError, TypeError):
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio stream"]
        raise AudioError(f"{path}: not readable as {kind} audio by ffprobe ({why[0].removeprefix(f'file:{path}: ')})")
    try:
        seconds = float(streams[0].get("duration") or (found.get("format") or {})["duration"])
    except (KeyError, ValueError, TypeError):  # no duration in the header: count the samples
        seconds = sum(len(x) for x in ffmpeg_blocks(path, 30 * SAMPLE_RATE)) / SAMPLE_RATE if count else None
    return seconds, rate, channels


def last_line(stderr, path: Path, code: int) -> str:
    """The last line ffmpeg wrote on stderr, without the path it starts with; else its exit status."""
    stderr.seek(max(0, stderr.seek(0, 2) - STDERR_BYTES))
    lines = stderr.read().decode(errors="replace").strip().splitlines()
    if not lines:
        return f"ffmpeg exited with status {code}"
    if refused := [line for line in lines if "not on whitelist" in line]:  # "[hls @ 0x...] Format not on ..."
        return f"it is {refused[0].split(' @ ')[0].lstrip('[')}, not an audio format read here"
    return lines[-1].removeprefix(f"file:{path}: ")
