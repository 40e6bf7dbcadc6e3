"""What last.pt keeps besides the model, so that --resume continues a run where it stopped: the progress
counters, the optimiser's and loss scaler's states and the number of processes that wrote it. Tensors and
plain types only, as checkpoints load with torch.load(weights_only=True)."""

from __future__ import annotations

from fractions import Fraction

import torch


def train_state(state: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                world_size: int) -> dict:
    """The train_state of last.pt: the run's progress (Trainer.state) and what going on from it needs."""
    warmup_end = state["warmup_end"]
    saved = {**state, "warmup_end": None if warmup_end is None else str(warmup_end),  # exact, as text: "3/13"
             "optimizer": optimizer.state_dict(), "world_size": world_size}
    if scaler is not None:
        saved["scaler"] = scaler.state_dict()
    return saved


def restore_train_state(saved: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                        world_size: int) -> dict:
    """Load the optimiser's and loss scaler's states from a train_state; returns the progress to go on from
    (Trainer.state) as `world_size` processes count it."""
    saved = dict(saved)
    optimizer.load_state_dict(saved.pop("optimizer"))
    scaler_state = saved.pop("scaler", None)
    if scaler is not None and scaler_state is not None:
        scaler.load_state_dict(scaler_state)
    saved_world = saved.pop("world_size", 1)
    if saved_world != world_size:
        # Batch j of rank r is batch j * world_size + r of the epoch's list: keep the global position.
        saved["batch_in_epoch"] = saved["batch_in_epoch"] * saved_world // world_size
    warmup_end = saved.pop("warmup_end", None)
    return {**saved, "warmup_end": None if warmup_end is None else Fraction(warmup_end)}
