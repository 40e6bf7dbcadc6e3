"""Mixed precision on the CPU: the bf16 autocast step, and the fp16 step with its GradScaler (gradients unscaled
before clipping, overflowing steps skipped and counted, the loss scale lowered and kept in last.pt)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.data import SpeechDataset, collate
from asr.model import ModelConfig
from asr.training import TrainConfig, Trainer

TINY = ModelConfig(conv_channels=8, hidden=32, layers=1, dropout=0.0)


@pytest.fixture
def make_trainer(clips_manifest, tmp_path):
    """make_trainer(amp=..., amp_dtype=...): a Trainer of the tiny model on the clips, without augmentation."""
    def make(**settings) -> Trainer:
        clips = str(clips_manifest)
        cfg = TrainConfig(train=clips, dev=clips, out=str(tmp_path / "run"), model=TINY, epochs=1,
                          batch_seconds=5, warmup_steps=0, num_workers=0, speed_perturb=False, noise_prob=0.0,
                          spec_augment=False, **settings)
        return Trainer(cfg)
    return make


def first_batch(trainer: Trainer):
    data = SpeechDataset(trainer.train_utts, trainer.rec.frontend, trainer.vocab)
    return collate([data[i] for i in range(3)])


def parameters(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.rec.model.parameters()]


def test_the_loss_scaler_is_for_fp16_alone(make_trainer):
    assert isinstance(make_trainer(amp=True, amp_dtype="fp16").scaler, torch.amp.GradScaler)
    assert make_trainer(amp=True, amp_dtype="bf16").scaler is None
    assert make_trainer(amp=True).scaler is None  # "auto" is bf16 on the CPU
    assert make_trainer(amp=False, amp_dtype="fp16").scaler is None


def step_until_trained(trainer: Trainer, batch, tries: int = 8) -> float:
    """Repeat the step until it trains: fp16 steps overflow at GradScaler's first scale (2 ** 16) here and are
    skipped, halving the scale each time, until the scaled gradients fit in fp16 (three times for this batch)."""
    for _ in range(tries):
        loss = trainer.train_step(batch)
        if loss is not None:
            return loss
    raise AssertionError(f"no step trained in {tries} tries")


@pytest.mark.parametrize("dtype, name", [(torch.bfloat16, "bf16"), (torch.float16, "fp16")])
def test_an_amp_step_computes_in_half_precision_and_trains(make_trainer, dtype, name):
    trainer = make_trainer(amp=True, amp_dtype=name)
    seen = []
    trainer.rec.model.out.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    before = parameters(trainer)
    loss = step_until_trained(trainer, first_batch(trainer))
    assert set(seen) == {dtype}  # the output layer ran under autocast
    assert 0 < loss < float("inf")
    skipped = trainer.state["skipped_steps"]
    assert trainer.state["step"] == 1 and (skipped == 0 if name == "bf16" else skipped == len(seen) - 1 > 0)
    if name == "fp16":
        assert trainer.scaler.get_scale() == 2.0 ** 16 / 2 ** skipped  # halved at each overflow
    assert all(p.dtype == torch.float32 for p in trainer.rec.model.parameters())  # fp32 master weights
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters(trainer)))


def test_fp16_gradients_are_unscaled_before_clipping(make_trainer, monkeypatch):
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def clip_and_record(params, max_norm, *args, **kwargs):
        norms.append(float(clip(params, max_norm, *args, **kwargs)))
        return torch.tensor(norms[-1])

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_and_record)
    fp32 = make_trainer(amp=False)
    fp32.train_step(first_batch(fp32))
    fp16 = make_trainer(amp=True, amp_dtype="fp16")
    step_until_trained(fp16, first_batch(fp16))  # the same initial weights: skipped steps change nothing
    assert fp16.scaler.get_scale() >= 2.0 ** 10  # the factor the gradients were scaled by
    assert norms[-1] == pytest.approx(norms[0], rel=0.02)  # the fp32 gradient norm, not `scale` times it


def test_an_overflowing_fp16_step_is_skipped_counted_and_lowers_the_loss_scale(make_trainer):
    trainer = make_trainer(amp=True, amp_dtype="fp16")
    batch = first_batch(trainer)
    step_until_trained(trainer, batch)  # a loss scale at which this batch's gradients fit in fp16
    before, scale, skipped = parameters(trainer), trainer.scaler.get_scale(), trainer.state["skipped_steps"]
    overflow = trainer.rec.model.out.weight.register_hook(lambda grad: grad * float("inf"))  # an fp16 overflow
    assert trainer.train_step(batch) is None
    assert (trainer.state["step"], trainer.state["skipped_steps"]) == (1, skipped + 1)
    assert all(torch.equal(a, b) for a, b in zip(before, parameters(trainer)))  # no parameter moved
    assert trainer.scaler.get_scale() == scale / 2
    overflow.remove()
    assert trainer.train_step(batch) is not None
    assert (trainer.state["step"], trainer.state["skipped_steps"]) == (2, skipped + 1)
    trainer.save(trainer.out / "last.pt", trainer.train_state())
    resumed = Trainer(dataclasses.replace(trainer.cfg, resume=True))
    assert resumed.scaler.get_scale() == scale / 2 and resumed.state["skipped_steps"] == skipped + 1


def test_a_non_finite_bf16_step_is_skipped_and_counted(make_trainer):
    trainer = make_trainer(amp=True, amp_dtype="bf16")
    before = parameters(trainer)
    trainer.rec.model.out.weight.register_hook(lambda grad: grad * float("nan"))
    assert trainer.train_step(first_batch(trainer)) is None
    assert (trainer.state["step"], trainer.state["skipped_steps"]) == (0, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, parameters(trainer)))


def test_bf16_steps_lower_the_loss_on_a_tiny_set(make_trainer):
    trainer = make_trainer(amp=True, amp_dtype="bf16", lr=3e-3)
    batch = first_batch(trainer)
    losses = [trainer.train_step(batch) for _ in range(30)]
    assert None not in losses and trainer.state["skipped_steps"] == 0
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5  # it learns in bf16, as in fp32
