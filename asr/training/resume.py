"""What last.pt keeps besides the model, so that --resume continues a run where it stopped, to the bit: the
progress counters (and the losses of the epoch's steps so far, so that a resumed epoch's metrics row has the
mean loss of all its steps), the optimiser's and loss scaler's states, every process's random-number generators and
the number of processes that wrote it. Tensors and plain types only: checkpoints load with
torch.load(weights_only=True)."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import torch

from asr.training.distributed import DistContext


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The states of the generators training draws from: torch's CPU generator (dropout on the CPU; the
    DataLoader, once an epoch) and, on a GPU, that GPU's (dropout there). Nothing in training draws from
    numpy's or Python's global generators; augmentation draws from generators seeded by (seed, epoch, index)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def make_train_state(state: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                     rng: list[dict]) -> dict:
    """The train_state of last.pt: the run's progress (Trainer.state) and what going on from it needs;
    rng: every process's rng_state(), by rank."""
    warmup_end = state["warmup_end"]
    saved = {**state, "warmup_end": None if warmup_end is None else str(warmup_end),  # exact, as text: "3/13"
             "optimizer": optimizer.state_dict(), "world_size": len(rng), "rng": rng}
    if scaler is not None:
        saved["scaler"] = scaler.state_dict()
    return saved


def restore_train_state(saved: dict, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                        dist: DistContext) -> tuple[dict, dict | None]:
    """Load the optimiser's and loss scaler's states from a train_state; returns the progress to go on from
    (Trainer.state) as dist.world_size processes count it, and this process's RNG states (None if another
    number of processes wrote it: then each process draws on from its own seed)."""
    saved, world_size = dict(saved), dist.world_size
    rng = saved.pop("rng", None)
    optimizer.load_state_dict(saved.pop("optimizer"))
    scaler_state = saved.pop("scaler", None)
    if scaler is not None and scaler_state is not None:
        scaler.load_state_dict(scaler_state)
    saved_world = saved.pop("world_size", 1)
    if saved_world != world_size:
        # Batch j of rank r is batch j * world_size + r of the epoch's list: keep the global position.
        saved["batch_in_epoch"] = saved["batch_in_epoch"] * saved_world // world_size
    warmup_end = saved.pop("warmup_end", None)
    progress = {**saved, "warmup_end": None if warmup_end is None else Fraction(warmup_end)}
    return progress, rng[dist.rank] if rng is not None and saved_world == world_size else None


def drop_rows_past(metrics: Path, epochs: int) -> str | None:
    """Remove from a run's metrics.jsonl the rows of epochs past `epochs` (last.pt's), which a run stopped between
    writing an epoch's row and its last.pt (killed: SIGKILL, out of memory) leaves; the resumed run trains those
    epochs again and logs them once. Returns the note that says so, or None. The file is replaced whole."""
    if not metrics.is_file():
        return None
    lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.strip() or json.loads(line).get("epoch", 0) <= epochs]
    if len(kept) == len(lines):
        return None
    dropped = sorted({json.loads(line)["epoch"] for line in lines if line not in kept})
    tmp = metrics.with_name(metrics.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, metrics)
    return (f"note: {metrics}: dropped the row{'s' if len(dropped) > 1 else ''} of epoch "
            f"{', '.join(map(str, dropped))}, which last.pt does not hold (the run stopped before saving it): "
            "trained again, logged once")
