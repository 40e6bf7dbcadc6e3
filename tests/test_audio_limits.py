"""asr.audio's one header parser and one set of limits: a broken or absurd WAV gets the same one-line error from
every door (a file, --stream of a file, --stream of stdin, stdin read whole; the server in test_serve_errors.py)."""

from __future__ import annotations

import io
import os
import struct
import sys

import numpy as np
import pytest

from asr.audio import (MAX_RATE, MIN_RATE, AudioError, PcmDecoder, audio_duration, audio_info, load_audio,
                       read_blocks, read_stream, read_wav_header)
from asr.transcribe import main


def wav(samples: bytes, tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16,
        fmt_size: int = 16) -> bytes:
    """A RIFF/WAVE file's bytes, written field by field (soundfile would refuse to write the broken ones)."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)[:fmt_size]
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


NOISE = (np.random.default_rng(0).standard_normal(8000) * 3000).astype("<i2")  # 0.5 s at 16 kHz


def huge_float() -> bytes:
    x = NOISE.astype("<f4") / 32768
    x[4000] = 3e38  # finite, but no audio: its power overflows float32 in the features
    return wav(x.tobytes(), tag=3, bits=32)


BAD = {  # name -> (the file's bytes, what the one error line must say)
    "short_fmt": (wav(NOISE.tobytes(), fmt_size=8), "the WAV fmt chunk is 8 bytes; it needs at least 16"),
    "huge_float": (huge_float(), "samples reach 3e+38"),
    "1_hz": (wav(NOISE.tobytes(), rate=1),
             f"the WAV header says 1 Hz; sample rates of {MIN_RATE}..{MAX_RATE} Hz are read"),
    "0_channels": (wav(NOISE.tobytes(), channels=0), "the WAV header says 0 channels; 1..64 channels are read"),
}


def pipe_of(data: bytes) -> int:
    """The read end of an os.pipe() holding `data` (written and closed)."""
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def one_error_line(code: int, out: str, err: str, name: str, said: str) -> None:
    assert code == 1 and out == "", (code, out, err)
    assert err.startswith(f"error: {name}: ") and said in err and err.count("\n") == 1, err


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_wav_file_is_one_line_from_transcribe(bad, tiny_checkpoint, tmp_path, capsys):
    data, said = BAD[bad]
    path = tmp_path / f"{bad}.wav"
    path.write_bytes(data)
    code = main(["--threads", "1", "--model", str(tiny_checkpoint), str(path)])
    one_error_line(code, *capsys.readouterr(), str(path), said)


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_wav_file_is_one_line_from_stream(bad, stream_model, tmp_path, capsys):
    data, said = BAD[bad]
    path = tmp_path / f"{bad}.wav"
    path.write_bytes(data)
    code = main(["--threads", "1", "--stream", "--model", str(stream_model), str(path)])
    one_error_line(code, *capsys.readouterr(), str(path), said)


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_wav_on_stdin_is_one_line_from_stream(bad, stream_model, monkeypatch, capsys):
    data, said = BAD[bad]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["--threads", "1", "--stream", "--model", str(stream_model), "-"])
    one_error_line(code, *capsys.readouterr(), "stdin", said)


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_wav_on_stdin_is_one_line_read_whole(bad, tiny_checkpoint, monkeypatch, capsys):
    data, said = BAD[bad]
    monkeypatch.setattr(sys, "stdin", os.fdopen(pipe_of(data), "r"))
    code = main(["--threads", "1", "--model", str(tiny_checkpoint), "-"])
    one_error_line(code, *capsys.readouterr(), "-", said)


@pytest.mark.parametrize("rate", [MIN_RATE - 1, MAX_RATE + 1])
def test_the_rate_limits_are_the_same_for_files_pipes_and_pcm(rate, tmp_path):
    data = wav(NOISE.tobytes(), rate=rate)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    for read in (load_audio, lambda p: list(read_blocks(p)), lambda p: read_stream(f"/dev/fd/{pipe_of(data)}")):
        with pytest.raises(AudioError, match=f"{rate} Hz; sample rates of {MIN_RATE}..{MAX_RATE}"):
            read(path)
    with pytest.raises(ValueError, match=f"{rate} Hz; sample rates of {MIN_RATE}..{MAX_RATE}"):
        PcmDecoder(rate)
    PcmDecoder(MIN_RATE), PcmDecoder(MAX_RATE)  # the limits themselves are fine


def test_the_header_parser_reads_what_libsndfile_reads(tmp_path):
    import soundfile as sf

    path = tmp_path / "x.wav"
    sf.write(path, np.zeros((100, 2), np.float32), 22050, subtype="FLOAT")
    with open(path, "rb") as f:
        header = read_wav_header(f.read, "x.wav")
        assert f.read() == np.zeros((100, 2), "<f4").tobytes()  # left at the first byte of the audio
    assert (header.rate, header.channels, header.format_tag, header.bits, header.data_size) == (22050, 2, 3, 32, 800)
    assert header.data_offset == path.stat().st_size - 800


@pytest.mark.parametrize("encoding, dtype, scale", [("s16", "<i2", 2**15), ("s32", "<i4", 2**31), ("f32", "<f4", 1),
                                                    ("f64", "<f8", 1), ("u8", "u1", None), ("s24", None, None)])
def test_pcm_of_every_encoding_decodes_to_the_same_samples(encoding, dtype, scale):
    x = np.sin(np.arange(1600) / 7).astype(np.float32) * 0.5
    if encoding == "u8":
        data, tolerance = (np.round(x * 128) + 128).astype("u1").tobytes(), 1 / 128
    elif encoding == "s24":
        ints = np.round(x * 2**23).astype("<i4")
        data, tolerance = ints.view("u1").reshape(-1, 4)[:, :3].tobytes(), 2**-23
    else:
        data, tolerance = (x * scale).astype(dtype).tobytes(), 2**-15
    pcm = PcmDecoder(16000, 1, encoding)
    out = np.concatenate([pcm.feed(data[i : i + 101]) for i in range(0, len(data), 101)])  # pieces cut mid-sample
    np.testing.assert_allclose(out, x, atol=tolerance)


def test_float_pcm_past_the_limits_is_refused_where_it_comes():
    pcm = PcmDecoder(16000, 2, "f32", name="mic")
    pcm.feed(np.zeros((100, 2), "<f4").tobytes())
    with pytest.raises(AudioError, match=r"^mic: samples reach 2e\+03 \(at 0.0 s\)"):
        pcm.feed(np.full((10, 2), 2000.0, "<f4").tobytes())


@pytest.mark.parametrize("read", [load_audio, lambda path: list(read_blocks(path))], ids=["whole", "blocks"])
@pytest.mark.parametrize("bad_at, value, said", [(12.25, np.nan, "NaN or infinite samples"),
                                                 (29.5, 3e38, "samples reach 3e+38"),
                                                 (35.0, np.inf, "NaN or infinite samples")])
def test_a_bad_sample_is_named_at_its_own_time(tmp_path, read, bad_at, value, said):
    """Before: the time of the ~30 s block that held it, 0.0 s for a bad sample anywhere in the first 30 s."""
    x = np.zeros(40 * 16000, "<f4")
    x[int(bad_at * 16000)] = value
    path = tmp_path / "bad.wav"
    path.write_bytes(wav(x.tobytes(), tag=3, bits=32))
    with pytest.raises(AudioError) as e:
        read(path)
    assert said in str(e.value) and f"(at {bad_at:.1f} s)" in str(e.value), str(e.value)


@pytest.mark.parametrize("read", [load_audio, lambda path: list(read_blocks(path)), audio_info, audio_duration],
                         ids=["whole", "blocks", "header", "duration"])
def test_an_empty_file_is_said_to_be_empty_by_every_reader(tmp_path, read):
    """Before: a 0-byte .wav in a manifest (read whole) was "not readable as audio (Format not recognised.)", while
    transcribe and the server (read in blocks) said "empty file (0 bytes)"."""
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=rf"^{path}: empty file \(0 bytes\)$"):
        read(path)
