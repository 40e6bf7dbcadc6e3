"""asr.train at the door: what it refuses before training (an --out that holds a run, a --resume that
contradicts last.pt, RIRs given as noise), what it says, and its exit codes."""

from __future__ import annotations

import shutil

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import augment
from asr.audio import SAMPLE_RATE, audio_duration, load_audio
from asr.data import write_manifest
from asr.train import main
from asr.training import TrainConfig, Trainer
from asr.training.checks import RIR_MAX_SECONDS, RunError, check_audio_sources, flag, looks_like_rir
from tests.test_train import metrics, tiny_flags


def one_epoch(clips_manifest, out) -> list[str]:
    return [*tiny_flags(clips_manifest, out), "--epochs", "1", "--no-spec-augment", "--no-speed-perturb"]


@pytest.fixture(scope="module")
def trained(clips_manifest, tmp_path_factory):
    """A folder holding a finished one-epoch tiny run (read it, or copy it, do not train into it)."""
    out = tmp_path_factory.mktemp("door") / "run"
    assert main(one_epoch(clips_manifest, out)) == 0
    return out


def test_an_out_folder_holding_a_run_is_refused_before_any_work(trained, tmp_path, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in trained.iterdir()}
    missing = tmp_path / "nowhere.jsonl"  # reading it would fail differently: the check comes first
    capsys.readouterr()
    assert main(["--train", str(missing), "--dev", str(missing), "--out", str(trained)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(trained) in err and "--resume" in err and "--overwrite" in err and "new or empty" in err
    assert {p.name: p.stat().st_mtime_ns for p in trained.iterdir()} == before


def test_overwrite_starts_the_run_again(clips_manifest, trained, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for p in trained.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    (out / "notes.txt").write_text("mine")
    assert main([*one_epoch(clips_manifest, out), "--overwrite"]) == 0
    assert [r["epoch"] for r in metrics(out)] == [1]  # not 1, 1
    assert (out / "notes.txt").read_text() == "mine"  # only the run's files are removed


def test_an_existing_empty_folder_is_fine(clips_manifest, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(one_epoch(clips_manifest, out)) == 0
    assert [r["epoch"] for r in metrics(out)] == [1]


def test_a_refused_run_leaves_no_empty_folder_behind_but_keeps_one_that_was_there(clips_manifest, tmp_path, capsys):
    """A run refused for its manifests left the --out folder it had made, empty (an audit)."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    there = tmp_path / "there"
    there.mkdir()
    for out in (tmp_path / "new" / "below", there):
        flags = one_epoch(clips_manifest, out)
        flags[flags.index("--train") + 1] = str(empty)
        assert main(flags) == 2
        assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and there.is_dir()


@pytest.mark.parametrize("setting", ["resume", "overwrite"])
def test_what_to_do_with_out_is_refused_in_a_config_file(clips_manifest, trained, tmp_path, capsys, setting):
    """{"resume": true} in a --config file resumed without the run's settings (a 60-epoch default, --hidden 320
    refused as if asked for); what to do with --out goes on the command line, as --out itself does."""
    before = {p.name: p.stat().st_mtime_ns for p in trained.iterdir()}
    config = tmp_path / "conf.json"
    config.write_text(f'{{"{setting}": true}}')
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(trained), "--config",
              str(config)])
    assert e.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--config {config}: unknown setting(s) {setting} " in line and f"--{setting}" in line and "flags only" in line
    assert {p.name: p.stat().st_mtime_ns for p in trained.iterdir()} == before


def test_resume_without_last_pt_is_refused(clips_manifest, tmp_path, capsys):
    out = tmp_path / "fresh"
    assert main([*one_epoch(clips_manifest, out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and str(out / "last.pt") in err
    assert not (out / "metrics.jsonl").exists()


def test_resume_and_overwrite_together_are_refused(trained, capsys):
    capsys.readouterr()
    assert main(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(trained), "--resume", "--overwrite"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert (trained / "last.pt").exists()


def resumable_copy(trained, tmp_path, edit=None) -> Path:
    """A copy of the trained run's folder, its last.pt changed by edit(ckpt) if given."""
    out = tmp_path / "copy"
    out.mkdir()
    for p in trained.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    if edit is not None:
        ckpt = torch.load(out / "last.pt", weights_only=True)
        edit(ckpt)
        torch.save(ckpt, out / "last.pt")
    return out


def test_a_model_too_large_to_build_is_one_line_before_any_work(clips_manifest, tmp_path, capsys):
    """--hidden 1000000 asked for about 10^13 weights: a traceback from the allocator (a review)."""
    out = tmp_path / "huge"
    assert main([*one_epoch(clips_manifest, out), "--hidden", "1000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model_config: about 1") and "parameters" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_resume_with_a_damaged_metrics_file_is_refused_before_training(clips_manifest, trained, tmp_path, capsys):
    """A metrics.jsonl line that is not JSON was found only after the epoch ran (a message naming no file)."""
    out = resumable_copy(trained, tmp_path)
    with open(out / "metrics.jsonl", "a") as f:
        f.write("{bad\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--epochs", "2", "--resume"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --resume: {out / 'metrics.jsonl'}:2: not JSON")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_says_from_where_and_allows_more_epochs(clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path)
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--epochs", "2", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {out / 'last.pt'}: 1 epochs and 0 batches done, step 3" in err
    assert "--epochs 2 (the run was started with --epochs 1)" in err
    assert "warning" not in err
    assert [r["epoch"] for r in metrics(out)] == [1, 2]


@pytest.mark.parametrize("flags, field, saved, given", [
    (["--hidden", "64"], "--hidden", "32", "64"),
    (["--layers", "2"], "--layers", "1", "2"),
    (["--conv-channels", "16"], "--conv-channels", "8", "16"),
    (["--dropout", "0.1"], "--dropout", "0.0", "0.1"),
    (["--chunk-frames", "4"], "--chunk-frames", "0", "4"),
])
def test_resume_refuses_other_model_flags(clips_manifest, trained, tmp_path, capsys, flags, field, saved, given):
    out = resumable_copy(trained, tmp_path)
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{field} {saved}" in err and f"{field} {given}" in err
    assert [r["epoch"] for r in metrics(out)] == [1]


def test_resume_refuses_other_noise_or_rir_sources(clips_manifest, trained, tmp_path, capsys):
    def trained_with_noise(ckpt):
        ckpt["metadata"]["train_config"].update(noise="data/noise/noise.jsonl", rir="data/noise/rir.jsonl")

    out = resumable_copy(trained, tmp_path, trained_with_noise)
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume", "--noise", "", "--rir", ""]) == 2  # left out: the run's
    err = capsys.readouterr().err
    assert "--noise data/noise/noise.jsonl" in err and "synthetic" in err


def test_resume_refuses_another_vocabulary(clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path, lambda ckpt: ckpt["vocab"].pop())  # one character fewer
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume"]) == 2
    assert "vocabulary" in capsys.readouterr().err


def test_resume_refuses_another_training_set_but_not_a_copy_of_it(clips, clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path)
    copy, fewer = tmp_path / "copy.jsonl", tmp_path / "fewer.jsonl"
    write_manifest(copy, clips)
    write_manifest(fewer, clips[:4])
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume", "--train", str(fewer)]) == 2
    err = capsys.readouterr().err
    assert f"--train {fewer}" in err and f"--train {clips_manifest}" in err
    assert main([*one_epoch(clips_manifest, out), "--resume", "--train", str(copy), "--epochs", "2"]) == 0
    assert "the same utterances" in capsys.readouterr().err


def test_resume_warns_of_other_settings(clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path)
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume", "--epochs", "2", "--lr", "0.01", "--seed", "1"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "--lr 0.01" in warnings[0] and "--lr 0.003" in warnings[0] and "--seed 1" in warnings[1]


SHARED_NOISE = Path(__file__).resolve().parents[2] / "shared" / "data" / "noise"


def write_wav(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples.astype(np.float32), SAMPLE_RATE)
    return path


def room_response(seconds: float = 0.8, rt60: float = 0.4, seed: int = 0) -> np.ndarray:
    """A synthetic RIR: silence, a direct-path spike at 10 ms, then noise decaying 60 dB per rt60 seconds."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    h = np.random.default_rng(seed).standard_normal(len(t)) * 0.3 * 10 ** (-3 * t / rt60)
    h[t < 0.01] = 0.0
    h[int(0.01 * SAMPLE_RATE)] = 1.0
    return h


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))


def tap(seconds: float = 0.6, at: float = 0.3) -> np.ndarray:
    """A tap in a quiet room: a short burst mid-file over a faint noise floor (an impulsive noise, not an RIR)."""
    x = noise(seconds) * 0.01
    start = int(at * SAMPLE_RATE)
    x[start:start + 800] += room_response(0.05, rt60=0.02)[:800]
    return x


def test_looks_like_rir():
    assert looks_like_rir(room_response(), "room.wav")
    assert looks_like_rir(room_response(seconds=5.0, rt60=2.0), "hall.wav")
    assert not looks_like_rir(noise(3.0), "hum.wav")
    assert not looks_like_rir(tap(), "tap.wav")
    assert looks_like_rir(noise(3.0), "rir_3.wav") and looks_like_rir(noise(3.0), "impulse_response.wav")
    assert not looks_like_rir(noise(3.0), "stirring.wav")  # "rir" inside a word is no name for one


def test_a_noise_folder_holding_rirs_is_refused(clips_manifest, tmp_path, capsys):
    folder = tmp_path / "noise"
    write_wav(folder / "hum.wav", noise(3.0))
    write_wav(folder / "rooms" / "hall.wav", room_response())
    out, missing = tmp_path / "run", tmp_path / "nowhere.jsonl"  # refused before the manifests are read
    assert main([*one_epoch(missing, out), "--noise", str(folder), "--noise-prob", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hall.wav" in err and "--rir" in err and str(folder) in err
    assert not (out / "metrics.jsonl").exists()


def test_says_how_many_noise_recordings_and_rirs_it_loaded(clips_manifest, tmp_path, capsys):
    for i in range(2):
        write_wav(tmp_path / "noise" / f"n{i}.wav", noise(2.0, seed=i))
    write_wav(tmp_path / "rirs" / "room.wav", room_response())
    flags = [*one_epoch(clips_manifest, tmp_path / "run"), "--noise", str(tmp_path / "noise"), "--noise-prob", "0.5",
             "--rir", str(tmp_path / "rirs"), "--rir-prob", "0.5"]
    assert main(flags) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "noise recordings" in line]
    assert lines == [f"augmentation: 2 noise recordings from {tmp_path / 'noise'}, "
                     f"1 room impulse responses from {tmp_path / 'rirs'}, "
                     "channel: clip p=0.05, telephone p=0.15, codec p=0.15"]


@pytest.mark.skipif(not SHARED_NOISE.is_dir(), reason="no ../shared/data/noise")
def test_the_shared_rirs_are_told_from_the_shared_noise():
    for manifest, is_rir in (("rir.jsonl", True), ("noise.jsonl", False)):
        for path in augment.read_audio_list(SHARED_NOISE / manifest):
            if audio_duration(path) <= RIR_MAX_SECONDS or is_rir:
                assert looks_like_rir(load_audio(path), path.name) == is_rir, path


@pytest.mark.skipif(not SHARED_NOISE.is_dir(), reason="no ../shared/data/noise")
def test_the_shared_noise_folder_as_a_whole_is_refused_with_the_way_on():
    cfg = TrainConfig(train="t.jsonl", dev="d.jsonl", out="o", noise=str(SHARED_NOISE))
    with pytest.raises(RunError, match=r"16 of its 48 recordings .* --rir .*rir\.jsonl"):
        check_audio_sources(cfg, augment.read_audio_list(cfg.noise), [])


def test_settings_read_as_their_flags():
    assert flag("batch_seconds", 6.0) == "--batch-seconds 6.0"
    assert flag("snr_db", [0.0, 10.0]) == "--snr-db 0.0 10.0"
    assert flag("noise", "") == "no --noise (synthetic coloured noise)"
    assert flag("amp", True) == "--amp" and flag("amp", False) == "no --amp"
    assert flag("speed_perturb", False) == "--no-speed-perturb"
    assert flag("speed_perturb", True) == "no --no-speed-perturb (speed perturbation)"


def test_bad_resume_sources_and_tokenizers_are_one_line(clips_manifest, tiny_checkpoint, tmp_path, capsys):
    """A model without training state (a best.pt) or a corrupt file as last.pt, and a missing or corrupt
    tokenizer: one line, exit 2 (they were tracebacks)."""
    from asr.train import main

    base = ["--train", str(clips_manifest), "--dev", str(clips_manifest), "--hidden", "16", "--layers", "1",
            "--epochs", "1", "--num-workers", "0"]
    weights_only, corrupt = tmp_path / "weights_only", tmp_path / "corrupt"
    weights_only.mkdir()
    corrupt.mkdir()
    shutil.copy(tiny_checkpoint, weights_only / "last.pt")
    (corrupt / "last.pt").write_text("garbage\n")
    cases = [
        (["--out", str(weights_only), "--resume"], "holds a model but no training state"),
        (["--out", str(corrupt), "--resume"], "not a readable checkpoint"),
        (["--out", str(tmp_path / "t1"), "--tokenizer", str(tmp_path / "missing.model")], "cannot read the tokenizer"),
        (["--out", str(tmp_path / "t2"), "--tokenizer", str(corrupt / "last.pt")], "not a SentencePiece model"),
    ]
    for flags, message in cases:
        assert main(base + flags) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert err and message in err[-1] and err[-1].startswith("error: "), (flags, err)


def test_it_says_how_it_uses_the_machine_and_takes_what_is_asked(clips_manifest, tmp_path, capsys, monkeypatch):
    import asr.train

    monkeypatch.setattr(asr.train, "usable_cores", lambda: 8)
    flags = [*one_epoch(clips_manifest, tmp_path / "a")]
    flags[flags.index("--num-workers") + 1] = "auto"
    try:
        assert main(flags) == 0
    finally:
        torch.set_num_threads(1)  # as the suite runs (conftest)
    line = next(li for li in capsys.readouterr().err.splitlines() if li.startswith("machine: "))
    assert line.startswith("machine: 8 usable cores / 1 process(es) -> 6 torch thread(s), 2 DataLoader worker(s); ")
    assert main([*one_epoch(clips_manifest, tmp_path / "b"), "--threads", "1", "--precision", "fp32"]) == 0
    line = next(li for li in capsys.readouterr().err.splitlines() if li.startswith("machine: "))
    assert line.endswith("-> 1 torch thread(s), 0 DataLoader worker(s); precision fp32 (as asked)")
    bf16 = [*one_epoch(clips_manifest, tmp_path / "c"), "--precision", "bf16"]
    assert main(bf16) == 0
    capsys.readouterr()
    assert main([*bf16, "--precision", "auto", "--resume", "--epochs", "2"]) == 0  # auto: the run's own choice
    line = next(li for li in capsys.readouterr().err.splitlines() if li.startswith("machine: "))
    assert line.endswith("precision bf16 (the resumed run's)")


def test_resume_refuses_other_frozen_blocks(clips_manifest, trained, tiny_checkpoint, tmp_path, capsys):
    def fine_tuned_with_one_block_frozen(ckpt):
        ckpt["metadata"]["train_config"].update(init=str(tiny_checkpoint), freeze_bottom=1)

    out = resumable_copy(trained, tmp_path, fine_tuned_with_one_block_frozen)
    capsys.readouterr()
    assert main([*one_epoch(clips_manifest, out), "--resume", "--freeze-bottom", "0"]) == 2
    err = capsys.readouterr().err
    assert "--freeze-bottom 1" in err and "--freeze-bottom 0" in err and len(err.strip().splitlines()) == 1, err


def not_finite_for(monkeypatch, steps: int) -> None:
    """Make the loss of the next `steps` optimiser steps NaN (one batch a step): those steps are skipped."""
    loss_sum, calls = Trainer._loss_sum, []

    def not_finite_at_first(self, batch):
        calls.append(batch)
        return loss_sum(self, batch) * (float("nan") if len(calls) <= steps else 1.0)

    monkeypatch.setattr(Trainer, "_loss_sum", not_finite_at_first)


@pytest.mark.parametrize("skipped, code", [(3, 1), (1, 0)])
def test_a_run_whose_every_step_was_skipped_says_so_and_fails(clips_manifest, tmp_path, capsys, monkeypatch, skipped,
                                                              code):
    """Every step's loss not finite: the run trained nothing (step=0, train_loss=None) and exited 0 without a word."""
    not_finite_for(monkeypatch, skipped)  # of the run's 3
    out = tmp_path / "run"
    assert main(one_epoch(clips_manifest, out)) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert [(r["step"], r["skipped_steps"]) for r in metrics(out)] == [(3 - skipped, skipped)]
    if code:
        assert err[-1].startswith("error: no optimiser step trained: all 3 steps were skipped"), err[-1]
    else:
        assert not any(line.startswith("error") for line in err)


def test_a_resumed_run_whose_every_step_was_skipped_fails_though_it_trained_before(clips_manifest, trained, tmp_path,
                                                                                 capsys, monkeypatch):
    out = resumable_copy(trained, tmp_path)
    not_finite_for(monkeypatch, 3)  # all of epoch 2's
    assert main([*one_epoch(clips_manifest, out), "--epochs", "2", "--resume"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no optimiser step trained: all 3 ")
    assert [(r["step"], r["skipped_steps"]) for r in metrics(out)] == [(3, 0), (3, 3)]
