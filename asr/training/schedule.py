"""The learning-rate schedule: linear warm-up over the first optimiser steps, then cosine decay to a floor over
the rest of training, measured in epochs (training progress), which mean the same whatever the number of
processes; a count of optimiser steps would not (more processes take fewer, larger steps an epoch)."""

from __future__ import annotations

import math
from fractions import Fraction

from asr.training.config import TrainConfig


def lr_at(step: int, progress: Fraction, warmup_end: Fraction | None, cfg: TrainConfig) -> float:
    """The learning rate of optimiser step `step` (from 0), taken when `progress` epochs of training are done
    (0 <= progress <= cfg.epochs): lr * (step + 1) / warmup_steps over the first warmup_steps steps, then cosine
    decay from `warmup_end` (the progress at which warm-up ended) to lr * final_lr_ratio at cfg.epochs.
    Given exact fractions, one uninterrupted process gets the very rates of a decay counted in its steps, as long
    as no step is skipped: a skipped step (non-finite loss, fp16 overflow) still moves progress on, where the old
    step count stood still."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_epochs = cfg.epochs - warmup_end
    done = min(1.0, max(0.0, float((progress - warmup_end) / decay_epochs))) if decay_epochs > 0 else 1.0
    floor = cfg.lr * cfg.final_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * done))


def warmup_warning(cfg: TrainConfig, steps_per_epoch: int) -> str | None:
    """A warning when warm-up lasts the whole run (cfg.epochs of steps_per_epoch optimiser steps) or longer: the
    learning rate then only rises, and to cfg.lr at most at the last step. The schedule is left as asked (a
    resumed run with more epochs goes on with it), the warning says what to give instead. None when it fits."""
    total = cfg.epochs * steps_per_epoch
    if cfg.warmup_steps == 0 or cfg.warmup_steps < total:
        return None
    highest = lr_at(total - 1, Fraction(cfg.epochs), None, cfg)
    return (f"warning: --warmup-steps {cfg.warmup_steps} lasts the whole run ({total} optimiser steps: {cfg.epochs} "
            f"epochs of {steps_per_epoch}): the learning rate only rises, to {highest:.3g} at most (--lr {cfg.lr}), "
            f"and never decays; give a --warmup-steps below {total} (e.g. {max(1, total // 10)})")
