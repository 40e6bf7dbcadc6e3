"""Stopping a run before its last epoch: on SIGINT/SIGTERM, or once its time budget is spent. The processes
decide together, so that all of them leave the loop after the same step (and last.pt resumes from there).

A signal sent to the whole process group (Ctrl-C; `timeout`, systemd, SLURM's scancel, `kill -- -PGID` with
SIGTERM) reaches the DataLoader workers too. They leave it to the trainer (`leave_stops_to_the_trainer`), which
stops after its step, saves last.pt and then ends them; workers are started with the signals held
(`start_batches`), so that one arriving while a worker starts cannot kill it either."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from asr.training import distributed
from asr.training.distributed import DistContext

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class StopRequested:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so it can save and exit cleanly."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        for sig in STOP_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def stop_signals_held():
    """Hold SIGINT/SIGTERM back from this thread inside the block (processes it starts inherit that, until they
    take the signals themselves); one that arrived meanwhile is delivered as the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (and no process groups to signal)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def leave_stops_to_the_trainer() -> None:
    """In a DataLoader worker: a thread takes SIGINT/SIGTERM and ignores them, unless the trainer sent them (the
    DataLoader ending a worker that would not stop), where the worker exits as torch's own handler has it do."""
    if not hasattr(signal, "sigwaitinfo"):  # macOS, Windows: ignored from anyone (a hung worker outlives terminate)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # for this thread and those started after it
    parent = os.getppid()

    def take_signals():
        while True:
            if signal.sigwaitinfo(STOP_SIGNALS).si_pid == parent:
                os._exit(0)

    threading.Thread(target=take_signals, name="stop-signals", daemon=True).start()


def start_batches(loader):
    """iter(loader), its workers started with SIGINT/SIGTERM held: each takes them once its worker_init_fn has
    called leave_stops_to_the_trainer() (before that, a signal to the process group would kill it)."""
    with stop_signals_held():
        return iter(loader)


def why_stop(stop: StopRequested, elapsed: float, max_minutes: float, dist: DistContext) -> str:
    """"signal", "time limit" (elapsed seconds past max_minutes, unless that is 0) or "", the same on every process."""
    over_time = bool(max_minutes) and elapsed > max_minutes * 60
    by_signal, by_time = distributed.any_true([stop.requested, over_time], dist)
    return "signal" if by_signal else "time limit" if by_time else ""
