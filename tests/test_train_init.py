"""asr.train --init: fine-tuning a checkpoint (the streaming model starts from the full-context one)."""

from __future__ import annotations

import dataclasses

import torch

from asr.checkpoint import load_model, model_state, read_checkpoint, save_atomic
from asr.features import FeatureConfig, Frontend
from asr.text import CharVocab
from asr.train import main
from tests.test_train import metrics, tiny_flags


def one_epoch(clips_manifest, out) -> list[str]:
    return [*tiny_flags(clips_manifest, out), "--epochs", "1", "--no-spec-augment", "--no-speed-perturb"]


def v1_checkpoint(build_recognizer, path):
    """A tiny checkpoint with v1 features (absolute floor) and a front end of its own statistics."""
    rec = build_recognizer()
    rec.frontend = Frontend(FeatureConfig(relative_floor=0.0), torch.full((80,), -3.0), torch.full((80,), 2.0))
    save_atomic(model_state(rec), path)
    return rec


def test_init_starts_from_the_checkpoint_and_keeps_its_features(build_recognizer, clips_manifest, tmp_path):
    init = v1_checkpoint(build_recognizer, tmp_path / "init.pt")
    out = tmp_path / "run"
    flags = [*one_epoch(clips_manifest, out), "--init", str(tmp_path / "init.pt"), "--chunk-frames", "4",
             "--right-context-frames", "2", "--hidden", "64", "--lr", "1e-9"]  # --hidden loses to the checkpoint's
    assert main(flags) == 0
    tuned = load_model(out / "best.pt")
    assert tuned.model.cfg == dataclasses.replace(init.model.cfg, chunk_frames=4, right_context_frames=2)
    assert tuned.frontend.cfg.relative_floor == 0.0 and torch.equal(tuned.frontend.mean, init.frontend.mean)
    for name, value in init.model.state_dict().items():  # a learning rate of 1e-9: the weights barely move
        assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-6), name
    assert read_checkpoint(out / "best.pt")["metadata"]["init"] == str(tmp_path / "init.pt")
    assert [r["epoch"] for r in metrics(out)] == [1]


def test_init_features_new_moves_the_weights_to_this_runs_front_end(build_recognizer, clips_manifest, tmp_path):
    init = v1_checkpoint(build_recognizer, tmp_path / "init.pt")
    out = tmp_path / "run"
    flags = [*one_epoch(clips_manifest, out), "--init", str(tmp_path / "init.pt"), "--init-features", "new",
             "--lr", "1e-9"]
    assert main(flags) == 0
    tuned = load_model(out / "best.pt")
    assert tuned.frontend.cfg == FeatureConfig()  # today's level-independent features, not the checkpoint's v1 ones
    assert not torch.equal(tuned.frontend.mean, init.frontend.mean)  # normalised on --train, not the -3.0 it had
    for name, value in init.model.state_dict().items():  # the weights start from the checkpoint's
        assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-6), name
    assert main([*flags, "--resume", "--init-features", "init"]) == 2  # a resume cannot switch it


def test_init_resumes_with_its_own_features(build_recognizer, clips_manifest, tmp_path):
    v1_checkpoint(build_recognizer, tmp_path / "init.pt")
    out = tmp_path / "run"
    flags = [*one_epoch(clips_manifest, out), "--init", str(tmp_path / "init.pt"), "--chunk-frames", "4"]
    assert main(flags) == 0
    assert main([*flags, "--resume", "--epochs", "2"]) == 0
    assert [r["epoch"] for r in metrics(out)] == [1, 2]


def test_right_context_without_chunks_is_refused(clips_manifest, tmp_path, capsys):
    try:
        main([*one_epoch(clips_manifest, tmp_path / "run"), "--right-context-frames", "2"])
    except SystemExit as e:
        assert e.code == 2
    assert "--right-context-frames needs --chunk-frames" in capsys.readouterr().err


def test_an_init_that_is_not_a_checkpoint_is_one_error_line(clips_manifest, tmp_path, capsys):
    (tmp_path / "init.pt").write_text("not a checkpoint")
    assert main([*one_epoch(clips_manifest, tmp_path / "run"), "--init", str(tmp_path / "init.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "init.pt" in err


def test_an_init_with_another_vocabulary_is_refused(build_recognizer, clips_manifest, tmp_path, capsys):
    """A checkpoint whose output classes mean other characters (as many of them, so its weights would load
    without complaint) cannot start this run: one error line, and no training."""
    rec = build_recognizer()
    tokens = list(rec.vocab.tokens)
    tokens[3], tokens[4] = tokens[4], tokens[3]  # "a" and "b" swapped
    rec.vocab = CharVocab(tokens)
    save_atomic(model_state(rec), tmp_path / "init.pt")
    out = tmp_path / "run"
    assert main([*one_epoch(clips_manifest, out), "--init", str(tmp_path / "init.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "init.pt" in err and "vocabulary" in err
    assert not (out / "best.pt").exists()
