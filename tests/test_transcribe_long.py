"""The long-file path of transcribe: segments, batching, word times, output formats and folders.

Most tests use the tiny untrained recogniser (what they check does not depend on accuracy); the one
that does needs the shipped model and is skipped without it.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.longform import PipelineConfig, expand_inputs, transcribe_paths
from asr.longform.segment import SegmentConfig, file_segments
from asr.metrics import wer
from asr.text import normalize_text
from asr.transcribe import main

SRT_CUE = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n((?:.+\n)+)\n")


@pytest.fixture(scope="session")
def long_recording(clips, tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """The five AN4 clips joined with 1-1.6 s of quiet noise between them (~22 s, more than one segment's
    worth), and where each clip lies (s)."""
    rng = np.random.default_rng(0)
    pieces, placed, t = [], [], 0.0
    for u in clips:
        gap = rng.uniform(1.0, 1.6)
        wave = load_audio(u.audio)
        pieces += [(rng.standard_normal(int(gap * SAMPLE_RATE)) * 1e-4).astype(np.float32), wave]
        placed.append((t + gap, t + gap + len(wave) / SAMPLE_RATE))
        t = placed[-1][1]
    path = tmp_path_factory.mktemp("long") / "joined.flac"
    sf.write(path, np.concatenate(pieces + [np.zeros(SAMPLE_RATE, np.float32)]), SAMPLE_RATE)
    return path, placed


@pytest.mark.parametrize("overlap_s", [0.0, 1.0])
def test_a_long_file_is_cut_into_segments_that_cover_each_clip(tiny_recognizer, long_recording, overlap_s):
    """The segments' kept parts are in order and never overlap, each at most max_segment_s; the windows
    decoded may overlap (here: 1.5 s segments split the clips, and every meeting is overlapped by 1 s), but
    each word lies in its segment's part and the file's words never overlap."""
    path, placed = long_recording
    seg_cfg = SegmentConfig(max_segment_s=1.5, overlap_s=overlap_s, clear_pause_s=10.0)
    windows = [(s.start_s, s.end_s) for s in file_segments(path, seg_cfg)]
    overlapping = sum(a[1] > b[0] for a, b in zip(windows, windows[1:]))
    assert overlapping > 0 if overlap_s else overlapping == 0
    (result,) = transcribe_paths(tiny_recognizer, [str(path)], PipelineConfig(segment=seg_cfg))
    assert result.error is None and result.duration == pytest.approx(placed[-1][1] + 1.0, abs=0.01)
    spans = [(s.start, s.end) for s in result.segments]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    for seg in result.segments:
        assert all(seg.start - 1e-6 <= w.start < w.end <= seg.end + 1e-6 for w in seg.words)
        assert seg.end - seg.start <= 1.5 + 1e-6
    words = result.words
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))


def test_pooling_and_batching_do_not_change_the_result(tiny_recognizer, long_recording, clips):
    paths = [str(long_recording[0])] + [u.audio for u in clips]
    small = PipelineConfig(batch_seconds=1.0, pool_seconds=1.0, segment=SegmentConfig(max_segment_s=5.0))
    large = PipelineConfig(batch_seconds=500.0, pool_seconds=1000.0, segment=SegmentConfig(max_segment_s=5.0))
    one = [r.to_dict() for r in transcribe_paths(tiny_recognizer, paths, small)]
    other = [r.to_dict() for r in transcribe_paths(tiny_recognizer, paths, large)]
    assert [r["audio"] for r in one] == paths
    assert json.dumps(one) == json.dumps(other)


@pytest.mark.parametrize("overlap_s", [0.0, 1.0])
def test_progress_adds_up_to_the_audio_duration(tiny_recognizer, long_recording, clips, overlap_s):
    """Each segment reports the audio it keeps, so audio that two overlapping windows both decode counts once."""
    paths = [str(long_recording[0]), clips[0].audio]
    done = []
    seg_cfg = SegmentConfig(max_segment_s=1.5, overlap_s=overlap_s, clear_pause_s=10.0)
    cfg = PipelineConfig(pool_seconds=0.1, segment=seg_cfg)  # each segment is decoded, and reported, alone
    results = list(transcribe_paths(tiny_recognizer, paths, cfg, on_progress=done.append))
    assert all(s > 0 for s in done)
    assert sum(done) == pytest.approx(sum(r.duration for r in results), abs=1e-6)
    segs = list(file_segments(paths[0], seg_cfg))
    assert done[: len(segs)] == pytest.approx([s.keep_end_s - s.keep_start_s for s in segs])
    assert sum(done[: len(segs)]) <= results[0].duration


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason=f"needs the trained model {DEFAULT_MODEL} (not shipped yet)")
def test_trained_model_transcribes_a_long_file_like_its_clips(long_recording, clips):
    rec = load_model(DEFAULT_MODEL)
    path, placed = long_recording
    (long,) = transcribe_paths(rec, [str(path)], PipelineConfig(segment=SegmentConfig(max_segment_s=10.0)))
    alone = [r.text for r in transcribe_paths(rec, [u.audio for u in clips])]
    refs = [normalize_text(u.text) for u in clips]
    assert wer([" ".join(refs)], [long.text]) <= wer([" ".join(refs)], [" ".join(alone)]) + 10.0
    words = long.words
    for start, end in placed:  # some word starts in each clip (the clips begin with ~0.3 s of silence)
        assert any(start - 0.1 <= w.start <= start + 0.8 for w in words)


def test_cli_prints_well_formed_srt_for_one_file(tiny_checkpoint, long_recording, capsys):
    assert main(["--model", str(tiny_checkpoint), "--format", "srt", str(long_recording[0])]) == 0
    out = capsys.readouterr().out
    cues = SRT_CUE.findall(out)
    assert "".join(f"{n}\n{a} --> {b}\n{text}\n" for n, a, b, text in cues) == out
    assert [int(n) for n, *_ in cues] == list(range(1, len(cues) + 1))
    assert all(a < b for _, a, b, _ in cues)


def test_cli_writes_every_format_for_a_folder_mirroring_its_layout(tiny_checkpoint, clips, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "notes.txt").write_text("not audio")
    for u, where in zip(clips[:3], [src / "b.flac", src / "a.flac", src / "sub" / "a.flac"]):
        where.write_bytes(Path(u.audio).read_bytes())
    out = tmp_path / "out"
    code = main(["--model", str(tiny_checkpoint), "--format", "all", "--output-dir", str(out), str(src)])
    assert code == 0
    assert capsys.readouterr().out == ""
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(f"{n}.{ext}" for n in ["a", "b", "sub/a"] for ext in ["txt", "json", "srt", "vtt"])
    doc = json.loads((out / "sub" / "a.json").read_text())
    assert doc["audio"] == str(src / "sub" / "a.flac") and "segments" in doc
    assert (out / "a.vtt").read_text().startswith("WEBVTT\n\n")
    assert (out / "b.txt").read_text().endswith("\n")


def test_folders_are_searched_recursively_and_sorted(tmp_path):
    for rel in ["z.wav", "a/b.FLAC", "a/.hidden.wav", ".cache/c.wav", "m.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [Path(i.path).relative_to(tmp_path).as_posix() for i in expand_inputs([str(tmp_path)])]
    assert found == ["a/b.FLAC", "z.wav"]


def test_cli_output_names_do_not_clash(tiny_checkpoint, clips, tmp_path):
    first, second = tmp_path / "x" / "same.flac", tmp_path / "y" / "same.flac"
    for p, u in [(first, clips[0]), (second, clips[1])]:
        p.parent.mkdir()
        p.write_bytes(Path(u.audio).read_bytes())
    out = tmp_path / "out"
    assert main(["--model", str(tiny_checkpoint), "--format", "text", "--output-dir", str(out),
                 str(first), str(second)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["same-2.txt", "same.txt"]


def test_cli_json_is_one_list_in_input_order(tiny_checkpoint, clips, capsys):
    paths = [u.audio for u in clips[:3]]
    assert main(["--model", str(tiny_checkpoint), "--format", "json", *paths]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["audio"] for r in doc] == paths
    assert all({"text", "duration", "segments"} <= set(r) for r in doc)


def test_cli_text_and_jsonl_keep_their_shape(tiny_checkpoint, clips, capsys):
    paths = [u.audio for u in clips[:2]]
    assert main(["--model", str(tiny_checkpoint), *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == paths
    assert main(["--model", str(tiny_checkpoint), "--format", "jsonl", paths[0]]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["audio"] == paths[0] and isinstance(row["text"], str)
    assert row["text"] == " ".join(w["word"] for s in row["segments"] for w in s["words"])


def test_cli_subtitles_of_several_inputs_need_an_output_dir(tiny_checkpoint, clips, capsys):
    assert main(["--model", str(tiny_checkpoint), "--format", "vtt", clips[0].audio, clips[1].audio]) == 2
    assert "--output-dir" in capsys.readouterr().err


def test_no_progress_bar_when_stderr_is_not_a_terminal(tiny_checkpoint, clips, capsys):
    assert main(["--model", str(tiny_checkpoint), clips[0].audio]) == 0
    assert capsys.readouterr().err == ""


def test_cli_reads_a_streamed_wav_to_its_end_and_says_so_once(tiny_checkpoint, long_recording, tmp_path, capsys):
    """A WAV with espeak-ng's placeholder data size (0x7FFFF000), long enough to be read twice (segments)."""
    path = tmp_path / "espeak.wav"
    sf.write(path, load_audio(long_recording[0]), SAMPLE_RATE, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data")
    raw[at + 4 : at + 8], raw[4:8] = (0x7FFFF000).to_bytes(4, "little"), (0x7FFFF024).to_bytes(4, "little")
    path.write_bytes(raw)
    assert main(["--model", str(tiny_checkpoint), "--format", "jsonl", str(path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["duration"] == pytest.approx(long_recording[1][-1][1] + 1.0, abs=0.01)
    (line,) = captured.err.splitlines()
    assert line.startswith(f"warning: {path}: ") and "0x7FFFF000" in line
    raw[at + 4 : at + 8] = (len(raw) - at - 8).to_bytes(4, "little")  # an honest size ...
    path.write_bytes(raw[: len(raw) // 2])  # ... and half the file: truncated
    assert main(["--model", str(tiny_checkpoint), str(path)]) == 1
    assert f"error: {path}: truncated: the header declares" in capsys.readouterr().err


def _refuse_to_list(monkeypatch, locked: Path) -> None:
    """Make os.scandir fail on `locked` as it does for a user without read permission on the folder (the tests
    run as root, which ignores permission bits)."""
    scandir = os.scandir

    def fake_scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)


def test_a_folder_that_cannot_be_listed_says_permission_denied(tiny_checkpoint, clips, tmp_path, monkeypatch, capsys):
    locked, inner = tmp_path / "locked", tmp_path / "in" / "sub"
    locked.mkdir()
    inner.mkdir(parents=True)
    (tmp_path / "in" / "a.flac").write_bytes(Path(clips[0].audio).read_bytes())
    _refuse_to_list(monkeypatch, locked)
    _refuse_to_list(monkeypatch, inner)
    assert main(["--model", str(tiny_checkpoint), str(locked), str(tmp_path / "in")]) == 1
    out, err = capsys.readouterr()
    assert [line.split(": ")[:2] for line in err.splitlines()] == [
        ["error", str(locked)], ["error", str(inner)]]  # a folder inside one that is listed is named too
    assert all("permission denied" in line for line in err.splitlines())
    assert out.split("\t")[0] == str(tmp_path / "in" / "a.flac")


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists folders whatever their permission bits")
def test_a_folder_without_read_permission_says_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.wav").write_bytes(b"")
    locked.chmod(0o300)  # can enter, cannot list
    (inp,) = expand_inputs([str(locked)])
    assert inp.error.startswith(f"{locked}: permission denied")


def test_symbolic_link_loops_are_named_given_or_found_in_a_folder(tiny_checkpoint, clips, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.flac").write_bytes(Path(clips[0].audio).read_bytes())
    b, c = src / "b.wav", src / "c.wav"
    os.symlink(c, b)
    os.symlink(b, c)
    assert main(["--model", str(tiny_checkpoint), str(b)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {b}: symbolic link loop")
    assert main(["--model", str(tiny_checkpoint), str(src)]) == 1
    out, err = capsys.readouterr()
    assert [line.split(": ")[:3] for line in err.splitlines()] == [
        ["error", str(b), "symbolic link loop"], ["error", str(c), "symbolic link loop"]]
    assert out.split("\t")[0] == str(src / "a.flac")


def test_files_in_formats_that_cannot_be_read_are_counted_not_skipped(tiny_checkpoint, clips, tmp_path, capsys,
                                                                       no_ffmpeg):
    """Without ffmpeg on PATH (with it they are read: tests/test_audio_ffmpeg.py)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.flac").write_bytes(Path(clips[0].audio).read_bytes())
    for name in ["b.m4a", "c.M4A", "d.webm", "e.wma", "f.m4a"]:
        (src / name).write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64))
    assert main(["--model", str(tiny_checkpoint), str(src)]) == 0  # what can be read is transcribed
    out, err = capsys.readouterr()
    (note,) = err.splitlines()
    assert note.startswith(f"note: {src}: 5 files in formats that cannot be read without ffmpeg were skipped")
    assert "b.m4a, c.M4A, d.webm" in note and "f.m4a" not in note  # the first few, by name
    assert "ffmpeg -i in.m4a -ar 16000 -ac 1 out.wav" in note
    assert out.split("\t")[0] == str(src / "a.flac")
    (src / "a.flac").unlink()
    assert main(["--model", str(tiny_checkpoint), str(src)]) == 1  # nothing left to transcribe: an error too
    note, error = capsys.readouterr().err.splitlines()
    assert note.startswith(f"note: {src}: 5 files") and error.startswith(f"error: {src}: no audio files found")


def test_a_file_in_a_format_that_cannot_be_read_given_directly(tiny_checkpoint, tmp_path, capsys, no_ffmpeg):
    path = tmp_path / "voice memo.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64))
    assert main(["--model", str(tiny_checkpoint), str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: ") and "MP4" in line
    assert f"ffmpeg -i '{path}' -ar 16000 -ac 1 " in line  # quoted for the shell


@pytest.mark.parametrize("background, side_s", [("noise_-75dBFS", 60), ("silence_and_tiny_noise", 60),
                                                ("noise_-75dBFS", 15)])
def test_words_in_a_long_quiet_recording_are_timed_as_in_the_clip_alone(clips, tmp_path, background, side_s):
    """One clip with a minute of near-silence either side (speech 2% of the frames): its words keep the times
    they have in the clip alone, to 0.1 s. The speech level was the 95th percentile of all frames, which then lay in
    the silence, so every frame counted as voiced and word edges ran into the pauses ((0.0, 1.26) for (0.31, 0.79)).
    With 15 s either side speech is 7% of the frames: just over the 5% where the 95th percentile leaves the speech."""
    rec = load_model(DEFAULT_MODEL)
    clip = load_audio(clips[0].audio)
    rng = np.random.default_rng(0)
    side = side_s * SAMPLE_RATE
    if background == "noise_-75dBFS":
        pad = rng.standard_normal(side) * 10 ** (-75 / 20)
    else:  # digital silence with a few samples of the least 16-bit step
        pad = np.zeros(side)
        pad[rng.choice(side, side // 100, replace=False)] = 1 / 32768
    sf.write(tmp_path / "long.wav", np.concatenate([pad, clip, pad]), SAMPLE_RATE, subtype="FLOAT")
    (alone,) = transcribe_paths(rec, [clips[0].audio])
    (long,) = transcribe_paths(rec, [str(tmp_path / "long.wav")])
    assert len(long.words) == len(alone.words), (long.text, alone.text)  # a letter may differ ("g m e", "g n e")
    for a, w in zip(alone.words, long.words):
        assert abs(w.start - side_s - a.start) <= 0.1 and abs(w.end - side_s - a.end) <= 0.1, (a, w)


def test_cli_subtitles_end_by_the_end_of_a_short_clip(clips, capsys):
    """The shortest clip ("stop", 0.8 s): its one cue would stay up min_cue_s (1 s) from the word's start, past the
    audio's end; it ends with the audio."""
    clip = min(clips, key=lambda u: u.duration)
    assert main([clip.audio, "--format", "srt", "--threads", "1"]) == 0
    ((_, start, end, text),) = SRT_CUE.findall(capsys.readouterr().out)
    assert text.strip() == "stop"
    seconds = [int(t[6:8]) + int(t[9:]) / 1000 for t in (start, end)]
    assert seconds[0] < seconds[1] <= round(sf.info(clip.audio).duration, 3), (start, end)
