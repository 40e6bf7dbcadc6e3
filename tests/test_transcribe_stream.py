"""python -m asr.transcribe --stream: files, stdin (WAV at any rate, raw PCM) and pipes, chunk by chunk."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import soundfile as sf

from asr.audio import load_audio, resample
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.decoding import Decoder, DecodingConfig
from asr.streaming import Final, Transcriber
from asr.audio import PcmDecoder, audio_blocks
from asr.transcribe import main


def greedy_text(model_path, samples) -> str:
    rec = load_model(model_path)
    events = Transcriber(rec, Decoder(DecodingConfig(), rec.vocab)).events([samples])
    return " ".join(e.text for e in events if isinstance(e, Final) and e.text)


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(["--threads", "1", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_file_streams_to_the_transcript(stream_model, clips, capsys):
    code, out, err = run(["--stream", "--model", str(stream_model), "--decoder", "greedy", clips[0].audio], capsys)
    assert code == 0 and out.strip() == greedy_text(stream_model, load_audio(clips[0].audio)) != ""


def test_jsonl_prints_partials_and_a_result_in_voskss_shapes(stream_model, clips, capsys):
    code, out, _ = run(["--stream", "--model", str(stream_model), "--format", "jsonl", clips[0].audio], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and all(line["audio"] == clips[0].audio for line in lines)
    assert {"partial"} <= set(lines[0]) and set(lines[-1]) == {"result", "text", "audio"}
    assert [w["word"] for w in lines[-1]["result"]] == lines[-1]["text"].split()


@pytest.mark.parametrize("kind", ["wav16k", "wav44k", "stereo", "raw"])
def test_stdin_wav_at_any_rate_and_raw_pcm(stream_model, clips, capsys, monkeypatch, kind):
    x = load_audio(clips[0].audio)
    data = {"wav16k": lambda: wav_bytes(x, 16000), "wav44k": lambda: wav_bytes(resample(x, 16000, 44100), 44100),
            "stereo": lambda: wav_bytes(np.stack([x, x], 1), 16000),
            "raw": lambda: (x * 32767).astype("<i2").tobytes()}[kind]()
    code, out, err = run(["--stream", "--model", str(stream_model), "--decoder", "greedy", "-"], capsys, data,
                         monkeypatch)
    expected = greedy_text(stream_model, x)
    assert code == 0, err
    assert out.split() == expected.split()  # at 44.1 kHz too: resampling loses nothing the model uses
    assert ("read as raw 16-bit" in err) == (kind == "raw")


@pytest.mark.parametrize("data,said", [
    (b"", "no audio (empty input)"),
    (b"hello, this is text and not audio at all\n" * 10, "text, not audio"),
    (b"fLaC" + bytes(400), "FLAC audio"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00data"
     b"\x00\x00\x00\x00", "not plain PCM or float"),  # mu-law
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00",
     "0 Hz"),
])
def test_bad_stdin_is_one_error_line(stream_model, capsys, monkeypatch, data, said):
    code, out, err = run(["--stream", "--model", str(stream_model), "-"], capsys, data, monkeypatch)
    assert code == 1 and out == "" and said in err and err.startswith("error: stdin")


def test_a_bad_file_does_not_stop_the_others(stream_model, clips, capsys, tmp_path):
    code, out, err = run(["--stream", "--model", str(stream_model), "--decoder", "greedy",
                          str(tmp_path / "missing.wav"), clips[0].audio], capsys)
    assert code == 1 and "missing.wav" in err and out.startswith(f"{clips[0].audio}\t")


def test_a_full_context_model_cannot_stream(capsys, clips):
    code, out, err = run(["--stream", "--model", str(DEFAULT_MODEL), clips[0].audio], capsys)
    assert code == 2 and "full-context model cannot stream" in err


@pytest.mark.parametrize("flags, said", [
    (["--format", "srt"], "error: --stream prints text or jsonl as it goes, not --format srt\n"),
    (["--output-dir", "out"], "error: --stream prints to stdout as it goes, not into --output-dir (redirect it: > "
                              "out.txt)\n"),
])
def test_stream_prints_text_or_jsonl_only(stream_model, clips, capsys, flags, said):
    """The line named the format when --output-dir was at fault ("not --format text", text being allowed; a review)."""
    code, _, err = run(["--stream", "--model", str(stream_model), *flags, clips[0].audio], capsys)
    assert code == 2 and err == said


def test_a_folder_streams_each_audio_file_in_it(stream_model, clips, capsys, tmp_path):
    """--help says the inputs may be folders; --stream said "is a directory, not an audio file" (a review)."""
    import shutil

    for name, u in (("b.flac", clips[1]), ("a.flac", clips[0])):
        shutil.copy(u.audio, tmp_path / name)
    code, out, err = run(["--stream", "--model", str(stream_model), "--decoder", "greedy", str(tmp_path)], capsys)
    assert code == 0 and err == ""
    assert out.splitlines() == [f"{tmp_path / 'a.flac'}\t{greedy_text(stream_model, load_audio(clips[0].audio))}",
                                f"{tmp_path / 'b.flac'}\t{greedy_text(stream_model, load_audio(clips[1].audio))}"]


def test_realtime_paces_the_blocks(clips, tmp_path):
    path = tmp_path / "one_second.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    start = time.monotonic()
    blocks = list(audio_blocks(str(path), block_s=0.1, realtime=True))
    assert time.monotonic() - start >= 0.95 and sum(map(len, blocks)) == 16000
    start = time.monotonic()
    list(audio_blocks(str(path), block_s=0.1))
    assert time.monotonic() - start < 0.5


def test_pcm_decoder_keeps_odd_bytes_for_the_next_piece_and_resamples():
    x = (np.sin(np.arange(8000) / 5) * 10000).astype("<i2")
    data = x.tobytes()
    pcm = PcmDecoder(16000)
    pieces = [pcm.feed(data[i : i + 333]) for i in range(0, len(data), 333)]
    assert np.array_equal(np.concatenate(pieces), x.astype(np.float32) / 32768)
    for rate in (8000, 44100):  # resampled as it comes, to the samples of one resampling of the whole
        other = PcmDecoder(rate)
        out = np.concatenate([other.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)] + [other.finish()])
        np.testing.assert_allclose(out, resample(x.astype(np.float32) / 32768, rate, 16000), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="0 Hz"):
        PcmDecoder(0)
