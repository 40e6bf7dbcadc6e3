"""asr.transcribe reads stdin ("-"), /dev/stdin, pipes and process substitution as streams, through real pipes:
commands run in parallel (each imports torch, ~2 s) with the shipped model, and os.pipe() in this process."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.audio import AudioError, load_audio, read_stream
from asr.checkpoint import load_model
from asr.longform import expand_inputs, transcribe_paths
from asr.transcribe import main

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
    (result,) = transcribe_paths(load_model(), [str(clip)])
    text = result.text + "\n"
    code, out, err = done["pipe"]
    row = json.loads(out)
    assert code == 0 and err == "" and row["audio"] == "-" and row["text"] + "\n" == text
    assert row["duration"] == 2.5
    assert done["raw"][:2] == (0, text)
    assert done["raw"][2].splitlines() == ["warning: -: no WAV/FLAC/Ogg header: read as raw 16-bit little-endian PCM "
                                           "at 16 kHz mono"]
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
    with pytest.raises(AudioError, match=rf"^/dev/fd/{fd}: not readable as audio \("):
        read_stream(f"/dev/fd/{fd}")
    os.close(fd)
