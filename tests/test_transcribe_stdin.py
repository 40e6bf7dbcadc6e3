"""asr.transcribe reads stdin ("-"), /dev/stdin, pipes and process substitution as streams, through real pipes:
commands run in parallel (each imports torch, ~2 s) with the shipped model, and os.pipe() in this process."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, load_audio
from asr.audio import audio_blocks, read_stream
from asr.checkpoint import DEFAULT_MODEL
from asr.longform import expand_inputs, transcribe_paths
from asr.transcribe import load, main, parse_args

REPO = Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-m", "asr.transcribe", "--threads", "1"]  # 8 at once: one thread each


def run_all(jobs: dict[str, tuple[list[str], bytes | Path | None]], cwd: Path) -> dict[str, tuple[int, str, str]]:
    """Start every command at once; a bytes input goes down a pipe, a Path is opened as stdin.
    -> {name: (exit status, stdout, stderr)}."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    procs = {}
    for name, (cmd, given) in jobs.items():
        stdin = open(given, "rb") if isinstance(given, Path) else subprocess.PIPE if given is not None else None
        procs[name] = (subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                        env=env), given)
        if isinstance(given, Path):
            stdin.close()  # the child has its own copy
    results = {}
    for name, (proc, given) in procs.items():
        out, err = proc.communicate(given if isinstance(given, bytes) else None, timeout=120)
        results[name] = (proc.returncode, out.decode(), err.decode())
    return results


def test_stdin_pipes_and_process_substitution_read_as_the_file_is(clips, tmp_path):
    clip = Path(next(u.audio for u in clips if u.id == "cen7-mjgm-b"))  # "six eight three three oh seven five"
    raw = (np.clip(load_audio(clip), -1, 1) * 32767).astype("<i2").tobytes()  # s16le 16 kHz mono, no header
    jobs = {
        "pipe": ([*CMD, "-", "--format", "jsonl"], clip.read_bytes()),
        "raw": ([*CMD, "-"], raw),
        "dev_stdin": ([*CMD, "/dev/stdin"], clip),
        "substitution": (["bash", "-c", shlex.join(CMD) + f" <(cat {shlex.quote(str(clip))})"], None),
    }
    done = run_all(jobs, tmp_path)
    rec, _, decoder, _ = load(parse_args([str(clip), "--model", str(DEFAULT_MODEL)]))  # the CLI's default decoding
    (result,) = transcribe_paths(rec, [str(clip)], decoder=decoder)
    text = result.text + "\n"
    code, out, err = done["pipe"]
    row = json.loads(out)
    assert code == 0 and err == "" and row["audio"] == "-" and row["text"] + "\n" == text
    assert row["duration"] == 2.5
    assert done["raw"][:2] == (0, text)
    assert done["raw"][2].splitlines() == ["warning: -: no audio header that libsndfile knows: read as raw "
                                           "16-bit little-endian PCM at 16 kHz mono"]
    assert done["dev_stdin"] == (0, text, "")
    assert done["substitution"][:2] == (0, text), done["substitution"][2]


def pipe_of(data: bytes) -> int:
    """The read end of an os.pipe() holding `data` (written and closed)."""
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def test_stdin_is_named_stdin_in_an_output_folder_and_empty_stdin_is_one_line(tiny_checkpoint, clips, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", os.fdopen(pipe_of(Path(clips[0].audio).read_bytes()), "r"))
    assert main(["-", "--model", str(tiny_checkpoint), "--output-dir", str(tmp_path / "out")]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["stdin.txt"]
    monkeypatch.setattr(sys, "stdin", os.fdopen(pipe_of(b""), "r"))
    assert main(["-", "--model", str(tiny_checkpoint)]) == 1
    assert capsys.readouterr() == ("", "error: -: no audio (empty input)\n")


def test_a_pipe_is_read_as_a_stream_not_as_an_empty_file(clips, tmp_path):
    fd = pipe_of(Path(clips[0].audio).read_bytes())
    (inp,) = expand_inputs([f"/dev/fd/{fd}"], tmp_path)  # what <(...) gives
    os.close(fd)
    assert inp.error is None and inp.given == f"/dev/fd/{fd}" and Path(inp.path).parent == tmp_path
    assert np.allclose(load_audio(inp.path), load_audio(clips[0].audio), atol=1e-6)
    fd = pipe_of(b"RIFF, but not a WAV file")
    with pytest.raises(AudioError, match=rf"^/dev/fd/{fd}: not a WAV file"):
        read_stream(f"/dev/fd/{fd}")
    os.close(fd)


@pytest.mark.parametrize("data, message", [
    (b"hello, this is not audio\n" * 20, "text, not audio"),
    (b"\x00\x00\x00\x20ftypM4A " + bytes(64),
     r"MP4/M4A \(AAC or ALAC\) audio cannot be read without ffmpeg; install ffmpeg, or convert it first"),
    (b"\x01\x02\x03", "too short for raw"),
])
def test_a_stream_that_is_not_audio_is_one_line_not_an_empty_transcript(data, message, no_ffmpeg):
    """Without ffmpeg on PATH (with it, an M4A stream is read: tests/test_audio_ffmpeg.py)."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    with pytest.raises(AudioError, match=message) as info:
        read_stream(f"/dev/fd/{read}")
    os.close(read)
    assert "\n" not in str(info.value) and "BytesIO" not in str(info.value)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_wav_cut_short_in_a_pipe_is_refused_as_the_file_is(clips, stream):
    """A header that declares more audio than comes is a cut-short file, from a pipe as from disk (a streaming
    writer's placeholder size is not: tests/test_audio.py)."""
    buf = io.BytesIO()
    sf.write(buf, load_audio(clips[2].audio), 16000, format="WAV", subtype="PCM_16")
    read, write = os.pipe()
    os.write(write, buf.getvalue()[: len(buf.getvalue()) // 2])
    os.close(write)
    message = r"truncated: the header declares \d+ bytes of audio, the (stream|file) holds \d+"
    with pytest.raises(AudioError, match=rf"^/dev/fd/{read}: {message}"):
        list(audio_blocks(f"/dev/fd/{read}", 0.1)) if stream else read_stream(f"/dev/fd/{read}")
    os.close(read)


@pytest.mark.parametrize("data_size", [0, 0x80000000, 0x7FFFFFFF])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_streaming_writers_placeholder_size_in_a_pipe_is_read_to_its_end(clips, data_size, stream):
    """`arecord -f S16_LE -r 16000 | python -m asr.transcribe --stream -` (the README's microphone line): arecord's
    header into a pipe declares 0x80000000 bytes, which was refused as truncated once the pipe closed, losing the
    last utterance; a 0 was read as no audio when the pipe was read whole."""
    wave = load_audio(clips[2].audio)
    buf = io.BytesIO()
    sf.write(buf, wave, 16000, format="WAV", subtype="PCM_16")
    raw = bytearray(buf.getvalue())
    at = raw.index(b"data")
    raw[at + 4 : at + 8], raw[4:8] = data_size.to_bytes(4, "little"), ((data_size + at) % 2**32).to_bytes(4, "little")
    read, write = os.pipe()
    os.write(write, bytes(raw))
    os.close(write)
    got = np.concatenate(list(audio_blocks(f"/dev/fd/{read}", 0.1))) if stream else read_stream(f"/dev/fd/{read}")
    os.close(read)
    np.testing.assert_allclose(got, wave, atol=1e-4)


def test_an_mp3_stream_is_decoded_not_read_as_raw_pcm(clips):
    wave = load_audio(clips[2].audio)  # "STOP", 0.8 s
    encoded = io.BytesIO()
    sf.write(encoded, wave, 16000, format="MP3")
    read, write = os.pipe()
    os.write(write, encoded.getvalue())
    os.close(write)
    decoded = read_stream(f"/dev/fd/{read}")
    os.close(read)
    assert abs(len(decoded) - len(wave)) < 0.05 * 16000  # seconds of audio, not half a byte count


def test_a_format_that_needs_an_output_folder_is_refused_before_stdin_is_read(monkeypatch, capsys):
    def no_reading(*args, **kwargs):
        raise AssertionError("stdin was read")

    monkeypatch.setattr("asr.longform.pipeline.read_stream", no_reading)
    assert main(["--format", "all", "-"]) == 2
    assert "--format all writes files: give --output-dir" in capsys.readouterr().err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_stereo_from_a_pipe_is_the_mean_of_its_channels(clips, stream_model, monkeypatch, capsys, stream):
    """A 2-channel WAV piped to `-` (read whole) and to `--stream -` is heard as the mean of its channels: with
    channels x + y and x - y it is heard as x alone, and not as channel 0 (x + y), which says something else."""
    x = (load_audio(clips[2].audio) * 32768).astype(np.int16)  # "STOP", 0.8 s: a stereo WAV of it fits a pipe
    y = (load_audio(clips[4].audio)[8000 : 8000 + len(x)] * 32768).astype(np.int16)  # speech from another clip
    flags = ["--stream", "--model", str(stream_model)] if stream else []

    def heard(samples: np.ndarray) -> str:
        buffer = io.BytesIO()
        sf.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
        monkeypatch.setattr(sys, "stdin", os.fdopen(pipe_of(buffer.getvalue()), "r"))
        assert main(["-", "--threads", "1", "--decoder", "greedy", *flags]) == 0
        return capsys.readouterr().out

    both = heard(np.stack([x + y, x - y], axis=1))  # peaks are far below 2**15: no overflow
    assert both == heard(x) != heard(x + y)
