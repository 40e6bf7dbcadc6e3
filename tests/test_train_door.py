"""asr.train at the door: what it refuses before training (an --out that holds a run, a --resume that
contradicts last.pt, RIRs given as noise), what it says, and its exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr.data import write_manifest
from asr.train import main
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
    assert main([*one_epoch(clips_manifest, out), "--resume"]) == 2
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
