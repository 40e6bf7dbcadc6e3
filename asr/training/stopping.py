"""Stopping a run before its last epoch: on SIGINT/SIGTERM, or once its time budget is spent. The processes
decide together, so that all of them leave the loop after the same step (and last.pt resumes from there)."""

from __future__ import annotations

import signal

from asr.training import distributed
from asr.training.distributed import DistContext


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so it can save and exit cleanly."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def why_stop(stop: StopRequested, elapsed: float, max_minutes: float, dist: DistContext) -> str:
    """"signal", "time limit" (elapsed seconds past max_minutes, unless that is 0) or "", the same on every process."""
    over_time = bool(max_minutes) and elapsed > max_minutes * 60
    by_signal, by_time = distributed.any_true([stop.requested, over_time], dist)
    return "signal" if by_signal else "time limit" if by_time else ""
