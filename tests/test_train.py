"""asr.train: a tiny run on the five clips learns; stopping and resuming reproduces an uninterrupted run."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal

import pytest
import torch

from asr.checkpoint import load_model
from asr.data import Utterance, write_manifest
from asr.model import ModelConfig
from asr.text import CharVocab
from asr.train import main, parse_args
from asr.training import trainer as trainer_module
from asr.training import (TrainConfig, Trainer, build_augmentations, ctc_feasible, fastest_speed_factor,
                          usable_utterances)

EPOCHS = 3  # 3 batches an epoch at batch_seconds=6: 9 steps in all


def tiny_flags(clips_manifest, out) -> list[str]:
    """Tiny model, constant learning rate, augmentation on (seeded) but no noise, no dropout, fp32 (auto precision
    is measured, and may come out otherwise in another run): deterministic."""
    return [
        "--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(out),
        "--hidden", "32", "--layers", "1", "--conv-channels", "8", "--dropout", "0",
        "--epochs", str(EPOCHS), "--batch-seconds", "6", "--lr", "3e-3", "--warmup-steps", "0",
        "--final-lr-ratio", "1", "--noise-prob", "0", "--num-workers", "0", "--seed", "0",
        "--precision", "fp32",  # runs compared with each other: not left to a measurement that could differ
    ]


def tiny_config(clips_manifest, out) -> TrainConfig:
    return parse_args(tiny_flags(clips_manifest, out))


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def logged(out) -> list[dict]:
    """metrics.jsonl's rows without what depends on the clock (elapsed time, audio seconds a second)."""
    return [{k: v for k, v in row.items() if k not in ("elapsed_minutes", "audio_seconds_per_second")}
            for row in metrics(out)]


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    differ = {k: float((wa[k].double() - wb[k].double()).abs().max()) for k in wa if not torch.equal(wa[k], wb[k])}
    assert not differ, f"{len(differ)} tensors differ, by up to {max(differ.values()):.2e} ({max(differ, key=differ.get)})"


@pytest.fixture(scope="module")
def uninterrupted(clips_manifest, tmp_path_factory):
    """Output folder of a tiny run of EPOCHS epochs without a stop."""
    out = tmp_path_factory.mktemp("train") / "uninterrupted"
    result = Trainer(tiny_config(clips_manifest, out)).run()
    assert result["stopped"] == "done"
    return out


def test_tiny_run_learns_and_writes_its_files(uninterrupted):
    rows = metrics(uninterrupted)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["step"] for r in rows] == [3, 6, 9]
    assert rows[-1]["train_loss"] < 0.75 * rows[0]["train_loss"]
    assert all(r["skipped_steps"] == 0 and 0 <= r["dev_wer"] for r in rows)
    for name in ("last.pt", "best.pt"):
        rec = load_model(uninterrupted / name)
        assert rec.model.cfg.hidden == 32 and rec.model.cfg.layers == 1
        assert rec.metadata["train_config"]["epochs"] == EPOCHS
    assert load_model(uninterrupted / "last.pt").metadata["steps"] == 9
    assert "train_state" in torch.load(uninterrupted / "last.pt", weights_only=True)
    assert "train_state" not in torch.load(uninterrupted / "best.pt", weights_only=True)
    if importlib.util.find_spec("matplotlib"):
        assert (uninterrupted / "curves.png").stat().st_size > 0


def test_resume_after_the_last_epoch_continues_counters_and_weights(clips_manifest, tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    flags = [
        "--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(out),
        "--hidden", "32", "--layers", "1", "--conv-channels", "8", "--dropout", "0", "--batch-seconds", "6",
        "--lr", "3e-3", "--warmup-steps", "0", "--final-lr-ratio", "1", "--noise-prob", "0", "--num-workers", "0",
        "--precision", "fp32",  # as the uninterrupted run it is compared with
    ]
    assert main([*flags, "--epochs", "2"]) == 0
    assert [(r["epoch"], r["step"]) for r in metrics(out)] == [(1, 3), (2, 6)]
    assert main([*flags, "--epochs", str(EPOCHS), "--resume"]) == 0
    assert f"resuming {out / 'last.pt'}: 2 epochs and 0 batches done, step 6" in capsys.readouterr().err
    assert [(r["epoch"], r["step"]) for r in metrics(out)] == [(r["epoch"], r["step"]) for r in metrics(uninterrupted)]
    assert_same_weights(out / "last.pt", uninterrupted / "last.pt")
    # nothing left to do: a second resume trains no more
    assert main([*flags, "--epochs", str(EPOCHS), "--resume"]) == 0
    assert len(metrics(out)) == EPOCHS
    assert_same_weights(out / "last.pt", uninterrupted / "last.pt")


def test_stop_by_signal_mid_epoch_then_resume(clips_manifest, tmp_path, uninterrupted):
    cfg = tiny_config(clips_manifest, tmp_path / "run")
    trainer = Trainer(cfg)
    train_step = trainer.train_step

    def step_then_interrupt(batch):
        loss = train_step(batch)
        if trainer.state["step"] == 4:  # the first batch of epoch 2
            # what Ctrl-C does; the trainer saves and stops (never interrupt pytest itself if no handler is set)
            assert signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    trainer.train_step = step_then_interrupt
    result = trainer.run()
    assert result["stopped"] == "signal"
    assert (result["epoch"], result["batch_in_epoch"], result["step"]) == (1, 1, 4)
    assert len(metrics(tmp_path / "run")) == 1  # epoch 2 is not finished

    resumed = Trainer(dataclasses.replace(cfg, resume=True))
    assert (resumed.state["epoch"], resumed.state["batch_in_epoch"], resumed.state["step"]) == (1, 1, 4)
    assert resumed.run()["stopped"] == "done"
    # every row as the uninterrupted run logged it: epoch 2's train_loss is the mean over all its steps, the one
    # taken before the stop included
    assert logged(tmp_path / "run") == logged(uninterrupted)
    assert_same_weights(tmp_path / "run" / "last.pt", uninterrupted / "last.pt")


def test_a_run_killed_between_its_metrics_row_and_last_pt_resumes_without_a_second_row(clips_manifest, tmp_path,
                                                                                       uninterrupted, capsys):
    cfg = tiny_config(clips_manifest, tmp_path / "run")
    trainer = Trainer(cfg)
    save = trainer.save

    def killed_before_last_pt_of_epoch_2(path, train_state=None):
        if path.name == "last.pt" and trainer.state["epoch"] == 2:
            raise SystemExit("killed")  # as SIGKILL (the OOM killer, a scheduler's hard kill) would, at that moment
        save(path, train_state)

    trainer.save = killed_before_last_pt_of_epoch_2
    with pytest.raises(SystemExit):
        trainer.run()
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]  # epoch 2's row, but last.pt is epoch 1's

    assert Trainer(dataclasses.replace(cfg, resume=True)).run()["stopped"] == "done"  # epoch 2 is trained again
    assert "metrics.jsonl: dropped the row of epoch 2, which last.pt does not hold" in capsys.readouterr().err
    assert logged(tmp_path / "run") == logged(uninterrupted)  # one row an epoch, as uninterrupted
    assert_same_weights(tmp_path / "run" / "last.pt", uninterrupted / "last.pt")


class Clock:
    """Stands in for the time module of asr.training.trainer: time passes only when a test moves it."""

    def __init__(self):
        self.now = 0.0

    def time(self) -> float:
        return self.now


def ten_seconds_a_step(trainer: Trainer, clock: Clock) -> None:
    """Make every optimiser step of the trainer move the clock on by 10 s."""
    train_step = trainer.train_step

    def step(batch):
        clock.now += 10.0
        return train_step(batch)

    trainer.train_step = step


def test_stop_by_the_time_limit_mid_epoch_then_resume(clips_manifest, tmp_path, uninterrupted, monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    out = tmp_path / "run"
    trainer = Trainer(parse_args([*tiny_flags(clips_manifest, out), "--max-minutes", "1"]))
    ten_seconds_a_step(trainer, clock)
    result = trainer.run()
    assert result["stopped"] == "time limit"
    assert (result["epoch"], result["batch_in_epoch"], result["step"]) == (2, 1, 7)  # 70 s > 60 s: mid epoch 3
    assert len(metrics(out)) == 2  # epoch 3 is not finished

    # resumed with the same budget, it is spent: a normal end (exit 0), nothing more trained
    assert main([*tiny_flags(clips_manifest, out), "--max-minutes", "1", "--resume"]) == 0
    assert "stopped=time limit" in capsys.readouterr().out
    state = torch.load(out / "last.pt", weights_only=True)["train_state"]
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (2, 1, 7)

    # with a larger budget it ends as the uninterrupted run did
    assert main([*tiny_flags(clips_manifest, out), "--max-minutes", "2", "--resume"]) == 0
    assert logged(out) == logged(uninterrupted)
    assert_same_weights(out / "last.pt", uninterrupted / "last.pt")


def test_a_time_limit_reached_on_the_last_batch_of_an_epoch_ends_that_epoch(clips_manifest, tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    trainer = Trainer(parse_args([*tiny_flags(clips_manifest, tmp_path / "run"), "--max-minutes", "0.95"]))
    ten_seconds_a_step(trainer, clock)
    result = trainer.run()  # the 6th step, the last of epoch 2, ends at 60 s > 57 s
    assert (result["stopped"], result["epoch"], result["batch_in_epoch"], result["step"]) == ("time limit", 2, 0, 6)
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]  # epoch 2 was validated and logged


def test_resumes_with_the_default_dropout_are_bit_identical(clips_manifest, tmp_path, monkeypatch):
    """Dropout draws from torch's global RNG (so does the DataLoader, once an epoch): last.pt keeps its state."""
    flags = [*tiny_flags(clips_manifest, tmp_path / "run"), "--dropout", str(ModelConfig().dropout)]
    assert main([*flags, "--out", str(tmp_path / "whole")]) == 0
    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    assert main([*flags, "--epochs", "1"]) == 0  # stops at an epoch's end (a constant learning rate)
    trainer = Trainer(parse_args([*flags, "--resume", "--max-minutes", "0.25"]))  # 15 s: stops after 2 steps
    ten_seconds_a_step(trainer, clock)
    assert (trainer.run()["step"], trainer.state["batch_in_epoch"]) == (5, 2)  # in the middle of epoch 2
    assert main([*flags, "--resume", "--max-minutes", "0"]) == 0  # left out, the run's own 0.25 would stop it
    assert_same_weights(tmp_path / "run" / "last.pt", tmp_path / "whole" / "last.pt")


def test_ctc_feasible_at_the_fastest_speed():
    vocab = CharVocab()

    def utt(seconds, text):
        return Utterance("u", "/nowhere.wav", seconds, text)

    # 0.435 s at speed 1.1: 6327 samples -> 40 frames -> 10 output frames; at speed 1.0: 44 frames -> 11
    assert ctc_feasible(utt(0.435, "abcdefghij"), vocab, fastest_speed=1.1)
    assert not ctc_feasible(utt(0.435, "abcdefghijk"), vocab, fastest_speed=1.1)  # 11 tokens
    assert ctc_feasible(utt(0.435, "abcdefghijk"), vocab, fastest_speed=1.0)  # unperturbed audio holds them
    assert not ctc_feasible(utt(0.435, "aabcdefghi"), vocab, fastest_speed=1.1)  # "aa" needs a blank between
    assert not ctc_feasible(utt(0.1, "RUBOUT G M E F THREE NINE"), vocab)
    assert ctc_feasible(utt(4.0, "RUBOUT G M E F THREE NINE"), vocab)
    assert not ctc_feasible(utt(4.0, "123 ..."), vocab)  # nothing left to learn


def test_feasibility_is_judged_at_the_fastest_speed_the_run_trains_with(clips, tmp_path):
    manifest = tmp_path / "train.jsonl"
    # the 0.8 s clip has 21 output frames at speed 1.0 and 19 at 1.1: 20 tokens fit only without perturbation
    write_manifest(manifest, [*clips[:2], dataclasses.replace(clips[2], id="tight", text="STOP STOP STOP STOPS")])
    cfg = TrainConfig(train=str(manifest), dev=str(manifest), out=str(tmp_path / "out"), num_workers=0)
    plain = dataclasses.replace(cfg, speed_perturb=False)
    assert "tight" in [u.id for u in Trainer(plain).train_utts]
    assert "tight" not in [u.id for u in Trainer(cfg).train_utts]
    speed_perturb = build_augmentations(cfg)[0][0]
    assert fastest_speed_factor(cfg) == max(speed_perturb.factors) == 1.1
    assert fastest_speed_factor(plain) == 1.0


def test_usable_utterances_drops_missing_audio_and_impossible_transcripts(clips, tmp_path, capsys):
    too_long = dataclasses.replace(clips[2], id="long", text="STOP " * 40)  # 0.8 s of audio, 200 characters
    missing = dataclasses.replace(clips[0], id="gone", audio=str(tmp_path / "gone.flac"))
    kept = usable_utterances([*clips, too_long, missing], CharVocab(), "train.jsonl")
    assert kept == clips
    err = capsys.readouterr().err
    assert "gone.flac not found" in err and "kept 5 of 7" in err


def test_trainer_skips_unusable_utterances(clips, tmp_path):
    manifest = tmp_path / "train.jsonl"
    write_manifest(manifest, [*clips[:2], dataclasses.replace(clips[2], id="long", text="STOP " * 40)])
    trainer = Trainer(TrainConfig(train=str(manifest), dev=str(manifest), out=str(tmp_path / "out")))
    assert [u.id for u in trainer.train_utts] == [clips[0].id, clips[1].id]


def test_no_usable_utterances_is_an_error(clips, tmp_path, capsys):
    manifest = tmp_path / "train.jsonl"
    write_manifest(manifest, [dataclasses.replace(clips[2], text="STOP " * 40)])
    fp32 = ["--precision", "fp32"]  # no measuring of bf16: the manifests are the point
    assert main(["--train", str(manifest), "--dev", str(manifest), "--out", str(tmp_path / "out"), *fp32]) == 2
    assert "no usable utterances" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert main(["--train", str(bad), "--dev", str(bad), "--out", str(tmp_path / "out"), *fp32]) == 2
    assert f"{bad}:1: not JSON" in capsys.readouterr().err


def test_flags_become_the_config(tmp_path):
    cfg = parse_args(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--hidden", "48",
                      "--layers", "2", "--snr-db", "0", "10", "--no-speed-perturb", "--epochs", "7", "--lr", "0.01"])
    assert (cfg.model.hidden, cfg.model.layers, cfg.epochs, cfg.lr) == (48, 2, 7, 0.01)
    assert cfg.snr_db == (0.0, 10.0) and not cfg.speed_perturb and cfg.spec_augment
    assert cfg.model.conv_channels == TrainConfig.__dataclass_fields__["model"].default_factory().conv_channels


def test_speed_factors_are_the_runs_and_its_fastest_judges_feasibility(tmp_path):
    paths = ["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--precision", "fp32"]  # no measuring
    cfg = parse_args([*paths, "--speed-factors", "0.8", "1.0", "1.25"])
    assert cfg.speed_factors == (0.8, 1.0, 1.25)
    assert build_augmentations(cfg)[0][0].factors == (0.8, 1.0, 1.25)
    assert fastest_speed_factor(cfg) == 1.25
    assert parse_args(paths).speed_factors == (0.9, 1.0, 1.1)  # the default as before


@pytest.mark.parametrize("value", ["0", "-1", "3", "nan", "x"])
def test_absurd_speed_factors_are_one_line(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        parse_args(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--speed-factors", "1.0", value])
    assert e.value.code == 2
    assert "--speed-factors" in capsys.readouterr().err


def test_a_microphones_colour_and_an_editors_trim_come_after_the_noise_and_before_the_line(tmp_path):
    from asr import augment

    paths = ["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--precision", "fp32"]  # no measuring
    wave = build_augmentations(parse_args([*paths, "--eq-prob", "0.5", "--trim-prob", "0.25"]))[0]
    kinds = [type(a) for a in wave]
    assert kinds.index(augment.AddNoise) + 1 == kinds.index(augment.Equalize) == kinds.index(augment.Trim) - 1
    assert kinds.index(augment.Trim) + 1 == kinds.index(augment.Clip)
    assert (wave[kinds.index(augment.Equalize)].p, wave[kinds.index(augment.Trim)].p) == (0.5, 0.25)
    default = [type(a) for a in build_augmentations(parse_args(paths))[0]]
    assert augment.Equalize not in default and augment.Trim not in default  # off by default: the recipes as they were


@pytest.mark.parametrize("blocks, kept", [(1, ("conv1.", "conv2.", "proj.", "proj_norm.")),
                                          (2, ("conv1.", "conv2.", "proj.", "proj_norm.", "lstms.0.", "norms.0."))])
def test_freeze_bottom_keeps_the_lowest_blocks_of_the_model_fine_tuned(clips_manifest, tiny_checkpoint, tmp_path,
                                                                        capsys, blocks, kept):
    before = load_model(tiny_checkpoint).model.state_dict()
    flags = [*tiny_flags(clips_manifest, tmp_path / "run"), "--init", str(tiny_checkpoint), "--epochs", "1"]
    Trainer(parse_args([*flags, "--freeze-bottom", str(blocks)])).run()
    assert f"M trained: --freeze-bottom {blocks})" in capsys.readouterr().err
    after = load_model(tmp_path / "run" / "last.pt").model.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value) == name.startswith(kept), name  # those as they were, the rest trained


@pytest.mark.parametrize("flags, says", [
    (["--freeze-bottom", "1"], "--freeze-bottom needs --init"),
    (["--freeze-bottom", "3", "--init", "TINY"], "--freeze-bottom 3: the model has 2 blocks"),
    (["--init-decay", "10"], "--init-decay needs --init"),
    (["--init-decay", "500", "--init", "TINY", "--lr", "3e-3"], "--init-decay 500 with --lr 0.003"),
    (["--init-decay", "1666.67", "--init", "TINY", "--lr", "6e-4"], "model's; at most 1666 (lr x"),  # not 1666.67
])
def test_a_fine_tuning_setting_that_cannot_be_is_one_line_before_any_work(clips_manifest, tiny_checkpoint, tmp_path,
                                                                          capsys, flags, says):
    flags = [str(tiny_checkpoint) if f == "TINY" else f for f in flags]
    missing = tmp_path / "missing.jsonl"  # refused before the manifests are read
    assert main(["--train", str(missing), "--dev", str(missing), "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert says in err and "missing.jsonl" not in err and len(err.strip().splitlines()) == 1, err
