"""asr.train --resume takes the run's own settings: a path is the same path however it is written, and a
setting left out is the run's (from last.pt), never the flag's default; one given that differs is still said."""

from __future__ import annotations

import os

import torch

from asr.data import write_manifest
from asr.train import main, parse_args
from tests.test_train import assert_same_weights, metrics
from tests.test_train_door import noise, one_epoch, resumable_copy, trained, write_wav  # noqa: F401 (a fixture)


def test_resume_takes_a_relative_path_to_the_run_s_noise_for_the_same(clips_manifest, trained, tmp_path, monkeypatch,
                                                                      capsys):
    for i in range(2):
        write_wav(tmp_path / "noise" / f"n{i}.wav", noise(2.0, seed=i))
    noise_dir = tmp_path / "noise"

    def trained_with_noise(ckpt):
        ckpt["metadata"]["train_config"].update(noise=str(noise_dir), noise_prob=0.4)

    out = resumable_copy(trained, tmp_path, trained_with_noise)
    monkeypatch.chdir(tmp_path / "copy")
    capsys.readouterr()
    flags = [*one_epoch(clips_manifest, out), "--epochs", "2", "--resume", "--noise-prob", "0.4"]
    assert main([*flags, "--noise", os.path.join("..", "noise")]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "warning" not in err and "--noise" not in err
    assert [r["epoch"] for r in metrics(out)] == [1, 2]


def test_resume_refuses_another_noise_folder_however_it_is_written(clips_manifest, trained, tmp_path, capsys):
    for name in ("noise", "other"):
        write_wav(tmp_path / name / "n.wav", noise(2.0))
    out = resumable_copy(trained, tmp_path, lambda ckpt: ckpt["metadata"]["train_config"].update(
        noise=str(tmp_path / "noise"), noise_prob=0.4))
    capsys.readouterr()
    other = str(tmp_path / "noise" / ".." / "other")
    assert main([*one_epoch(clips_manifest, out), "--resume", "--noise-prob", "0.4", "--noise", other]) == 2
    assert f"--noise {tmp_path / 'noise'}" in capsys.readouterr().err


def test_settings_left_out_on_resume_are_the_run_s_own(clips_manifest, trained, tmp_path, capsys):
    """The run was started with a tiny model, --batch-seconds 6, one epoch and no augmentation: `--resume` with
    the paths alone goes on with all of that, to the bit of a run that was never stopped."""
    whole = tmp_path / "whole"
    assert main([*one_epoch(clips_manifest, whole), "--epochs", "2", "--max-minutes", "30"]) == 0
    out = resumable_copy(trained, tmp_path, lambda ckpt: ckpt["metadata"]["train_config"].update(max_minutes=30.0))
    paths = ["--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(out), "--resume"]
    cfg = parse_args(paths)
    assert (cfg.batch_seconds, cfg.epochs, cfg.max_minutes, cfg.lr) == (6.0, 1, 30.0, 3e-3)
    assert (cfg.model.hidden, cfg.model.layers, cfg.speed_perturb, cfg.spec_augment) == (32, 1, False, False)
    capsys.readouterr()
    assert main([*paths, "--epochs", "2"]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "warning" not in err and "--batch-seconds" not in err and "--max-minutes" not in err
    assert "note: --epochs 2 (the run was started with --epochs 1)" in err
    saved = torch.load(out / "last.pt", weights_only=True)["metadata"]["train_config"]
    assert (saved["batch_seconds"], saved["max_minutes"]) == (6.0, 30.0)
    assert [(r["epoch"], r["step"]) for r in metrics(out)] == [(r["epoch"], r["step"]) for r in metrics(whole)]
    assert_same_weights(out / "last.pt", whole / "last.pt")


def test_settings_given_on_resume_still_win_and_are_said(clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path)
    paths = ["--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(out), "--resume"]
    assert parse_args([*paths, "--batch-seconds", "5"]).batch_seconds == 5.0
    capsys.readouterr()
    assert main([*paths, "--epochs", "2", "--batch-seconds", "5"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --batch-seconds 5.0 (the run was started with --batch-seconds 6.0): the rest of it "
                        "trains so"]
    assert main([*paths, "--hidden", "64"]) == 2  # a model flag that differs is refused, as before
    assert "--hidden 32" in capsys.readouterr().err


def best_on_the_old_dev_set(ckpt):
    ckpt["train_state"]["best_dev_wer"] = 0.0  # a WER that no epoch of the tiny model reaches


def dev_flags(clips_manifest, out, dev) -> list[str]:
    flags = [*one_epoch(clips_manifest, out), "--epochs", "2", "--resume"]
    flags[flags.index("--dev") + 1] = str(dev)
    return flags


def test_resume_on_another_dev_set_chooses_best_pt_among_its_epochs_alone(clips, clips_manifest, trained, tmp_path,
                                                                         capsys):
    """The run's best dev WER, scored on its own dev set, was compared with the other set's WERs: best.pt could
    stay an epoch that no WER on the new set was ever measured for (here: never replaced)."""
    out = resumable_copy(trained, tmp_path, best_on_the_old_dev_set)
    fewer = tmp_path / "fewer.jsonl"
    write_manifest(fewer, clips[:4])
    capsys.readouterr()
    assert main(dev_flags(clips_manifest, out, fewer)) == 0
    best = torch.load(out / "best.pt", weights_only=True)["metadata"]
    assert (best["epochs"], best["dev_manifest"]) == (2, str(fewer))
    assert round(best["best_dev_wer"], 3) == metrics(out)[-1]["dev_wer"]
    notes = [line for line in capsys.readouterr().err.splitlines() if "--dev" in line]
    assert len(notes) == 1 and f"--dev {fewer}" in notes[0] and f"--dev {clips_manifest}" in notes[0], notes
    assert "0.00%" in notes[0] and notes[0].startswith("note: "), notes


def test_resume_on_a_copy_of_the_dev_set_keeps_the_run_s_best(clips, clips_manifest, trained, tmp_path, capsys):
    out = resumable_copy(trained, tmp_path, best_on_the_old_dev_set)
    copy = tmp_path / "copy.jsonl"
    write_manifest(copy, clips)
    capsys.readouterr()
    assert main(dev_flags(clips_manifest, out, copy)) == 0
    assert "--dev" not in capsys.readouterr().err
    assert torch.load(out / "best.pt", weights_only=True)["metadata"]["epochs"] == 1  # 0.00% on the same utterances
