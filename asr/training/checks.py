"""What asr.train checks before it trains: that --out holds no other run (unless --resume or --overwrite),
that a resumed run agrees with its last.pt, and that the noise recordings are noise, not impulse responses.
A check that fails raises RunError; asr.train prints its one-line message and exits 2."""

from __future__ import annotations

from pathlib import Path

from asr.training.config import TrainConfig

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "curves.png")  # what a run writes into its --out folder


class RunError(Exception):
    """A run that cannot start as asked; the message says why and what to do instead."""


def check_out_folder(cfg: TrainConfig) -> None:
    """Refuse to train into a folder that holds another run's files (training would overwrite its checkpoints
    and append to its metrics) unless cfg.resume or cfg.overwrite says what to do with them, and refuse to
    resume from a folder without last.pt. Reads nothing but the folder's listing."""
    out = Path(cfg.out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    if cfg.resume and cfg.overwrite:
        raise RunError("--resume and --overwrite contradict each other: continue the run in --out, or start it again")
    if cfg.resume and not (out / "last.pt").is_file():
        raise RunError(f"--resume: nothing to resume, there is no {out / 'last.pt'} "
                       "(leave out --resume to start a new run there)")
    if found and not (cfg.resume or cfg.overwrite):
        raise RunError(f"{out} already holds a run ({', '.join(found)}): add --resume to continue it, "
                       "--overwrite to start it again, or give --out a new or empty folder")


def clear_run_files(out: str | Path) -> list[str]:
    """Remove the files a run writes (RUN_FILES) from out, leaving anything else; returns the names removed."""
    removed = [name for name in RUN_FILES if (Path(out) / name).is_file()]
    for name in removed:
        (Path(out) / name).unlink()
    return removed
