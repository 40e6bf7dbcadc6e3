"""Nothing lost on bad input: each bad file or folder gets one line naming it and the reason, the rest are
transcribed; and random bytes or manifest lines only ever raise the module's own error."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.audio import AudioError, load_audio, read_blocks
from asr.data import ManifestError, read_manifest
from asr.transcribe import main


def _missing(d: Path) -> Path:
    return d / "missing.wav"


def _empty(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


def _zero_length(d: Path) -> Path:
    sf.write(d / "zero.wav", np.zeros(0, np.float32), 16000)
    return d / "zero.wav"


def _truncated_wav(d: Path) -> Path:
    sf.write(d / "full.wav", np.zeros(16000, np.float32), 16000)
    data = (d / "full.wav").read_bytes()
    (d / "cut.wav").write_bytes(data[: len(data) // 2])
    return d / "cut.wav"


def _truncated_flac(d: Path) -> Path:
    noise = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    sf.write(d / "full.flac", noise, 16000)
    data = (d / "full.flac").read_bytes()
    (d / "cut.flac").write_bytes(data[: len(data) // 2])
    return d / "cut.flac"


def _corrupt(d: Path) -> Path:
    (d / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    return d / "corrupt.wav"


def _not_audio(d: Path) -> Path:
    (d / "notes.txt").write_text("these are not the samples you are looking for\n")
    return d / "notes.txt"


def _nan(d: Path) -> Path:
    wave = np.zeros(16000, np.float32)
    wave[100] = np.nan
    sf.write(d / "nan.wav", wave, 16000, subtype="FLOAT")
    return d / "nan.wav"


def _inf(d: Path) -> Path:
    wave = np.zeros(16000, np.float32)
    wave[-1] = np.inf
    sf.write(d / "inf.wav", wave, 16000, subtype="FLOAT")
    return d / "inf.wav"


def _nan_late_in_a_long_file(d: Path) -> Path:
    wave = (np.random.default_rng(0).standard_normal(16000 * 30) * 0.01).astype(np.float32)
    wave[16000 * 25] = np.nan
    sf.write(d / "long_nan.wav", wave, 16000, subtype="FLOAT")
    return d / "long_nan.wav"


def _folder_without_audio(d: Path) -> Path:
    (d / "no_audio" / "deeper").mkdir(parents=True)
    (d / "no_audio" / "deeper" / "readme.md").write_text("hello")
    return d / "no_audio"


BAD = {
    _missing: "no such file",
    _empty: "empty",
    _zero_length: "no audio samples",
    _truncated_wav: "truncated",
    _truncated_flac: "truncated or corrupt",
    _corrupt: "not readable as audio",
    _not_audio: "not readable as audio",
    _nan: "NaN or infinite",
    _inf: "NaN or infinite",
    _nan_late_in_a_long_file: "NaN or infinite",
    _folder_without_audio: "no audio files",
}


@pytest.mark.parametrize("make", list(BAD), ids=[f.__name__.strip("_") for f in BAD])
def test_a_bad_input_gets_one_line_and_the_others_are_done(make, tiny_checkpoint, clips, tmp_path, capsys):
    bad = make(tmp_path)
    paths = [clips[0].audio, str(bad), clips[1].audio]
    code = main(["--model", str(tiny_checkpoint), "--format", "jsonl", *paths])
    out, err = capsys.readouterr()
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"error: {bad}") and BAD[make] in line
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["audio"] for r in rows] == paths
    assert "text" in rows[0] and "text" in rows[2]
    assert rows[1] == {"audio": str(bad), "error": line.removeprefix("error: ")}


def test_a_folder_with_some_bad_files_reports_each(tiny_checkpoint, clips, tmp_path, capsys):
    (tmp_path / "good.flac").write_bytes(Path(clips[2].audio).read_bytes())
    _empty(tmp_path)
    _corrupt(tmp_path)
    out = tmp_path / "out"
    code = main(["--model", str(tiny_checkpoint), "--format", "srt", "--output-dir", str(out), str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert [line.split(":")[1].strip().split("/")[-1] for line in err] == ["corrupt.wav", "empty.wav"]
    assert [p.name for p in out.iterdir()] == ["good.srt"]


def _write_temp(data: bytes, suffix: str) -> Path:
    f = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    with f:
        f.write(data)
    return Path(f.name)


HEADERS = st.sampled_from([b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"RIFF\xff\xff\xff\x7fWAVEdata", b"fLaC", b"OggS",
                           b"FORM\x00\x00\x00\x00AIFF", b".snd", b"NIST_1A\n   1024\n", b"ID3\x03\x00"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=HEADERS, body=st.binary(max_size=3000), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".bin"]))
def test_random_bytes_only_ever_raise_audio_error(header, body, suffix):
    path = _write_temp(header + body, suffix)
    try:
        for read in (load_audio, lambda p: list(read_blocks(p, block_seconds=0.1))):
            try:
                samples = read(path)
            except AudioError as e:
                assert str(e).startswith(str(path))
            else:
                assert all(np.isfinite(np.concatenate(samples) if isinstance(samples, list) else samples))
    finally:
        path.unlink()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=4,
)
ROWS = st.fixed_dictionaries(
    {}, optional={"id": JSON_VALUES, "audio": JSON_VALUES | st.text(max_size=30), "duration": JSON_VALUES,
                  "text": JSON_VALUES, "extra": JSON_VALUES},
)
LINES = st.one_of(
    st.text(max_size=60),
    ROWS.map(json.dumps),
    st.tuples(ROWS.map(json.dumps), st.integers(1, 20)).map(lambda t: t[0][: -t[1]]),  # cut short
    st.integers(0, 2000).map(lambda n: "[" * n + "]" * n),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=5))
def test_random_manifest_lines_only_ever_raise_manifest_error(lines):
    path = _write_temp("\n".join(lines).encode("utf-8", "surrogatepass"), ".jsonl")
    try:
        utts = read_manifest(path)
    except ManifestError as e:
        assert str(e).startswith(str(path))
    else:
        assert all(u.duration > 0 and isinstance(u.text, str) for u in utts)
    finally:
        path.unlink()
