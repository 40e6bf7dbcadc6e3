"""asr.train at the door: what it refuses before training (an --out that holds a run, a --resume that
contradicts last.pt, RIRs given as noise), what it says, and its exit codes."""

from __future__ import annotations

import json

import pytest

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
