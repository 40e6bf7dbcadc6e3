"""asr.audio: every format and rate in, float32 mono 16 kHz out; bad files -> AudioError naming the path."""

from __future__ import annotations

import errno
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import SAMPLE_RATE, AudioError, audio_duration, load_audio, read_blocks


def sine(freq: float, seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    "name, fmt, subtype, tolerance",
    [
        ("a.wav", "WAV", "FLOAT", 0.0),
        ("a.wav", "WAV", "PCM_16", 1e-4),
        ("a.flac", "FLAC", "PCM_16", 1e-4),
        ("a.sph", "NIST", "PCM_16", 1e-4),
        ("a.ogg", "OGG", "VORBIS", None),  # lossy: checked by length and frequency only
    ],
)
def test_formats_load_as_float32_mono_16k(tmp_path, name, fmt, subtype, tolerance):
    x = sine(440.0, 1.0, SAMPLE_RATE)
    path = tmp_path / name
    sf.write(path, x, SAMPLE_RATE, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.shape == x.shape
    if tolerance is None:
        assert abs(peak_frequency(y) - 440.0) <= 2.0
        assert np.corrcoef(x, y)[0, 1] > 0.95
    else:
        np.testing.assert_allclose(y, x, atol=tolerance)
    assert audio_duration(path) == pytest.approx(1.0)


def test_stereo_is_the_mean_of_the_channels(tmp_path):
    left, right = sine(300.0, 0.5, SAMPLE_RATE), sine(1000.0, 0.5, SAMPLE_RATE, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    y = load_audio(path)
    assert y.shape == left.shape
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_to_16k(tmp_path, sr):
    path = tmp_path / f"{sr}.wav"
    sf.write(path, sine(1000.0, 1.0, sr), sr, subtype="FLOAT")
    y = load_audio(path)
    assert abs(len(y) - SAMPLE_RATE) <= 1  # 1 s stays 1 s
    assert peak_frequency(y) == pytest.approx(1000.0, abs=2.0)  # and 1 kHz stays 1 kHz
    assert y.dtype == np.float32


def test_load_at_another_rate(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(1000.0, 1.0, SAMPLE_RATE), SAMPLE_RATE)
    assert abs(len(load_audio(path, sample_rate=8000)) - 8000) <= 1


def _missing(tmp_path):
    return tmp_path / "missing.wav"


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _zero_frames(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    assert path.stat().st_size > 0  # a valid header and no samples
    return path


def _truncated(tmp_path):
    path = tmp_path / "truncated.flac"
    sf.write(path, sine(440.0, 1.0, SAMPLE_RATE), SAMPLE_RATE)
    path.write_bytes(path.read_bytes()[:30])  # cut inside the FLAC header
    return path


def _truncated_wav(tmp_path):
    path = tmp_path / "truncated.wav"
    sf.write(path, sine(440.0, 1.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:20000])  # the header promises 32000 bytes of samples
    return path


def _garbage(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    return path


def _non_finite(tmp_path, value: float, at: int) -> Path:
    path = tmp_path / f"{value}.wav"
    x = sine(440.0, 0.1, SAMPLE_RATE)
    x[at] = value
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")
    return path


def _nan(tmp_path):
    return _non_finite(tmp_path, np.nan, 100)


def _inf(tmp_path):
    return _non_finite(tmp_path, np.inf, 5)


def _directory(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make", [_missing, _empty, _zero_frames, _truncated, _truncated_wav, _garbage, _text, _nan, _inf, _directory],
    ids=lambda f: f.__name__.strip("_"),
)
def test_bad_files_raise_audio_error_starting_with_the_path(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(info.value).startswith(f"{path}: ")
    assert str(path) in str(info.value) and len(str(info.value)) > len(str(path)) + 5  # says why, too


def test_audio_error_takes_a_string_path(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(str(tmp_path / "nope.flac"))


def test_real_clip(clips):
    for u in clips:
        y = load_audio(u.audio)
        assert len(y) / SAMPLE_RATE == pytest.approx(u.duration, abs=0.01)
        assert 0.0 < np.abs(y).max() <= 1.0


def _with_data_size(path: Path, data_size: int) -> Path:
    """Rewrite a WAV's data-chunk size, and the RIFF size, as a streaming writer (espeak-ng --stdout) does."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data")
    raw[at + 4 : at + 8] = data_size.to_bytes(4, "little")
    raw[4:8] = min(data_size + at, 0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("data_size", [0, 0x7FFFF000, 0x7FFFFF00, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_a_placeholder_data_size_is_read_to_the_end(tmp_path, data_size, subtype, capsys):
    """espeak-ng's 0x7FFFF000; arecord's 0x80000000 into a pipe (its WAVE size limit; 0x7FFFFF00 in other versions);
    ffmpeg's 0xFFFFFFFF; 0 and 0x7FFFFFFF of other writers. arecord's was refused as truncated, and a 0 read as no
    audio at all (a review)."""
    x = sine(440.0, 1.3, SAMPLE_RATE)
    path = tmp_path / "stream.wav"
    sf.write(path, x, SAMPLE_RATE, subtype=subtype)
    _with_data_size(path, data_size)
    tolerance = 0.0 if subtype == "FLOAT" else 1e-4
    np.testing.assert_allclose(load_audio(path), x, atol=tolerance)  # every sample, and the right ones
    blocks = list(read_blocks(path, block_seconds=0.5))
    assert [len(b) for b in blocks] == [8000, 8000, 4800]
    np.testing.assert_allclose(np.concatenate(blocks), x, atol=tolerance)
    (line,) = capsys.readouterr().err.splitlines()  # once for the file, however often it is read
    assert line.startswith(f"warning: {path}: ") and "placeholder" in line and f"{data_size:#010X}"[2:] in line


def test_a_placeholder_wav_cut_short_inside_a_sample_keeps_the_whole_samples(tmp_path):
    path = tmp_path / "stream.wav"
    sf.write(path, sine(440.0, 0.5, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    _with_data_size(path, 0x7FFFF000)
    path.write_bytes(path.read_bytes() + b"\x01")  # half a sample at the end (a writer killed mid-write)
    assert len(load_audio(path)) == 8000


def test_a_wav_cut_short_with_an_honest_size_is_still_an_error(tmp_path):
    path = _truncated_wav(tmp_path)
    for read in (load_audio, lambda p: list(read_blocks(p))):
        with pytest.raises(AudioError, match=r"truncated: the header declares 32000 bytes of audio, the file holds"):
            read(path)
    _with_data_size(path, 0x7FFFF001)  # not a placeholder: one more than espeak's
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path)


def _refuse_to_open(monkeypatch, locked: Path) -> None:
    """Make asr.audio.files' open() fail on `locked` as the OS does for a user without read permission (the tests
    run as root, which ignores permission bits)."""
    import builtins

    import asr.audio.files

    def fake_open(file, *args, **kwargs):
        if Path(file) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(asr.audio.files, "open", fake_open, raising=False)


def _readers():
    return [load_audio, lambda p: list(read_blocks(p))]


@pytest.mark.parametrize("read", _readers(), ids=["load_audio", "read_blocks"])
def test_a_file_that_cannot_be_opened_says_permission_denied(tmp_path, monkeypatch, read):
    path = tmp_path / "locked.wav"
    sf.write(path, sine(440.0, 0.1, SAMPLE_RATE), SAMPLE_RATE)
    _refuse_to_open(monkeypatch, path)
    with pytest.raises(AudioError, match=rf"^{re.escape(str(path))}: permission denied"):
        read(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permission bits")
@pytest.mark.parametrize("read", _readers(), ids=["load_audio", "read_blocks"])
def test_a_file_without_read_permission_says_permission_denied(tmp_path, read):
    path = tmp_path / "locked.wav"
    sf.write(path, sine(440.0, 0.1, SAMPLE_RATE), SAMPLE_RATE)
    path.chmod(0)
    with pytest.raises(AudioError, match=rf"^{re.escape(str(path))}: permission denied"):
        read(path)


@pytest.mark.parametrize("read", _readers(), ids=["load_audio", "read_blocks"])
def test_a_symbolic_link_loop_is_named_as_such(tmp_path, read):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(AudioError, match=rf"^{re.escape(str(a))}: symbolic link loop"):
        read(a)


M4A_HEADER = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64)  # an MP4 'ftyp' box, no audio
WEBM_HEADER = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(64)  # an EBML (Matroska/WebM) header
WMA_HEADER = b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c" + bytes(64)  # the ASF GUID


@pytest.mark.parametrize("name, header, kind", [
    ("talk.m4a", M4A_HEADER, "MP4"), ("talk.webm", WEBM_HEADER, "WebM"), ("talk.wma", WMA_HEADER, "WMA"),
    ("renamed.wav", M4A_HEADER, "MP4"),  # known by its first bytes, whatever its name
])
@pytest.mark.parametrize("read", _readers(), ids=["load_audio", "read_blocks"])
def test_a_format_libsndfile_cannot_read_says_what_is_supported_and_how_to_convert(tmp_path, name, header, kind, read,
                                                                                     no_ffmpeg):
    """Without ffmpeg on PATH (with it: tests/test_audio_ffmpeg.py)."""
    path = tmp_path / name
    path.write_bytes(header)
    with pytest.raises(AudioError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert kind in message and ".flac" in message and ".wav" in message  # what it is, and what would do
    assert f"ffmpeg -i {path} -ar 16000 -ac 1 " in message


def _corrupt_mp3(path: Path) -> Path:
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + np.random.default_rng(1).integers(0, 256, 20000, np.uint8).tobytes())
    return path


ROOT = Path(__file__).resolve().parents[1]


def in_a_process(code: str, shell_redirect: str = "") -> subprocess.CompletedProcess:
    """`code` run by a fresh Python (one thread, as transcribe's reads are), its output captured."""
    script = f"{sys.executable} -c {shlex.quote(code)} {shell_redirect}"
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_corrupt_mp3_gives_one_line_without_libmpg123s_notes(tmp_path):
    """libsndfile hands unclaimed data to libmpg123, which wrote "Note: Illegal Audio-MPEG-Header ..." and more to
    the terminal, and libsndfile then said the (existing) file did not exist."""
    path = _corrupt_mp3(tmp_path / "broken.mp3")
    done = in_a_process("import sys\nfrom asr.audio import AudioError, load_audio\nfrom asr.audio.pipes import "
                        f"read_stream\nfor read in (load_audio, read_stream):\n    try:\n        read({str(path)!r})\n"
                        "    except AudioError as e:\n        print(e, file=sys.stderr)\n")
    assert done.stderr.splitlines() == [
        f"{path}: not readable as audio (no audio format that libsndfile recognises, or corrupt data)",
        f"{path}: not readable as audio (Format not recognised.); convert it first, e.g. ffmpeg -i IN -ar 16000 "
        "-ac 1 OUT.wav"], done.stderr


def test_a_process_without_stderr_still_reads_mp3(tmp_path):
    """Started with file descriptor 2 closed (a daemon's `2>&-`), Python has no sys.stderr: holding stderr failed
    every MP3 read (a review)."""
    good, broken = tmp_path / "good.mp3", _corrupt_mp3(tmp_path / "broken.mp3")
    sf.write(good, np.zeros(16000, np.float32), 16000, format="MP3")
    code = ("from asr.audio import AudioError, load_audio\n"
            f"print(len(load_audio({str(good)!r})))\n"
            f"try:\n    load_audio({str(broken)!r})\nexcept AudioError as e:\n    print(e)\n")
    done = in_a_process(code, "2>&-")
    lines = done.stdout.splitlines()
    assert lines[0].isdigit() and lines[1].endswith("(no audio format that libsndfile recognises, or corrupt data)")


def test_a_placeholder_zero_wav_leaves_no_file_open(tmp_path, monkeypatch):
    """The reader that puts a header's 0 right was closed only when Python freed it (a SoundFile leaves a file
    object it was given open; a review): read whole, in part, or refused by libsndfile (the refusal's traceback
    holding it), nothing of it stays open."""
    import gc
    import os

    def open_on(path: Path) -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))

    path = tmp_path / "stream.wav"
    sf.write(path, sine(440.0, 1.3, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    _with_data_size(path, 0)
    gc.disable()
    try:
        load_audio(path)
        blocks = read_blocks(path, block_seconds=0.5)
        next(blocks)
        blocks.close()
        assert open_on(path) == 0

        def refuse(self, *args, **kwargs):
            raise RuntimeError("Error opening <_io.BufferedReader>: Format not recognised.")

        monkeypatch.setattr(sf.SoundFile, "__init__", refuse)
        with pytest.raises(AudioError, match="not readable as audio") as refused:
            load_audio(path)
        assert refused.value is not None and open_on(path) == 0
    finally:
        gc.enable()


def test_an_empty_data_chunk_followed_by_metadata_is_no_audio_not_noise(tmp_path):
    """A 0 in the data chunk's size is a streaming writer's placeholder only where audio follows: an empty data chunk
    with a LIST chunk after it was read as PCM (the metadata's bytes as noise; a review). From a file and a pipe."""
    import os

    from asr.audio import read_stream

    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE, subtype="PCM_16")
    info = b"INFOISFT" + (14).to_bytes(4, "little") + b"some encoder\\0\\0"
    path.write_bytes(path.read_bytes() + b"LIST" + len(info).to_bytes(4, "little") + info)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path)
    read, write = os.pipe()
    os.write(write, path.read_bytes())
    os.close(write)
    with pytest.raises(AudioError):
        read_stream(f"/dev/fd/{read}")
    os.close(read)


def test_a_warning_naming_a_file_with_a_tab_or_line_break_is_one_line(tmp_path, capsys):
    """error: lines write a name's tab and line breaks as \\t, \\n, \\r; the audio's warnings printed them as they are
    (a placeholder size in 'new<LF>line.wav' gave a warning of two lines)."""
    path = tmp_path / "new\nline\t.wav"
    sf.write(path, sine(440.0, 0.5, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    _with_data_size(path, 0xFFFFFFFF)
    load_audio(path)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"warning: {tmp_path}/new\\nline\\t.wav: "), err
