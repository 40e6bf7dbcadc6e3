"""The benches with a manifest that is not there: one line saying how to make it, exit 2, before any work."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
MAKE_AN4 = "make it with: bash recipes/an4/run.sh --stop-stage 1 (its stage 0 downloads AN4 where --data lacks it)"
MISSING = "no-such-dir/missing.jsonl"
CASES = {  # name -> (bench arguments, the path it must name, what it must say to do)
    "decode_speed": (["decode_speed.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "transcribe_speed": (["transcribe_speed.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "long_audio": (["long_audio.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "long_audio_dc": (["long_audio_dc.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "confidence": (["confidence.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "train_speed": (["train_speed.py", "--train", MISSING], MISSING, MAKE_AN4),
    "train_speed_noise": (["train_speed.py", "--train", "manifests/an4/../README.md", "--noise", MISSING], MISSING,
                          "it comes with the shared data, or give --noise '' for synthetic noise"),
    "robustness": (["robustness.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "robustness_noise": (["robustness.py", "--manifest", "manifests/an4/../README.md", "--noise-test", MISSING], MISSING,
                         "make it with: python recipes/an4/split_noise.py --noise ../shared/data/noise --out manifests/an4/noise"),
    "onnx_speed": (["onnx_speed.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "serve_load": (["serve_load.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "serve_faults": (["serve_faults.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "features_ab": (["features_ab.py", "--train", MISSING], MISSING, MAKE_AN4),
    "streaming": (["streaming.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "biasing": (["biasing.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "level_guard": (["level_guard.py", "--train", MISSING], MISSING, MAKE_AN4),
    "fsdd": (["fsdd.py", "--data", "no-such-dir"], "no-such-dir/metadata.csv", "it comes with the shared data; give "
             "--data, the FSDD audiofolder (metadata.csv: file_name, transcription, speaker)"),
    "finetune": (["finetune.py", "--data", "no-such-dir"], "no-such-dir/metadata.csv", "it comes with the shared data; "
                 "give --data, the FSDD audiofolder (metadata.csv: file_name, transcription, speaker)"),
    "import_speed": (["import_speed.py", "--data", "no-such-dir"], "no-such-dir",
                     "give --data, an audiofolder (metadata.csv or metadata.jsonl beside the audio)"),
    "fsdd_copies": (["fsdd_copies.py", "pad", MISSING, "out"], MISSING,
                    "make one with python -m asr.data import, or give a fold's EXP/<speaker>/sets/test.jsonl"),
    "pad_lengths": (["pad_lengths.py", "--train", MISSING], MISSING, MAKE_AN4),
    "finetune_epochs": (["finetune_epochs.py", "no-such-dir", MISSING], MISSING,
                        "a fine-tune's EXP/sets/test.jsonl (recipes/finetune/run.sh stage 2)"),
    "vtln": (["vtln.py", "--model", "none.pt", "--manifest", MISSING], MISSING,
             "a fine-tune's EXP/sets/test.jsonl (recipes/finetune/run.sh stage 2)"),
    "behaviour_check": (["behaviour_check.py", "snapshot", "out.json", "--manifest", MISSING, "--train", MISSING], MISSING, MAKE_AN4),
    "stream_level_decision": (["stream_level_decision.py", "--manifest", MISSING], MISSING, MAKE_AN4),
    "finetune_last": (["finetune_last.py", "no-such-dir"], "no-such-dir/sets/test.jsonl",
                      "a fold of recipes/finetune/run.sh (bench/finetune.py), run through stage 7"),
    "finetune_alpha": (["finetune_alpha.py", "--exp", "no-such-dir", "--an4", MISSING], MISSING, MAKE_AN4),
}


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: list[str], cwd: Path) -> Finished:
    """bench/<args[0]> run as `python bench/<script> ARGS` would run it (as __main__, bench/ on sys.path, argv, the
    folder), in this process: torch and asr are imported once for all of them, not once a bench."""
    saved = sys.argv, sys.path[:], os.getcwd(), torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        sys.argv = [str(ROOT / "bench" / args[0]), *args[1:]]
        sys.path.insert(0, str(ROOT / "bench"))
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(sys.argv[0], run_name="__main__")
            except SystemExit as e:  # as the interpreter ends: None is 0, a message goes to stderr with 1
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
                if not isinstance(e.code, (int, type(None))):
                    print(e.code, file=sys.stderr)
            except Exception:  # noqa: BLE001 - a traceback and 1, as the interpreter gives; this case alone fails
                traceback.print_exc()
                code = 1
    finally:
        threads = torch.get_num_threads()
        sys.argv, sys.path[:] = saved[0], saved[1]
        os.chdir(saved[2])
        torch.set_num_threads(saved[3])
    assert threads == saved[3], f"{args[0]} set torch's threads before checking its manifests"
    return Finished(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Finished]:
    """Every case run, each in a folder that holds no manifests."""
    cwd = tmp_path_factory.mktemp("bench")  # nothing may be written here either
    (cwd / "manifests" / "an4").mkdir(parents=True)
    (cwd / "manifests" / "README.md").write_text("a file that exists\n")
    out = {name: run_in_process(args, cwd) for name, (args, _, _) in CASES.items()}
    assert sorted(p.name for p in cwd.rglob("*")) == ["README.md", "an4", "manifests"], "a bench wrote files"
    return out


@pytest.mark.parametrize("name", CASES)
def test_a_missing_manifest_is_one_line_saying_how_to_make_it(finished, name):
    proc, (_, path, how) = finished[name], CASES[name]
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"error: {path}: no such manifest; {how}\n")


MODEL_CASES = {  # bench -> its arguments, with a model that is not there (after manifests that are)
    "confidence": ["confidence.py", "--manifest", "{m}"],
    "transcribe_speed": ["transcribe_speed.py", "--manifest", "{m}"],
    "biasing": ["biasing.py", "--manifest", "{m}", "--train", "{m}"],
    "streaming": ["streaming.py", "--manifest", "{m}"],
    "pad_lengths": ["pad_lengths.py", "--train", "{m}"],
    "long_audio": ["long_audio.py", "--manifest", "{m}"],
    "decode_speed": ["decode_speed.py", "--manifest", "{m}"],
    "vtln": ["vtln.py", "--manifest", "{m}"],
}


@pytest.mark.parametrize("name", MODEL_CASES)
def test_a_missing_model_is_one_line_and_exit_2(name, clips_manifest, tmp_path):
    args = [a.format(m=clips_manifest) for a in MODEL_CASES[name]] + ["--model", str(tmp_path / "none.pt")]
    done = run_in_process(args, tmp_path)
    assert (done.returncode, done.stderr) == (2, f"error: {tmp_path / 'none.pt'}: no such checkpoint file\n"), (
        done.stderr[-1500:])


def test_finetune_epochs_with_no_or_broken_epoch_weights_is_one_line(tiny_checkpoint, clips_manifest, tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    shutil.copy(tiny_checkpoint, run / "best.pt")
    done = run_in_process(["finetune_epochs.py", str(run), str(clips_manifest)], tmp_path)
    assert (done.returncode, done.stderr) == (2, f"error: {run / 'epochs'}: no epoch weights (run the fine-tune with "
                                                 '--train-args "--average-last N")\n'), done.stderr
    (run / "epochs").mkdir()
    (run / "epochs" / "epoch-1.pt").write_text("not weights")
    done = run_in_process(["finetune_epochs.py", str(run), str(clips_manifest)], tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {run / 'epochs' / 'epoch-1.pt'}: not this "
                                                           "model's weights (") and done.stderr.count("\n") == 1


def test_every_bench_checks_its_manifests_through_the_one_helper():
    for bench in sorted((ROOT / "bench").glob("[!_]*.py")):
        assert "require_manifests(" in bench.read_text(), f"{bench.name} does not check its manifests"
        assert bench.read_text().rstrip().endswith("sys.exit(run_main(main))"), f"{bench.name}: errors not one line"
    assert {args[0] for args, _, _ in CASES.values()} == {p.name for p in (ROOT / "bench").glob("[!_]*.py")}


def test_the_helper_passes_paths_that_exist_and_skips_empty_ones(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("_manifests", ROOT / "bench" / "_manifests.py")
    manifests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(manifests)
    (tmp_path / "a.jsonl").write_text('{"id": "x"}\n')
    manifests.require_manifests(tmp_path / "a.jsonl", tmp_path, "")  # a file, a folder, "" (none given): no exit
    with pytest.raises(SystemExit) as stop:
        manifests.require_manifests(tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl")
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'b.jsonl'}: no such manifest; {MAKE_AN4}\n"


@pytest.mark.parametrize("name", [n for n, (args, _, _) in CASES.items() if MISSING in args])
def test_an_empty_manifest_is_one_line_not_a_result_for_nothing(name, tmp_path):
    """Given an empty manifest, benches printed results for nothing and exited 0, crashed with a traceback, or (long
    audio) looped for ever (an audit)."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    (tmp_path / "manifests" / "an4").mkdir(parents=True)
    (tmp_path / "manifests" / "README.md").write_text("a file that exists\n")  # as the `finished` fixture's cases need
    args = [str(empty) if a == MISSING else a for a in CASES[name][0]]
    done = run_in_process(args, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {empty}: no utterances in it: nothing to "
                                                                  "measure\n"), done.stderr[-500:]


def bench_module(name: str):
    """bench/<name>.py as a module (bench/ on sys.path while it loads, as when it runs as a script)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


@pytest.fixture(scope="module")
def robustness():
    return bench_module("robustness")


def test_robustness_noise_is_mixed_at_the_snr_on_the_speech_frames(robustness):
    from asr.augment import snr_db

    rng = np.random.default_rng(0)
    speech = np.zeros(16000, dtype=np.float32)  # 1 s: 0.5 s of silence, then a 0.5 s tone
    speech[8000:] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    short_noise = rng.standard_normal(5000).astype(np.float32)  # shorter than the clip: looped
    mixed = robustness.add_noise(speech, short_noise, 10.0, rng)
    assert mixed.shape == speech.shape
    assert abs(snr_db(speech, mixed - speech) - 10.0) < 0.01
    whole_clip = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean((mixed - speech).astype(np.float64) ** 2))
    assert whole_clip < 8.0  # over the whole clip, pauses included, it would read 3 dB lower


@pytest.mark.parametrize("name, kbit_s", [("mp3_32k", 32), ("mp3_24k", 24), ("opus_15k", 15)])
def test_robustness_codec_settings_give_their_bitrate_on_an4_clips(robustness, tmp_path, name, kbit_s):
    _, kwargs, suffix = robustness.CODECS[name]
    seconds, size = 0.0, 0
    for clip in sorted((ROOT / "tests" / "data" / "an4").glob("*.flac")):  # as the bench measures: file sizes
        wave, rate = sf.read(clip, dtype="float32")
        sf.write(tmp_path / f"{clip.stem}{suffix}", wave, rate, **kwargs)
        seconds, size = seconds + len(wave) / rate, size + (tmp_path / f"{clip.stem}{suffix}").stat().st_size
    assert abs(size * 8 / seconds / 1000 - kbit_s) < 0.1 * kbit_s


def run_bench(*args: str) -> list[str]:
    """A bench as the README runs it, on the five test clips; its stdout lines."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:], "--manifest",
                           str(ROOT / "tests" / "data" / "an4" / "clips.jsonl")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_decode_speed_uses_the_shipped_lm_says_what_it_compares_and_ends_in_name_value():
    """On the .[dev] install (no kenlm, no pyctcdecode): our search with the shipped LM, read in pure Python."""
    lines = run_bench("decode_speed.py", "--repeats", "1", "--beams", "8")
    assert lines[0].startswith("compares: ours, ours with pyctcdecode's pruning")
    assert "LM " + str(ROOT / "asr" / "assets" / "an4_lm.arpa.gz") + " (alpha=0.3, beta=3.0)" in lines[1]
    if importlib.util.find_spec("pyctcdecode") is None:
        assert "(no pyctcdecode row" in lines[0] and not any(line.startswith("pyctcdecode") for line in lines)
        assert re.fullmatch(r"ours_ms_per_utterance=\d+\.\d{3}", lines[-1]), lines[-1]
    else:
        assert re.fullmatch(r"speedup_vs_pyctcdecode=\d+\.\d\d", lines[-1]), lines[-1]


def test_confidence_decodes_as_transcribe_does_by_default():
    lines = run_bench("confidence.py")
    assert lines[0].startswith("decoding: beam (beam 32, LM ") and lines[0].endswith("alpha 0.3, beta 3.0)")
    assert re.fullmatch(r"below_threshold_backwards=\d+\.\d", lines[-1])
    assert run_bench("confidence.py", "--greedy")[0] == "decoding: greedy"


def test_fsdd_scores_an_audiofolder_per_speaker_and_trimmed_when_asked(clips, tmp_path):
    """bench/fsdd.py on a two-clip audiofolder (and a broken clip): one row a speaker; --trim-db hears the clips cut
    to their words; the broken clip is named in one line, left out of the table, and the exit status is 1."""
    folder = tmp_path / "digits"
    (folder / "recordings").mkdir(parents=True)
    rows = ["file_name,transcription,speaker"]
    for i, clip in enumerate(clips[:2]):
        sf.write(folder / "recordings" / f"{i}.wav", sf.read(clip.audio, dtype="float32")[0], 16000)
        rows.append(f"recordings/{i}.wav,{clip.text},speaker{i}")
    (folder / "recordings" / "broken.wav").write_text("not audio")
    rows.append("recordings/broken.wav,stop,speaker2")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fsdd.py"), "--data", str(folder), "--decoders",
                           "greedy", "--trim-db", "20"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: {folder / 'recordings' / 'broken.wav'}: not readable as audio")
    assert done.stderr.endswith("; the table leaves it out\n") and done.stderr.count("\n") == 1
    assert "2 clips, 2 speakers; every clip trimmed at 20 dB under its loudest frame" in done.stdout
    assert "| speaker0 | 1 |" in done.stdout and "| speaker1 | 1 |" in done.stdout
    assert re.fullmatch(r"fsdd_wer_greedy=\d+\.\d\d", done.stdout.splitlines()[-1])


def test_fsdd_on_clips_that_all_read_scores_them_and_exits_0(clips, tmp_path):
    """The usual case (every clip read; the test above has a broken one): it ended in an IndexError."""
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, clip in enumerate(clips[:2]):
        sf.write(folder / f"{i}.wav", sf.read(clip.audio, dtype="float32")[0], 16000)
    (folder / "metadata.csv").write_text("file_name,transcription,speaker\n" + "".join(
        f"{i}.wav,{clip.text},speaker{i}\n" for i, clip in enumerate(clips[:2])))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fsdd.py"), "--data", str(folder), "--decoders",
                           "greedy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "| speaker0 | 1 |" in done.stdout and re.fullmatch(r"fsdd_wer_greedy=\d+\.\d\d", done.stdout.splitlines()[-1])


def test_fsdd_trimmed_copies_are_the_clips_cut_to_their_words(clips, tmp_path):
    rows = [{"audio": clip.audio} for clip in clips[:2]]
    copies = bench_module("fsdd").trimmed_copies(rows, 20.0, tmp_path)
    for row in rows:
        original, cut = sf.read(row["audio"], dtype="float32")[0], sf.read(copies[row["audio"]], dtype="float32")[0]
        assert 0.1 * len(original) < len(cut) < 0.9 * len(original)  # AN4's clips: silence either side of the words
        loudest = np.abs(cut).max()
        assert np.abs(cut[:160]).max() > 0.01 * loudest and np.abs(cut[-160:]).max() > 0.01 * loudest  # no silence left


def test_fsdd_with_no_readable_clip_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "broken.wav").write_text("not audio")
    (tmp_path / "metadata.csv").write_text("file_name,transcription,speaker\nbroken.wav,stop,a\n")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fsdd.py"), "--data", str(tmp_path), "--decoders",
                           "greedy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'broken.wav'}: not readable as audio")
    assert done.stderr.endswith(f"; no clip of {tmp_path / 'metadata.csv'} could be read\n")


def finished_fold(fold: Path, errors: list[tuple[str, str]]) -> None:
    """A fold of bench/finetune.py as recipes/finetune/run.sh leaves it: the summaries it reads, stage 3's seconds,
    and the after/default evaluation's per-utterance errors ((reference, hypothesis) per clip)."""
    for i, name in enumerate(f"{s}-{who}-{d}" for s in ("test", "an4-test") for who in ("before", "after")
                             for d in ("greedy", "default")):
        (fold / "eval" / name).mkdir(parents=True)
        (fold / "eval" / name / "summary.json").write_text(f'{{"wer": {10.0 + i}}}')
    rows = [{"ref": ref, "hyp": hyp, "word_errors": int(ref != hyp)} for ref, hyp in errors]
    (fold / "eval" / "test-after-default" / "errors.jsonl").write_text("".join(f"{json.dumps(r)}\n" for r in rows))
    (fold / "train").mkdir()
    (fold / "train" / "stage_seconds").write_text("390\n")
    (fold / ".done.7.evaluate").write_text("settings\n")


def test_finetune_tabulates_finished_folds_with_their_most_frequent_errors(tmp_path, monkeypatch, capsys):
    (tmp_path / "fsdd").mkdir()
    (tmp_path / "fsdd" / "metadata.csv").write_text("file_name,transcription,speaker\na.wav,one,ann\nb.wav,two,bob\n")
    finished_fold(tmp_path / "exp" / "ann", [("three", "eight"), ("one", "one"), ("three", "eight"), ("two", ""),
                                             ("six", "six"), ("five", "nine"), ("four", "for")])
    finished_fold(tmp_path / "exp" / "bob", [("one", "one")])
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--data", str(tmp_path / "fsdd"), "--exp", str(tmp_path / "exp"),
                                      "--an4", "none", "--tabulate"])
    assert bench_module("finetune").main() == 0
    out = capsys.readouterr().out.splitlines()
    assert "| ann | 10.00 | 11.00 | 12.00 | 13.00 | 6.5 | 15.00 -> 17.00 |" in out
    assert ("ann, most frequent errors after (default decoding): three -> eight 2, two -> (nothing) 1, five -> nine 1"
            in out)  # the clips heard right are not errors; ties in the order met
    assert "bob, most frequent errors after (default decoding): none" in out
    assert out[-1] == "fsdd_finetune_wer_default=13.00"


def test_finetune_tabulate_without_a_finished_fold_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "metadata.csv").write_text("file_name,transcription,speaker\na.wav,one,ann\nb.wav,two,bob\n")
    (tmp_path / "exp" / "bob" / "train").mkdir(parents=True)  # stopped after stage 3: trained, not evaluated
    (tmp_path / "exp" / "bob" / "train" / "stage_seconds").write_text("390\n")
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--data", str(tmp_path), "--exp", str(tmp_path / "exp"),
                                      "--tabulate"])
    assert bench_module("finetune").main() == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'exp'}: no finished fold (stage 7 done) for ann, bob "
                                       "(run without --tabulate)\n")


def test_finetune_tabulate_with_a_corrupt_error_report_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "metadata.csv").write_text("file_name,transcription,speaker\na.wav,one,ann\n")
    finished_fold(tmp_path / "exp" / "ann", [("one", "nine")])
    report = tmp_path / "exp" / "ann" / "eval" / "test-after-default" / "errors.jsonl"
    report.write_text(report.read_text() + "{not json\n")
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--data", str(tmp_path), "--exp", str(tmp_path / "exp"),
                                      "--tabulate"])
    assert bench_module("finetune").main() == 2
    assert capsys.readouterr().err == f"error: {report}:2: not a row of asr.evaluate's report (JSONDecodeError)\n"


def test_import_speed_imports_every_generated_utterance_in_each_case(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the bench writes its corpus
    proc = run_in_process(["import_speed.py", "--files", "40", "--repeats", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.strip("| ").split(" | ") for line in proc.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 5 and all(row[1] == "40" and float(row[2]) > 0 for row in rows)
    default = [row[2] for row in rows if row[0].startswith("NeMo") and "(the default" in row[0]]
    assert proc.stdout.splitlines()[-1] == f"import_utterances_per_second={default[0]}"
    assert not list(tmp_path.iterdir()), "the generated corpus was left behind"


def test_fsdd_copies_pad_and_speed_change_each_clip_as_they_say(clips, tmp_path):
    pad = run_in_process(["fsdd_copies.py", "pad", str(ROOT / "tests" / "data" / "an4" / "clips.jsonl"),
                          str(tmp_path / "pad"), "--seconds", "0.5", "--noise-db", "-60"], tmp_path)
    fast = run_in_process(["fsdd_copies.py", "speed", str(ROOT / "tests" / "data" / "an4" / "clips.jsonl"),
                           str(tmp_path / "fast"), "--factor", "2"], tmp_path)
    assert (pad.returncode, fast.returncode) == (0, 0), pad.stderr + fast.stderr
    assert pad.stdout.splitlines()[-1] == f"copies={len(clips)}"
    padded = read_manifest(tmp_path / "pad" / "manifest.jsonl")
    faster = read_manifest(tmp_path / "fast" / "manifest.jsonl")
    for u, p, f in zip(clips, padded, faster):
        x, y = sf.read(u.audio, dtype="float32")[0], sf.read(p.audio, dtype="float32")[0]
        assert (p.id, p.text, len(y)) == (u.id, u.text, len(x) + 2 * 8000)  # 0.5 s each side at 16 kHz
        assert abs(np.std(y[:8000]) - 1e-3) < 2e-4 and np.allclose(y[8000:-8000], x, atol=5e-3)  # -60 dBFS noise
        assert abs(f.duration - u.duration / 2) < 0.01


def test_fsdd_copies_words_cuts_the_words_asked_for_from_clips_transcribed_exactly(clips, tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fsdd_copies.py"), "words",
                          str(ROOT / "tests" / "data" / "an4" / "clips.jsonl"), str(tmp_path / "w"),
                          "--words", "nine,four,stop"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    cut = read_manifest(tmp_path / "w" / "manifest.jsonl")
    assert {u.text for u in cut} <= {"NINE", "FOUR", "STOP"} and "STOP" in {u.text for u in cut}
    source = {u.id: u for u in clips}
    for u in cut:  # each a word of its clip, far shorter than the clip, named after it
        parent = source[u.id.split("-w")[0]]
        assert u.text in parent.text.split() and 0.1 < u.duration < min(1.0, parent.duration)


def test_fsdd_copies_onsets_time_the_speech_after_the_padding(clips, tmp_path):
    manifest = ROOT / "tests" / "data" / "an4" / "clips.jsonl"
    assert run_in_process(["fsdd_copies.py", "pad", str(manifest), str(tmp_path / "pad"), "--seconds", "0.5"],
                          tmp_path).returncode == 0

    def median(path: Path) -> int:
        proc = run_in_process(["fsdd_copies.py", "onsets", str(path), "-"], tmp_path)
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2 + len(clips) + 1, proc.stdout + proc.stderr
        return int(proc.stdout.splitlines()[-1].removeprefix("median_onset_ms="))

    assert median(tmp_path / "pad" / "manifest.jsonl") == median(manifest) + 500  # faint noise is not speech


def test_import_speed_and_fsdd_copies_on_a_folder_that_will_not_do_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("")
    speed = run_in_process(["import_speed.py", "--files", "4", "--repeats", "1", "--data", str(tmp_path / "empty")],
                           tmp_path)
    copies = run_in_process(["fsdd_copies.py", "pad", str(ROOT / "tests" / "data" / "an4" / "clips.jsonl"),
                             str(tmp_path / "a_file")], tmp_path)
    assert (speed.returncode, speed.stderr) == (2, f"error: {tmp_path / 'empty'}: no metadata.csv or metadata.jsonl "
                                                   "in it or in a folder of it (one per split)\n")
    assert copies.returncode == 2 and copies.stderr.startswith(f"error: {tmp_path / 'a_file'}: cannot make the folder")
    assert len(copies.stderr.splitlines()) == 1


def test_pad_lengths_pads_each_batch_as_it_says_and_ends_in_name_value(tmp_path):
    pad = bench_module("pad_lengths")
    batches = pad.batches_of([1.0, 3.0, 2.0, 0.5, 2.5], 6.0)
    # padded: 3 x 2.0 s and 2 x 3.0 s fit in 6 s, 4 x 2.5 s would not
    assert sorted(map(sorted, batches)) == [[50, 100, 200], [250, 300]]
    assert (pad.padded(130, 64), pad.padded(128, 64), pad.padded(130, 0)) == (192, 128, 130)
    clips = str(ROOT / "tests" / "data" / "an4" / "clips.jsonl")
    proc = run_in_process(["pad_lengths.py", "--train", clips, "--batch-seconds", "4", "--batches", "2", "--rounds",
                           "1", "--multiples", "0", "64"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in proc.stdout.splitlines() if line.startswith("round 1")]
    assert len(runs) == 2 and "multiple of 64 frame(s)" in runs[1], proc.stdout
    assert re.fullmatch(r"pad_speedup=\d+\.\d{3}", proc.stdout.splitlines()[-1]), proc.stdout
    few = run_in_process(["pad_lengths.py", "--train", clips], tmp_path)  # 90 s: one batch
    assert (few.returncode, few.stderr) == (2, f"error: {clips}: 1 batch(es) of --batch-seconds 90.0; the bench needs "
                                               "4 or more (3 to warm up)\n")


def test_pad_lengths_gives_the_model_its_batches_padded():
    pad = bench_module("pad_lengths")
    seen = []

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x, lengths):
            seen.append((x.shape[1], int(lengths.max())))
            return x * self.w, lengths

    batches = [[130, 70], [64], [200, 199, 5], [1], [65]]
    assert pad.run(Model(), batches, 64, torch.float32, 80) > 0
    assert seen == [(192, 130), (64, 64), (256, 200), (64, 1), (128, 65)]


# The benches' usual paths on inputs smaller than AN4 test (a bench must not crash where nothing is wrong)
CLIPS = str(ROOT / "tests" / "data" / "an4" / "clips.jsonl")


def test_serve_load_refuses_a_comparison_with_itself():
    proc = run_in_process(["serve_load.py", "--max-batch", "1"], ROOT)
    assert proc.returncode == 2 and "--max-batch 1 is what the comparison runs" in proc.stderr, proc.stderr


def test_streaming_headline_is_the_model_as_it_runs_not_the_best_row(capsys):
    """streaming_greedy_wer_ratio is the model's own setting over full context, though another row scores better."""
    rows = [{"name": "full context", "latency_s": 0.0, "greedy": 6.0, "default": 5.0, "own": False},
            {"name": "streaming 8:3", "latency_s": 0.482, "greedy": 6.3, "default": 5.0, "own": False},
            {"name": "streaming 3:8 (the model's own)", "latency_s": 0.482, "greedy": 7.2, "default": 5.0, "own": True},
            {"name": "streaming 16:8", "latency_s": 1.002, "greedy": 6.1, "default": 5.0, "own": False}]
    bench_module("streaming").print_tables({"wer": rows}, 5)
    assert capsys.readouterr().out.splitlines()[-1] == "streaming_greedy_wer_ratio=1.200"


def test_biasing_ratios_over_a_perfect_baseline_are_nan_not_a_crash():
    ratio = bench_module("biasing").ratio
    assert ratio(1.0, 2.0) == 0.5 and math.isnan(ratio(0.0, 0.0)) and math.isnan(ratio(3.0, 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (["long_audio.py", "--manifest", CLIPS, "--minutes", "0.25", "--no-hour", "--threads", "1"],
     "part 3 skipped: "),  # 5 clips, --join 12
    (["streaming.py", "--manifest", CLIPS, "--settings", "8:3", "--sections", "throughput,websocket"],
     "streams per core"),  # 5 clips: up to 4 streams; the websocket section needs the model's own 3:8
    (["biasing.py", "--manifest", CLIPS, "--train", CLIPS, "--repeats", "1", "--words", "3"], "grammar ("),
])
def test_benches_run_on_five_clips(tmp_path, args, says):
    proc = run_in_process(args, tmp_path)
    assert proc.returncode in (0, None) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert says in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
def test_behaviour_check_reads_a_manifest_with_relative_audio_paths():
    out = bench_module("behaviour_check").transcripts(Path(CLIPS))
    assert sorted(out) == ["default", "greedy"] and len(out["greedy"]) == 5


def test_pad_lengths_on_a_manifest_that_is_not_json_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    proc = run_in_process(["pad_lengths.py", "--train", str(bad)], tmp_path)
    assert (proc.returncode, proc.stderr.count("\n")) == (2, 1) and proc.stderr.startswith(f"error: {bad}:1: "), proc.stderr



def test_vtln_on_an_empty_manifest_is_one_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = run_in_process(["vtln.py", "--model", str(ROOT / "asr" / "assets" / "an4.pt"), "--manifest", str(empty)],
                          tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {empty}: no utterances in it: nothing to "
                                                                  "measure\n")


def test_transcribe_speed_gives_no_speed_for_audio_it_cannot_read(tmp_path):
    """It printed "9521x real time" for text files named .wav, and exited 0 (an audit)."""
    fake = tmp_path / "a.wav"
    fake.write_text("not audio at all, only text\n" * 20)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio": str(fake), "duration": 1.0, "text": "a"}) + "\n")
    done = run_in_process(["transcribe_speed.py", "--manifest", str(manifest), "--repeats", "1", "--threads", "1"],
                          tmp_path)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1), done.stderr
    assert done.stderr.startswith(f"error: {fake}: "), done.stderr


def test_long_audio_refuses_a_recording_of_no_minutes(tmp_path):
    done = run_in_process(["long_audio.py", "--manifest", CLIPS, "--minutes", "0", "--no-hour", "--threads", "1"],
                          tmp_path)
    assert done.returncode == 2 and "--minutes" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_biasing_with_transcripts_of_no_words_is_one_line(tmp_path):
    """Transcripts with nothing the LM can hold ("42", "...") were a ValueError traceback (an audit)."""
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"id": "a", "audio": "a.wav", "duration": 1.0, "text": "42 ..."}) + "\n")
    done = run_in_process(["biasing.py", "--manifest", CLIPS, "--train", str(train), "--repeats", "1"], tmp_path)
    assert (done.returncode, done.stderr.count("\n")) == (2, 1) and done.stderr.startswith(f"error: {train}: "), \
        done.stderr[-600:]


def test_finetune_last_without_the_folds_files_is_one_line(tiny_checkpoint, clips_manifest, tmp_path):
    fold = tmp_path / "fold"
    (fold / "sets").mkdir(parents=True)
    (fold / "sets" / "test.jsonl").write_text(Path(clips_manifest).read_text())
    done = run_in_process(["finetune_last.py", str(fold), "--an4", ""], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {fold / 'train' / 'last.pt'}: no such file; run the fold through stage 7 first\n"


def test_finetune_last_scores_the_last_epoch_as_the_recipe_scores_best(tiny_checkpoint, clips_manifest, tmp_path):
    """A fold made of a tiny model: last.pt exported in int8 with the fold's decoding and LM, scored on its test set."""
    import shutil

    from asr.checkpoint import export_model

    fold = tmp_path / "fold"
    (fold / "sets").mkdir(parents=True)
    (fold / "train").mkdir()
    rows = [json.loads(line) for line in Path(clips_manifest).read_text().splitlines()]
    (fold / "sets" / "test.jsonl").write_text("".join(
        json.dumps({**r, "audio": str((Path(clips_manifest).parent / r["audio"]).resolve())}) + "\n" for r in rows))
    shutil.copyfile(tiny_checkpoint, fold / "train" / "last.pt")
    shutil.copyfile(ROOT / "asr" / "assets" / "an4_lm.arpa.gz", fold / "model_lm.arpa.gz")
    export_model(tiny_checkpoint, fold / "model.pt", {"decoding": {"decoder": "beam", "beam_size": 4,
                                                                    "lm": "model_lm.arpa.gz", "alpha": 0.3}}, "int8")
    done = run_in_process(["finetune_last.py", str(fold), "--an4", "", "--out", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stderr[-800:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("test: last.pt greedy ") and lines[-1].startswith("finetune_last_wer_default=")
    summary = json.loads((tmp_path / "out" / "test-default" / "summary.json").read_text())
    assert f"{summary['wer']:.2f}" == lines[-1].split("=")[1]
    assert load_decoding(tmp_path / "out" / "model.pt")["lm"] == "model_lm.arpa.gz"


def alpha_fold(fold: Path, tiny_checkpoint: Path, clips_manifest: Path) -> Path:
    """A fine-tune's fold made of a tiny model: model.pt (int8, beam + LM at alpha 0.3), its LM, sets/test.jsonl."""
    from asr.checkpoint import export_model

    (fold / "sets").mkdir(parents=True)
    rows = [json.loads(line) for line in Path(clips_manifest).read_text().splitlines()]
    (fold / "sets" / "test.jsonl").write_text("".join(
        json.dumps({**r, "audio": str((Path(clips_manifest).parent / r["audio"]).resolve())}) + "\n" for r in rows))
    shutil.copyfile(ROOT / "asr" / "assets" / "an4_lm.arpa.gz", fold / "model_lm.arpa.gz")
    export_model(tiny_checkpoint, fold / "model.pt", {"decoding": {"decoder": "beam", "beam_size": 4,
                                                                    "lm": "model_lm.arpa.gz", "alpha": 0.3}}, "int8")
    return fold


def test_finetune_alpha_decodes_each_fold_at_each_alpha_as_asr_evaluate_does(tiny_checkpoint, clips_manifest,
                                                                            tmp_path):
    from asr.evaluate import main as evaluate

    fold = alpha_fold(tmp_path / "exp" / "ann", tiny_checkpoint, clips_manifest)
    an4 = fold / "sets" / "test.jsonl"
    summary = fold / "eval" / "an4-test-before-default" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"wer": 50.0}))
    done = run_in_process(["finetune_alpha.py", "--exp", str(tmp_path / "exp"), "--an4", str(an4),
                           "--alphas", "0.1", "2.0"], tmp_path)
    assert done.returncode == 0, done.stderr[-800:]
    rows = {line.split(" | ")[1]: line.split(" | ")[2:] for line in done.stdout.splitlines() if line.startswith("| ann")}
    assert list(rows) == ["0.1", "0.3 (tuned)", "2.0"]  # the alphas asked for and the fold's own
    for alpha, (test, an4_cell) in [("0.1", rows["0.1"]), ("0.3", rows["0.3 (tuned)"]), ("2.0", rows["2.0"])]:
        with contextlib.redirect_stdout(io.StringIO()) as said:
            assert evaluate(["--model", str(fold / "model.pt"), "--manifest", str(an4), "--alpha", alpha,
                             "--threads", "1", "--quiet"]) == 0
        wer = float(re.match(r"WER=([\d.]+)", said.getvalue()).group(1))
        assert (float(test), an4_cell) == (wer, f"{wer:.2f} ({wer / 50:.2f}x) |"), alpha
    assert done.stdout.splitlines()[-1] == f"mean_heldout_wer_alpha_2.0={float(rows['2.0'][0]):.2f}"


def test_finetune_alpha_without_a_fold_is_one_line(clips_manifest, tmp_path):
    done = run_in_process(["finetune_alpha.py", "--exp", str(tmp_path / "nothing"), "--an4", str(clips_manifest)],
                          tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {tmp_path / 'nothing'}: no fold with a model.pt in it; run bench/finetune.py first\n"


def load_decoding(path: Path) -> dict:
    from asr.checkpoint import load_model

    return load_model(path).metadata["decoding"]
