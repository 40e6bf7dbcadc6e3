"""asr.train stopped from outside as schedulers stop jobs: SIGTERM to the whole process group (`timeout -s TERM`,
systemd, SLURM's scancel, `kill -- -PGID`) reaches the DataLoader workers as well as the trainer. The run must
still save last.pt where it stopped, and --resume must go on to the bit of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from asr.train import main
from asr.training import setup as training_setup
from asr.training.stopping import StopRequested, start_batches, stop_signals_held
from tests.test_train import assert_same_weights, metrics, tiny_flags

REPO = Path(__file__).resolve().parents[1]

# The child trains as `python -m asr.train` does, with one hook: once the optimiser step `at` is taken, it
# writes the file `ready` and waits (at most 60 s) for a signal, so that the test signals it mid-epoch; then
# it goes on for half a second more, as a step the signal arrives in does (the workers die meanwhile, if
# they die of it).
CHILD = """
import sys, time
from pathlib import Path
from asr import train
from asr.training import stopping, trainer
at, ready, argv = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
signalled, handle = [], stopping.StopRequested._handle
stopping.StopRequested._handle = lambda self, *a: (signalled.append(1), handle(self, *a))
step = trainer.Trainer.train_step
def train_step(self, batches):
    loss = step(self, batches)
    if self.state["step"] == at:
        ready.write_text("ready")
        deadline = time.monotonic() + 60
        while not signalled and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
    return loss
trainer.Trainer.train_step = train_step
sys.exit(train.main(argv))
"""


def run_until_signalled(flags: list[str], at_step: int, ready: Path, sig: int = signal.SIGTERM):
    """Train in a child process in a session (process group) of its own, and send `sig` to the whole group
    once it has taken optimiser step `at_step`; returns (exit code, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(at_step), str(ready), *flags], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"the child never reached step {at_step}: {child.communicate(timeout=30)[1][-3000:]}"
        os.killpg(child.pid, sig)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
    return child.returncode, err


def test_sigterm_to_the_process_group_mid_epoch_saves_last_pt_and_resume_is_bit_identical(clips_manifest, tmp_path):
    def flags(out):
        return [*tiny_flags(clips_manifest, out), "--num-workers", "1", "--threads", "1"]

    whole = tmp_path / "whole"
    try:
        assert main(flags(whole)) == 0
    finally:
        torch.set_num_threads(1)  # as the suite runs (conftest)
    out = tmp_path / "run"
    code, err = run_until_signalled(flags(out), at_step=4, ready=tmp_path / "ready")  # the first batch of epoch 2
    assert code == 130, err[-3000:]
    assert "stopped by signal in epoch 2 after batch 1" in err, err[-3000:]
    state = torch.load(out / "last.pt", weights_only=True)["train_state"]
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 1, 4)
    try:
        assert main([*flags(out), "--resume"]) == 0
    finally:
        torch.set_num_threads(1)
    assert [(r["epoch"], r["step"]) for r in metrics(out)] == [(r["epoch"], r["step"]) for r in metrics(whole)]
    assert_same_weights(out / "last.pt", whole / "last.pt")


class Sender:
    """A process ready to send signals to a pid as someone other than its parent does (e.g. `timeout` signalling
    the process group): started beforehand, so that they arrive at once when asked for."""

    def __init__(self):
        code = "import os, sys\nfor line in sys.stdin:\n    pid, *sigs = map(int, line.split())\n" \
               "    for s in sigs:\n        os.kill(pid, s)\n    print('sent', flush=True)"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def send(self, pid: int, *signals: int) -> None:
        self.process.stdin.write(" ".join(map(str, [pid, *map(int, signals)])) + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "sent\n"

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def slow_start(worker_id: int) -> None:
    """The trainer's worker_init_fn, late: a worker still starting up when the signals come."""
    time.sleep(1.0)
    training_setup._worker_init(worker_id)


def test_a_stop_signal_waits_while_held():
    with StopRequested() as stop:
        with stop_signals_held():  # held in this thread (a process-wide kill may go to another of its threads)
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            assert not stop.requested
        assert stop.requested  # delivered as the block ended


def test_workers_leave_stop_signals_to_the_trainer_even_as_they_start():
    loader = torch.utils.data.DataLoader(range(6), batch_size=1, num_workers=1, prefetch_factor=1,
                                         worker_init_fn=slow_start)
    sender = Sender()
    try:
        batches = start_batches(loader)
        worker = batches._workers[0]
        sender.send(worker.pid, signal.SIGTERM, signal.SIGINT)  # while it starts
        first = next(batches)
        sender.send(worker.pid, signal.SIGTERM)  # and once it runs
        time.sleep(0.2)
        assert [int(b) for b in [first, *batches]] == list(range(6))  # a dead worker raises instead
    finally:
        sender.close()


def test_the_trainer_can_still_end_a_worker_that_does_not_stop():
    loader = torch.utils.data.DataLoader(range(6), batch_size=1, num_workers=1, prefetch_factor=1,
                                         worker_init_fn=training_setup._worker_init)
    batches = start_batches(loader)
    worker = batches._workers[0]
    next(batches)
    try:
        worker.terminate()  # how the DataLoader ends a worker that does not stop
        worker.join(timeout=30)
        assert worker.exitcode == 0
    finally:
        if worker.is_alive():
            worker.kill()  # no hung test (and no hung exit) when it fails
            worker.join(timeout=30)
    del batches


def test_where_signals_cannot_be_waited_for_workers_ignore_them(monkeypatch):
    monkeypatch.delattr(signal, "sigwaitinfo")  # as on macOS; the forked worker inherits the patch
    loader = torch.utils.data.DataLoader(range(4), batch_size=1, num_workers=1, prefetch_factor=1,
                                         worker_init_fn=training_setup._worker_init)
    sender = Sender()
    try:
        batches = start_batches(loader)
        first = next(batches)
        sender.send(batches._workers[0].pid, signal.SIGTERM, signal.SIGINT)
        time.sleep(0.2)
        assert [int(b) for b in [first, *batches]] == list(range(4))
    finally:
        sender.close()
