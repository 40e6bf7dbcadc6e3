"""What training says on stderr while it runs (rank 0): an epoch's progress, redrawn in place on a terminal
(tqdm) and written as plain lines elsewhere (a log file, a pipe: no carriage-return frames), and the row of
each epoch. Losses read to 4 significant digits; metrics.jsonl keeps every number whole."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

EVERY_STEPS = 50  # without a terminal: a progress line every this many optimiser steps of an epoch ...
EVERY_SECONDS = 30.0  # ... or after this many seconds without one, whichever comes first


def loss_text(loss: float | None) -> str:
    return "nan" if loss is None else f"{loss:.4g}"


class Progress:
    """One epoch's progress: `update` after each optimiser step, `close` at the end (or on a stop)."""

    def __init__(self, desc: str, total: int, initial: int, enabled: bool):
        self.desc, self.total, self.enabled = desc, total, enabled
        self.stream = sys.stderr
        on_terminal = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream, dynamic_ncols=True,
                        leave=False) if on_terminal else None
        self.steps, self.said_at = 0, time.monotonic()

    def update(self, batch: int, loss: float | None, lr: float, audio_s_per_s: float) -> None:
        """After the step that ended with batch `batch` of the epoch (counting from 1)."""
        fields = {"loss": loss_text(loss), "lr": f"{lr:.2e}", "audio_s_per_s": f"{audio_s_per_s:.0f}"}
        self.steps += 1
        if self.bar is not None:
            self.bar.update(batch - self.bar.n)
            self.bar.set_postfix(fields)
        elif self.enabled and (self.steps % EVERY_STEPS == 0 or time.monotonic() - self.said_at >= EVERY_SECONDS):
            said = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"{self.desc} batch {batch}/{self.total} {said}", file=self.stream, flush=True)
            self.said_at = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def epoch_line(row: dict) -> str:
    """An epoch's metrics row as printed: key=value, the loss to 4 significant digits, the rate to 3."""
    shown = {**row, "train_loss": loss_text(row["train_loss"]) if row["train_loss"] is not None else None,
             "lr": f"{row['lr']:.3g}"}
    return " ".join(f"{k}={v}" for k, v in shown.items())
