"""Formats libsndfile cannot read (MP4/M4A with AAC or ALAC, raw AAC, WebM, WMA) read through ffmpeg where it is on
PATH, at every door: asr.audio, python -m asr.transcribe on files and folders, and the server. Without ffmpeg they
are refused in one line that names the ffmpeg command; the server never shows the client a path of its own."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from asr.audio import AudioError, audio_duration, audio_info, load_audio, read_blocks
from asr.metrics import word_errors
from asr.transcribe import main

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not on PATH (apt-get install ffmpeg)")
CODECS = {  # file name -> ffmpeg's output flags: the formats users bring that libsndfile cannot read
    "memo.m4a": ["-c:a", "aac", "-b:a", "96k"],
    "lossless.m4a": ["-c:a", "alac"],
    "raw.aac": ["-c:a", "aac", "-b:a", "96k"],
    "call.webm": ["-c:a", "libopus", "-b:a", "96k"],
    "old.wma": ["-c:a", "wmav2", "-b:a", "96k"],
}
BROKEN_M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64)  # an MP4 'ftyp' box, no audio


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, clips_manifest) -> dict[str, Path]:
    """The clip "rubout g m e f three nine" (an406-fcaw-b.flac) in each of CODECS, encoded by ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not on PATH (apt-get install ffmpeg)")
    folder = tmp_path_factory.mktemp("encoded")
    source = clips_manifest.parent / "an406-fcaw-b.flac"
    out = {"flac": source}
    for name, flags in CODECS.items():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source), *flags, str(folder / name)],
                       check=True, timeout=60)
        out[name] = folder / name
    return out


@needs_ffmpeg
def test_lossless_m4a_reads_as_the_flac_it_was_made_from_whole_and_in_blocks(encoded):
    flac = load_audio(encoded["flac"])
    alac = load_audio(encoded["lossless.m4a"])
    assert np.array_equal(alac, flac)  # 16-bit ALAC at 16 kHz: the same samples
    blocks = list(read_blocks(encoded["lossless.m4a"], block_seconds=1.0))
    assert all(len(b) <= 16000 for b in blocks) and np.array_equal(np.concatenate(blocks), flac)
    assert audio_duration(encoded["lossless.m4a"]) == pytest.approx(len(flac) / 16000)


@needs_ffmpeg
@pytest.mark.parametrize("name", [n for n in CODECS if n != "lossless.m4a"])
def test_lossy_formats_read_as_float32_mono_16k_close_to_the_original(encoded, name):
    flac, x = load_audio(encoded["flac"]), load_audio(encoded[name])
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(flac)) < 0.1 * 16000  # codecs pad a little
    assert audio_duration(encoded[name]) == pytest.approx(len(x) / 16000, abs=1e-3)


@needs_ffmpeg
@pytest.mark.parametrize("name", list(CODECS))
def test_their_header_gives_duration_rate_and_channels_as_for_any_file(encoded, name):
    """audio_info (what `python -m asr.data import` probes every file with) reads them as it reads a FLAC: the
    stored rate and channels (mono, 16 kHz as encoded; Opus always stores 48 kHz), and the duration within a
    codec's padding."""
    info = audio_info(encoded[name])
    assert (info.sample_rate, info.channels) == (48000 if name.endswith(".webm") else 16000, 1)
    assert info.seconds == pytest.approx(audio_info(encoded["flac"]).seconds, abs=0.1)


@needs_ffmpeg
def test_a_folder_of_them_with_transcripts_imports(encoded, tmp_path):
    """A user's recordings as M4A with same-named .txt transcripts import like any other folder."""
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(encoded["memo.m4a"], folder / "memo.m4a")
    (folder / "memo.txt").write_text("RUBOUT G M E F THREE NINE\n")
    done = subprocess.run([sys.executable, "-m", "asr.data", "import", str(folder), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "all.jsonl").read_text().splitlines()]
    assert [(Path(r["audio"]).name, r["text"]) for r in rows] == [("memo.m4a", "RUBOUT G M E F THREE NINE")]
    assert rows[0]["duration"] == pytest.approx(audio_info(encoded["flac"]).seconds, abs=0.1)


@needs_ffmpeg
def test_the_cli_transcribes_each_as_the_flac_and_a_folder_no_longer_skips_them(encoded, tmp_path, capsys):
    assert main([str(encoded["flac"]), "--threads", "1"]) == 0
    want = capsys.readouterr().out
    assert want.startswith("rubout g n e ")  # the shipped model hears "rubout g n e f three nine"
    assert main([str(encoded[n]) for n in CODECS] + ["--threads", "1", "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    heard = {Path(row["audio"]).name: row["text"] for row in map(json.loads, out.splitlines())}
    assert err == "" and list(heard) == list(CODECS) and heard["lossless.m4a"] + "\n" == want
    for name, text in heard.items():  # lossy codecs (and raw AAC's encoder delay, which MP4 trims) may move a word
        assert word_errors(want, text).errors <= 1, (name, text)
    folder = encoded["memo.m4a"].parent
    assert main([str(folder), "--threads", "1", "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and sorted(json.loads(line)["audio"] for line in out.splitlines()) == sorted(
        str(encoded[n]) for n in CODECS)


@needs_ffmpeg
def test_a_file_ffmpeg_cannot_read_is_one_line_with_ffmpegs_reason(tmp_path, capsys):
    path = tmp_path / "broken.m4a"
    path.write_bytes(BROKEN_M4A)
    with pytest.raises(AudioError, match=rf"^{path}: not readable as MP4/M4A \(AAC or ALAC\) audio by ffmpeg \(.*Invalid"):
        load_audio(path)
    assert main([str(path), "--threads", "1"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: not readable as MP4/M4A") and line.count(str(path)) == 1


def playlist(target: Path) -> bytes:
    """An HLS playlist naming a file on this machine: ffmpeg, left to probe, would read that file in its place."""
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n{target}\n#EXT-X-ENDLIST\n".encode()


@pytest.mark.parametrize("name", ["list.m4a", "list.webm", "list.aac"])
def test_a_playlist_under_an_audio_name_is_refused_not_followed(encoded, tmp_path, name):
    (tmp_path / name).write_bytes(playlist(encoded["flac"]))
    with pytest.raises(AudioError, match=f"{name}: not readable as {name.split('.')[1].upper()} audio by ffmpeg "
                       r"\(it is hls, not an audio format read here\)"):
        load_audio(tmp_path / name)
    with pytest.raises(AudioError, match=name):
        audio_duration(tmp_path / name)


def test_an_mp3_under_an_m4a_name_is_still_read(encoded, tmp_path):
    """The demuxers allowed include mp3: a file misnamed by its maker reads as it did before the list."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(encoded["flac"]), "-c:a", "libmp3lame",
                    "-id3v2_version", "0", "-f", "mp3", str(tmp_path / "x.m4a")], check=True, timeout=60)
    assert abs(len(load_audio(tmp_path / "x.m4a")) - len(load_audio(encoded["flac"]))) < 0.1 * 16000


@needs_ffmpeg
def test_ffmpeg_output_is_read_only_up_to_the_length_limit(encoded, monkeypatch):
    monkeypatch.setattr("asr.audio.ffmpeg.MAX_SECONDS", 2.0)  # the clip is 4.0 s
    with pytest.raises(AudioError, match=r"longer than the 2 s limit"):
        load_audio(encoded["memo.m4a"])


def test_without_ffmpeg_the_refusal_names_the_ffmpeg_command(no_ffmpeg, tmp_path, capsys):
    path = tmp_path / "memo.m4a"
    path.write_bytes(BROKEN_M4A)
    assert main([str(path), "--threads", "1"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: MP4/M4A (AAC or ALAC) audio cannot be read without ffmpeg")
    assert f"ffmpeg -i {path} -ar 16000 -ac 1 {tmp_path / 'memo-16k.wav'}" in line


def upload(url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (name, data)}, data={"model": "asr-an4"},
                      timeout=60)


def assert_no_server_path(message: str) -> None:
    """Nothing of the server's own files in what the client is told: its temporary folders, its spool names."""
    assert "asr-serve-" not in message and tempfile.gettempdir() not in message and "audio-16k" not in message, message


@needs_ffmpeg
def test_the_server_reads_them_too_and_names_only_the_upload_in_errors(encoded, tmp_path):
    pytest.importorskip("fastapi")
    openai = pytest.importorskip("openai")
    from test_serve import running_server  # tests/ is on sys.path under pytest
    with running_server(tmp_path / "server.log") as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        for name in ["memo.m4a", "call.webm", "old.wma"]:
            with open(encoded[name], "rb") as f:
                got = client.audio.transcriptions.create(file=(name, f), model="asr-an4").text
            assert got == load_transcript(encoded[name])
        refused = upload(url, "broken.m4a", BROKEN_M4A)
        followed = upload(url, "list.m4a", playlist(encoded["flac"]))  # a playlist naming a file of the server's
    assert followed.status_code == 400 and followed.json()["error"]["code"] == "invalid_file_format", followed.text
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["code"] == "invalid_file_format"
    assert error["message"].startswith("broken.m4a: not readable as MP4/M4A (AAC or ALAC) audio by ffmpeg (")
    assert_no_server_path(error["message"])


@pytest.mark.parametrize("loops, reads", [(0, 1), (6, 2)], ids=["4 s", "28 s"])
def test_the_server_decodes_an_upload_no_more_than_it_reads_it_and_gives_the_cli_duration(encoded, monkeypatch,
                                                                                          tmp_path, loops, reads):
    """A format read through ffmpeg has no exact length in its header: the CLI decodes it to count its samples. The
    server counted them the same way before reading the file, a whole decode (up to hours of audio) per upload that
    nothing could stop; it counts them as it reads now: one read of a short file, two of one past 20 s (the
    segmenter's levels, then its cuts), never a third (in-process, Starlette's TestClient)."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import asr.audio.files
    from asr.serve import app
    from asr.serve.__main__ import load
    from asr.serve.config import ServeConfig

    upload = tmp_path / "memo.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", str(loops), "-i",
                    str(encoded["flac"]), *CODECS["memo.m4a"], str(upload)], check=True, timeout=60)
    decodes, real = [], asr.audio.files.ffmpeg_blocks
    monkeypatch.setattr(asr.audio.files, "ffmpeg_blocks", lambda *a, **k: decodes.append(a[0]) or real(*a, **k))
    cfg = ServeConfig()
    with TestClient(app.create_app(cfg, *load(cfg))) as client:
        r = client.post("/v1/audio/transcriptions", files={"file": ("memo.m4a", upload.read_bytes())},
                        data={"model": "asr-an4", "response_format": "verbose_json"})
    assert r.status_code == 200 and len(decodes) == reads, (r.text, decodes)
    monkeypatch.undo()
    assert r.json()["duration"] == pytest.approx(audio_duration(upload), abs=1e-3)
    if not loops:
        assert r.json()["text"] == load_transcript(encoded["memo.m4a"])


def test_without_ffmpeg_the_server_refuses_them_naming_the_upload_never_its_own_paths(no_ffmpeg, tmp_path):
    pytest.importorskip("fastapi")
    from test_serve import running_server
    with running_server(tmp_path / "server.log", env=no_ffmpeg) as (url, _):
        refused = {name: upload(url, name, BROKEN_M4A) for name in ["talk.m4a", "voice memo.m4a", "../x/clip.M4A"]}
    for name, r in refused.items():
        error = r.json()["error"]
        assert r.status_code == 400 and error["code"] == "invalid_file_format", error
        shown = Path(name).name
        assert error["message"].startswith(f"{shown}: MP4/M4A (AAC or ALAC) audio cannot be read without ffmpeg")
        out = shlex.quote(f"{Path(shown).stem}-16k.wav")
        assert f"ffmpeg -i {shlex.quote(shown)} -ar 16000 -ac 1 {out}" in error["message"]
        assert_no_server_path(error["message"])


def load_transcript(path: Path) -> str:
    """What python -m asr.transcribe prints for the file (the server must say the same)."""
    done = subprocess.run([sys.executable, "-m", "asr.transcribe", "--threads", "1", str(path)], capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout.strip()


@needs_ffmpeg
def test_a_relative_name_with_a_colon_is_a_file_not_an_ffmpeg_protocol(encoded, tmp_path, monkeypatch):
    (tmp_path / "take:1.m4a").write_bytes(encoded["lossless.m4a"].read_bytes())
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(load_audio("take:1.m4a"), load_audio(encoded["flac"]))


@needs_ffmpeg
def test_stdin_and_pipes_read_them_through_ffmpeg_too(encoded):
    with open(encoded["memo.m4a"], "rb") as f:
        done = subprocess.run([sys.executable, "-m", "asr.transcribe", "--threads", "1", "-"], stdin=f,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip() == load_transcript(encoded["memo.m4a"])
    broken = subprocess.run([sys.executable, "-m", "asr.transcribe", "--threads", "1", "-"], input=BROKEN_M4A,
                            capture_output=True, timeout=300)
    line = broken.stderr.decode().strip()
    assert broken.returncode == 1 and line.startswith("error: -: not readable as MP4/M4A (AAC or ALAC) audio by ffmpeg")
    assert "asr-" not in line and tempfile.gettempdir() not in line


@needs_ffmpeg
def test_a_header_without_a_duration_or_an_ffprobe_that_hangs_or_is_missing(encoded, tmp_path, monkeypatch):
    """WebM written to a pipe (as browsers record) has no duration in its header: its samples are counted. An
    ffprobe that hangs, or none beside ffmpeg, is one AudioError naming the file and the reason, never a traceback
    that stops a whole import."""
    from asr.audio import ffmpeg

    live = tmp_path / "live.webm"
    with open(live, "wb") as out:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(encoded["flac"]), "-c:a", "libopus",
                        "-f", "webm", "pipe:1"], stdout=out, check=True, timeout=60)
    info = audio_info(live)
    assert (info.sample_rate, info.channels) == (48000, 1)
    assert info.seconds == pytest.approx(audio_info(encoded["flac"]).seconds, abs=0.1)
    hangs = tmp_path / "ffprobe"
    hangs.write_text("#!/bin/sh\nsleep 30\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "FFPROBE", str(hangs))
    monkeypatch.setattr(ffmpeg, "PROBE_SECONDS", 0.5)
    with pytest.raises(AudioError, match=r"memo\.m4a: ffprobe did not read its header within 0\.5 s"):
        audio_info(encoded["memo.m4a"])
    monkeypatch.setattr(ffmpeg, "FFPROBE", "no-such-ffprobe")
    with pytest.raises(AudioError, match=r"memo\.m4a: MP4/M4A .* needs ffprobe"):
        audio_info(encoded["memo.m4a"])
