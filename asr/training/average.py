"""Checkpoint averaging: the mean of the model's weights over a run's last epochs. As the learning rate decays, the
last epochs' weights wander around a minimum; their mean lies nearer it, and is often better than any one of them.

With TrainConfig.average_last N >= 2, each epoch's weights are kept in OUT/epochs/epoch-E.pt (the last N only);
once the run has trained all its epochs, their mean is validated on dev and becomes best.pt if its dev WER is lower.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from asr.checkpoint import save_atomic

SNAPSHOTS = "epochs"  # the folder under OUT that holds the last epochs' weights


def snapshots(out: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the weights kept under OUT/epochs, oldest first."""
    found = [(int(m.group(1)), p) for p in (out / SNAPSHOTS).glob("epoch-*.pt")
             if (m := re.fullmatch(r"epoch-(\d+)\.pt", p.name))]
    return sorted(found)


def save_snapshot(model: torch.nn.Module, out: Path, epoch: int, keep: int) -> None:
    """Keep `model`'s weights as epoch `epoch`'s, and only the last `keep` epochs' (those of a longer run, or of
    epochs past `epoch` left by an earlier try, go)."""
    (out / SNAPSHOTS).mkdir(exist_ok=True)
    save_atomic({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                out / SNAPSHOTS / f"epoch-{epoch}.pt")
    kept = [(e, p) for e, p in snapshots(out) if e <= epoch]
    for e, path in snapshots(out):
        if e > epoch or (e, path) in kept[:-keep]:
            path.unlink()


def averaged_weights(out: Path, last: int) -> tuple[dict[str, torch.Tensor] | None, list[int]]:
    """The mean of the last `last` epochs' weights (floating tensors; others from the newest), and those epochs;
    (None, []) with fewer than two."""
    chosen = snapshots(out)[-last:]
    if len(chosen) < 2:
        return None, []
    states = [torch.load(path, map_location="cpu", weights_only=True) for _, path in chosen]
    mean = {k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[-1].items()}
    return mean, [e for e, _ in chosen]


def finish_with_average(trainer) -> None:
    """After the last epoch: validate the mean of the last cfg.average_last epochs' weights on dev; if it beats the
    best dev WER, it becomes best.pt (its metadata says which epochs). Every process validates its share."""
    cfg, state = trainer.cfg, trainer.state
    weights, epochs = averaged_weights(trainer.out, cfg.average_last)
    if weights is None:
        return
    trainer.rec.model.load_state_dict(weights)
    dev_wer, _ = trainer.validate()
    better = dev_wer < state["best_dev_wer"]
    if trainer.dist.is_main:
        print(f"average of epochs {epochs[0]}-{epochs[-1]}: dev_wer={dev_wer:.3f} (best single epoch "
              f"{state['best_dev_wer']:.3f}){': best.pt' if better else ''}", flush=True)
    if better:
        state["best_dev_wer"] = dev_wer
        trainer.rec.metadata["averaged_epochs"] = epochs
        if trainer.dist.is_main:
            trainer.save(trainer.out / "best.pt")
