"""Data-parallel training: the sampler's split over ranks, gradient accumulation, and two gloo processes under
torchrun ending with the same parameters as one process that accumulates the same global batches."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr.checkpoint import save_atomic
from asr.data import BucketBatchSampler, SpeechDataset, collate
from asr.model import ModelConfig
from asr.train import parse_args
from asr.training import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO / "tests" / "data" / "an4" / "clips.jsonl"
TINY = ModelConfig(conv_channels=8, hidden=32, layers=2, dropout=0.0)  # dropout 0: no random masks to differ

# batch_seconds 5 cuts the five clips (0.8, 2.3, 2.5, 3.0, 4.0 s) into 4 batches of 2, 1, 1 and 1 utterances:
# an even count, and unequal sizes, so a loss that were not weighted by utterance counts would show.
TRAIN_FLAGS = ["--train", str(CLIPS), "--dev", str(CLIPS), "--epochs", "2", "--batch-seconds", "5",
               "--hidden", "32", "--layers", "2", "--conv-channels", "8", "--dropout", "0", "--warmup-steps", "2",
               "--num-workers", "0", "--precision", "fp32"]  # one precision for both runs compared


def train_command(nproc: int, out: Path, *extra: str) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return [*launcher, "-m", "asr.train", *TRAIN_FLAGS, "--out", str(out), *extra]


# Runs asr.train as `python -m asr.train` would, with an exit handler that says when the interpreter is torn down.
WITH_TEARDOWN_MARK = """import atexit, runpy, sys
atexit.register(lambda: print("interpreter teardown", file=sys.stderr, flush=True))
runpy.run_module("asr.train", run_name="__main__", alter_sys=True)
"""


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def fraction_apart(a: dict, b: dict, tolerance: float) -> float:
    """The fraction of all weights that differ by more than `tolerance`."""
    apart = sum(int(((a[k].float() - b[k].float()).abs() > tolerance).sum()) for k in a)
    return apart / sum(a[k].numel() for k in a)


@pytest.mark.parametrize("n_batches", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_rank_gets_the_same_number_of_distinct_batches(n_batches, world):
    durations = [1.0] * n_batches  # max_seconds 1.5: one utterance a batch
    samplers = [BucketBatchSampler(durations, 1.5, seed=3, num_replicas=world, rank=r) for r in range(world)]
    for s in samplers:
        s.set_epoch(2)
    per_rank = [list(s) for s in samplers]
    assert all(len(batches) == len(samplers[0]) == n_batches // world for batches in per_rank)
    flat = [b[0] for batches in per_rank for b in batches]
    assert len(set(flat)) == len(flat) == (n_batches // world) * world


def test_sampler_resumes_mid_epoch_without_reading_earlier_batches():
    sampler = BucketBatchSampler([1.0] * 10, 1.5, seed=0, num_replicas=2, rank=1)
    sampler.set_epoch(4)
    whole = list(sampler)
    sampler.set_epoch(4, start=3)
    assert list(sampler) == whole[3:] and len(sampler) == len(whole) == 5


@pytest.fixture
def trainer_factory(tmp_path):
    def make(name: str) -> Trainer:
        cfg = TrainConfig(train=str(CLIPS), dev=str(CLIPS), out=str(tmp_path / name), model=TINY, epochs=1,
                          batch_seconds=5, warmup_steps=1, num_workers=0, speed_perturb=False, noise_prob=0.0,
                          spec_augment=False)
        return Trainer(cfg)
    return make


def test_accumulated_batches_step_like_one_batch_holding_all_their_utterances(trainer_factory):
    a, b = trainer_factory("a"), trainer_factory("b")
    data = SpeechDataset(a.train_utts, a.rec.frontend, a.vocab)
    items = [data[i] for i in range(len(data))]
    parts = [collate(items[:1]), collate(items[1:4]), collate(items[4:])]  # 1, 3 and 1 utterances
    whole = collate(items)
    with torch.no_grad():
        batch_means = [float(a._loss_sum(p)) / len(p.ids) for p in parts]
    loss_parts, loss_whole = a.train_step(parts), b.train_step(whole)
    assert loss_parts == pytest.approx(loss_whole, rel=1e-5)
    assert abs(sum(batch_means) / 3 - loss_whole) > 1e-3  # what an unweighted mean of the batches would give
    # Adam's first step is about lr * sign(gradient): where a gradient is near 0, rounding (which differs from one
    # CPU's kernels to another's) moves a weight by up to lr; nearly all weights agree to far less.
    assert max_difference(a.rec.model.state_dict(), b.rec.model.state_dict()) <= 1.01 * a.cfg.lr
    assert fraction_apart(a.rec.model.state_dict(), b.rec.model.state_dict(), 1e-5) < 0.01


def test_resuming_with_another_number_of_processes_keeps_the_position_in_the_epoch(trainer_factory, tmp_path):
    first = trainer_factory("run")
    first.state.update(batch_in_epoch=1, step=1)
    first.save(tmp_path / "run" / "last.pt", first.train_state())
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    ckpt["train_state"]["world_size"] = 4  # as if 4 processes had each trained 1 batch of the epoch
    save_atomic(ckpt, tmp_path / "run" / "last.pt")
    resumed = Trainer(dataclasses.replace(first.cfg, resume=True))
    assert resumed.state["batch_in_epoch"] == 4 and resumed.state["step"] == 1


def test_config_file_sets_defaults_and_flags_win(tmp_path):
    conf = tmp_path / "conf.json"
    conf.write_text('{"hidden": 48, "layers": 3, "lr": 0.002, "amp": true, "accum-steps": 4}')
    cfg = parse_args(["--train", "t", "--dev", "d", "--out", "o", "--config", str(conf), "--lr", "0.003"])
    assert (cfg.model.hidden, cfg.model.layers, cfg.lr, cfg.amp, cfg.accum_steps) == (48, 3, 0.003, True, 4)
    conf.write_text('{"hiden": 48}')
    with pytest.raises(SystemExit):
        parse_args(["--train", "t", "--dev", "d", "--out", "o", "--config", str(conf)])


@pytest.mark.parametrize("accum", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: 10 s more, `-m slow`
def test_two_gloo_processes_match_one_process_accumulating_the_same_batches(tmp_path, accum):
    """Rank r's j-th batch is batch 2j + r of the epoch's list, so a step of 2 processes x `accum` batches
    covers the same batches as a step of one process accumulating 2 x `accum` (no_sync is used when accum > 1)."""
    env = environment()
    ddp = subprocess.run(train_command(2, tmp_path / "ddp", "--accum-steps", str(accum)), env=env,
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "asr.train", *TRAIN_FLAGS, "--out", str(tmp_path / "one"),
                          "--accum-steps", str(2 * accum)], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert max_difference(weights(tmp_path / "ddp" / "last.pt"), weights(tmp_path / "one" / "last.pt")) < 1e-5
    ddp_state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["train_state"]
    assert (ddp_state["step"], ddp_state["world_size"]) == (2 * 2 // accum, 2)  # 2 epochs of 4 batches
    rows = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # rank 0 alone writes
    assert ddp.stdout.count("best_dev_wer=") == 1


def test_torchrun_processes_end_without_tearing_the_interpreter_down_beneath_gloo_threads(tmp_path):
    """DDP keeps the gloo group referenced, so its worker threads outlive destroy_process_group(), and an
    interpreter torn down beneath them aborted about 1 run in 100 ("terminate called without an active exception",
    exit -6, after all the work was written): a torchrun process ends with os._exit once its work is done."""
    script = tmp_path / "train_marked.py"
    script.write_text(WITH_TEARDOWN_MARK)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    ddp = subprocess.run([*launcher, str(script), *TRAIN_FLAGS, "--epochs", "1", "--out", str(tmp_path / "ddp")],
                         env=environment(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("best_dev_wer=") == 1  # what rank 0 printed is flushed before it leaves
    assert "interpreter teardown" not in ddp.stderr
    one = subprocess.run([sys.executable, str(script), *TRAIN_FLAGS, "--epochs", "1", "--out", str(tmp_path / "one")],
                         env=environment(), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "interpreter teardown" in one.stderr  # one process ends as any Python program does


@pytest.mark.slow
@pytest.mark.parametrize("dropout", ["0", "0.2"])  # 0.2: each process's RNG states must come back to it
def test_ddp_stopped_by_sigterm_resumes_to_the_same_parameters(tmp_path, dropout):
    env = environment()
    epochs = ["--epochs", "6", "--dropout", dropout]
    whole = subprocess.run(train_command(2, tmp_path / "whole", *epochs), env=env, capture_output=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "stopped"
    proc = subprocess.Popen(train_command(2, out, *epochs), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both workers
    proc.communicate(timeout=120)
    state = torch.load(out / "last.pt", weights_only=True)["train_state"]
    if state["epoch"] >= 6:
        pytest.skip("training finished before the signal arrived (machine too fast for this test)")
    resumed = subprocess.run(train_command(2, out, *epochs, "--resume"), env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert b"resuming " in resumed.stderr and b"last.pt" in resumed.stderr
    assert max_difference(weights(out / "last.pt"), weights(tmp_path / "whole" / "last.pt")) < 1e-5
