"""The learning-rate schedule: warm-up over optimiser steps, then cosine decay over training progress (epochs),
so that a run resumed with another number of processes goes on with the learning rate it had."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest
import torch

from asr.checkpoint import save_atomic
from asr.data import write_manifest
from asr.train import parse_args
from asr.training import TrainConfig, Trainer, distributed, lr_at
from asr.training import trainer as trainer_module
from asr.training.distributed import DistContext

BATCHES = 12  # an epoch of the run below: 12 utterances of 2.3-4 s at 4 s a batch, divisible by 1, 2 and 3


def test_lr_warms_up_over_steps_then_decays_over_epochs():
    cfg = TrainConfig(train="", dev="", out="", lr=1e-3, warmup_steps=10, final_lr_ratio=0.1, epochs=11)
    # 10 steps an epoch: warm-up ends after epoch 1, the decay spans the other 10 epochs (100 steps)
    lrs = [lr_at(step, Fraction(step, 10), Fraction(1), cfg) for step in range(130)]
    assert lrs[0] == pytest.approx(1e-4)  # 1/10 of the peak on the first step
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))  # linear warm-up
    assert lrs[9] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-3)  # the peak
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then never rises
    assert lrs[60] == pytest.approx((1e-3 + 1e-4) / 2)  # cosine: halfway down at half the decay
    assert lrs[110] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-4)  # and stays at the floor


@pytest.mark.parametrize("steps_per_epoch, warmup, epochs", [(7, 3, 5), (13, 200, 95), (48, 0, 3), (3, 10, 60)])
def test_one_uninterrupted_process_gets_exactly_the_rates_of_a_decay_by_steps(steps_per_epoch, warmup, epochs):
    """The rates of the schedule before it followed progress, to the bit: a seeded run repeats its losses."""
    cfg = TrainConfig(train="", dev="", out="", warmup_steps=warmup, epochs=epochs)
    total, floor = epochs * steps_per_epoch, cfg.lr * cfg.final_lr_ratio
    for step in range(warmup, total):
        by_steps = min(1.0, (step - warmup) / max(1, total - warmup))
        expected = floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * by_steps))
        assert lr_at(step, Fraction(step, steps_per_epoch), Fraction(warmup, steps_per_epoch), cfg) == expected


def test_a_last_pt_written_by_the_schedule_of_steps_resumes_with_its_learning_rate(clips_manifest, tmp_path):
    cfg = parse_args(["--train", str(clips_manifest), "--dev", str(clips_manifest), "--out", str(tmp_path),
                      "--hidden", "32", "--layers", "1", "--conv-channels", "8", "--batch-seconds", "5",
                      "--warmup-steps", "3", "--epochs", "5", "--num-workers", "0"])
    trainer = Trainer(cfg)
    trainer.state.update(epoch=2, batch_in_epoch=1, step=9, warmup_end=Fraction(3, 4))  # one process: 4 steps an epoch
    lr = trainer.learning_rate()
    trainer.save(tmp_path / "last.pt", trainer.train_state())
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["train_state"].pop("warmup_end") == "3/4"  # epochs
    save_atomic(ckpt, tmp_path / "last.pt")
    assert Trainer(dataclasses.replace(cfg, resume=True)).learning_rate() == lr


def pretend_processes(monkeypatch, world: int) -> None:
    """Trainers made from now on are rank 0 of `world` processes (its share of every epoch's batches, its
    bookkeeping and checkpoints) with no other process: every collective returns this process's values."""
    monkeypatch.setattr(distributed, "setup", lambda device: DistContext(world_size=world, device=device))
    monkeypatch.setattr(distributed, "all_sum", lambda values, ctx: values)
    monkeypatch.setattr(distributed, "any_true", lambda flags, ctx: list(flags))
    monkeypatch.setattr(distributed, "gather", lambda obj, ctx: [obj] * ctx.world_size)
    monkeypatch.setattr(distributed, "barrier", lambda ctx: None)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda module, device_ids: module)


class Clock:
    """Stands in for the time module of asr.training.trainer: 10 s pass with every optimiser step."""

    def __init__(self):
        self.now = 0.0

    def time(self) -> float:
        return self.now


def record_learning_rates(trainer: Trainer, clock: Clock, lrs: dict) -> None:
    """lrs[global batches done before a step] = the step's learning rate, for every step the trainer takes."""
    train_step = trainer.train_step

    def step(batches):
        state, world = trainer.state, trainer.dist.world_size
        done = state["epoch"] * BATCHES + state["batch_in_epoch"] * world
        loss = train_step(batches)
        lrs[done] = trainer.optimizer.param_groups[0]["lr"]
        clock.now += 10.0
        return loss

    trainer.train_step = step


def test_the_learning_rate_goes_on_when_resumed_with_1_2_3_then_1_processes(clips, tmp_path, monkeypatch):
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    write_manifest(train, [u.__class__(f"{u.id}-{k}", u.audio, u.duration, u.text)
                           for u in clips if u.duration >= 2.3 for k in range(3)])
    write_manifest(dev, [min(clips, key=lambda u: u.duration)])
    flags = ["--train", str(train), "--dev", str(dev), "--hidden", "32", "--layers", "1", "--conv-channels", "8",
             "--dropout", "0", "--epochs", "4", "--batch-seconds", "4", "--lr", "1e-3", "--warmup-steps", "3",
             "--noise-prob", "0", "--no-speed-perturb", "--no-spec-augment", "--num-workers", "0"]
    clock = Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    whole, resumed = {}, {}
    trainer = Trainer(parse_args([*flags, "--out", str(tmp_path / "whole")]))
    assert len(trainer.sampler) == BATCHES
    record_learning_rates(trainer, clock, whole)
    trainer.run()
    assert sorted(whole) == list(range(4 * BATCHES))

    # 1 process for 18 batches (to the middle of epoch 2), 2 for 6 steps of 2, 3 for 4 steps of 3, then 1 again
    clock.now, out, steps = 0.0, str(tmp_path / "resumed"), 0
    for world, segment_steps in [(1, 18), (2, 6), (3, 4), (1, None)]:
        pretend_processes(monkeypatch, world)
        steps += segment_steps or 0
        budget = ["--max-minutes", str((10 * steps - 5) / 60) if segment_steps else "0"]  # left out: the run's own
        trainer = Trainer(parse_args([*flags, "--out", out, *budget, *(["--resume"] if steps > 18 else [])]))
        record_learning_rates(trainer, clock, resumed)
        result = trainer.run()
        assert result["stopped"] == ("time limit" if segment_steps else "done")
        assert result["step"] == (steps if segment_steps else 34)
    assert sorted(resumed) == [*range(18), *range(18, 30, 2), *range(30, 42, 3), *range(42, 48)]
    assert [resumed[done] for done in sorted(resumed)] == pytest.approx([whole[done] for done in sorted(resumed)])
