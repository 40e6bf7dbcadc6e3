"""The training loop: Trainer holds one run's state; `run()` trains, validates, checkpoints and plots.

Under torchrun (WORLD_SIZE > 1) each process trains on its share of every epoch's batches through
DistributedDataParallel, validation is split over the processes, and rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from asr.checkpoint import model_state, save_atomic
from asr.data import Batch, BucketBatchSampler, SpeechDataset
from asr.decoding import Decoder, DecodingConfig
from asr.metrics import score
from asr.recognizer import utterance_log_probs
from asr.text import load_vocab
from asr.training import distributed
from asr.training.average import finish_with_average, save_snapshot
from asr.training.checks import augmentation_summary
from asr.training.config import TrainConfig
from asr.training.plot import plot_curves
from asr.training.progress import Progress, epoch_line
from asr.training.resume import make_train_state, restore_train_state, rng_state, set_rng_state
from asr.training.schedule import lr_at, warmup_warning
from asr.training.sets import read_sets
from asr.training.setup import (amp_dtype, build_augmentations, build_or_resume, fastest_speed_factor, freeze_bottom,
                                 init_anchor, make_loader, make_optimizer, pull_towards)
from asr.training.stopping import StopRequested, start_batches, why_stop


class Trainer:
    """Holds the state of one training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig):
        if cfg.accum_steps < 1:
            raise ValueError(f"accum_steps must be at least 1, got {cfg.accum_steps}")
        self.cfg = cfg
        self.dist = distributed.setup(cfg.device)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(self.dist.device)
        torch.manual_seed(cfg.seed)
        vocab = load_vocab(cfg.tokenizer)
        wave_aug, feat_aug = build_augmentations(cfg)  # first: it refuses RIRs given as noise
        self.train_utts, self.dev_utts = read_sets(cfg.train, cfg.dev, vocab, fastest_speed_factor(cfg),
                                                   cfg.batch_seconds, say=self.dist.is_main)  # one report in all
        self.rec, saved = build_or_resume(cfg, self.dist, vocab, self.train_utts)
        self.vocab = self.rec.vocab
        freeze_bottom(self.rec.model, cfg)  # before the optimiser: it holds only what trains
        self.optimizer = make_optimizer(self.rec.model, cfg)
        self.anchor = init_anchor(self.rec.model, cfg)  # --init-decay's: the weights it pulls towards
        self.amp_dtype = amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.amp and self.amp_dtype == torch.float16 else None
        self.model = self.rec.model  # what the training step calls: the model, or DDP around it
        if self.dist.enabled:
            torch.manual_seed(cfg.seed + self.dist.rank)  # the same initial weights, different dropout masks
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.rec.model, device_ids=device_ids)
        self.dataset = SpeechDataset(self.train_utts, self.rec.frontend, self.vocab, wave_aug, feat_aug, cfg.seed)
        self.sampler = BucketBatchSampler([u.duration for u in self.train_utts], cfg.batch_seconds, seed=cfg.seed,
                                          num_replicas=self.dist.world_size, rank=self.dist.rank)
        self.steps_per_epoch = math.ceil(len(self.sampler) / cfg.accum_steps)  # of this process count, epoch 1
        # warmup_end: the progress (epochs) at which warm-up ended, where the decay starts; None while warming up
        self.state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_dev_wer": float("inf"), "elapsed": 0.0,
                      "skipped_steps": 0, "warmup_end": None, "epoch_losses": []}
        self.rng_to_restore = None  # this process's RNG states from last.pt, until training goes on
        if saved is not None:
            self.restore(saved)

    def restore(self, saved: dict) -> None:
        """Continue from a checkpoint's train_state: optimiser, loss scaler, progress."""
        state, self.rng_to_restore = restore_train_state(saved, self.optimizer, self.scaler, self.dist)
        if "warmup_end" not in saved and state["step"] >= self.cfg.warmup_steps:  # written by a schedule of steps
            # Where that schedule had warm-up end: exact if this run has as many processes as the one that wrote it.
            state["warmup_end"] = Fraction(self.cfg.warmup_steps, self.steps_per_epoch)
        self.state.update(state)

    def progress(self) -> Fraction:
        """Epochs of training done: whole epochs plus the fraction of this epoch's batches done (counted in
        optimiser steps, skipped ones included), exact. It is the same at the same place in training whatever the
        number of processes (unlike the step count)."""
        steps_taken = math.ceil(self.state["batch_in_epoch"] / self.cfg.accum_steps)
        steps_this_epoch = math.ceil(len(self.sampler) / self.cfg.accum_steps)  # batches are formed anew each epoch
        return self.state["epoch"] + Fraction(steps_taken, steps_this_epoch)

    def learning_rate(self) -> float:
        """The next step's: warm-up counts optimiser steps (a resumed run past them does not warm up again),
        the decay after it follows progress() from where warm-up ended (noted in state["warmup_end"])."""
        state, progress = self.state, self.progress()
        if state["warmup_end"] is None and state["step"] >= self.cfg.warmup_steps:
            state["warmup_end"] = progress
        return lr_at(state["step"], progress, state["warmup_end"], self.cfg)

    def train_state(self) -> dict:
        """last.pt's train_state (see resume.py). Every process calls it: it gathers their RNG states."""
        rng = distributed.gather(rng_state(self.device), self.dist)
        return make_train_state(self.state, self.optimizer, self.scaler, rng)

    def save(self, path: Path, train_state: dict | None = None) -> None:
        """The recogniser to path, with train_state (from self.train_state()) for last.pt."""
        self.rec.metadata.update({
            "train_manifest": str(self.cfg.train), "dev_manifest": str(self.cfg.dev),
            "epochs": self.state["epoch"], "steps": self.state["step"],
            "wall_minutes": round(self.state["elapsed"] / 60, 2), "best_dev_wer": self.state["best_dev_wer"],
            "train_config": json.loads(json.dumps(dataclasses.asdict(self.cfg))),
            "parameters": self.rec.model.num_parameters(),
        })
        ckpt = model_state(self.rec)
        if train_state is not None:
            ckpt["train_state"] = train_state
        save_atomic(ckpt, path)

    def _loss_sum(self, batch: Batch) -> torch.Tensor:
        """Sum over the batch's utterances of CTC loss / target length (what reduction 'mean' averages)."""
        feats = batch.features.to(self.device, non_blocking=True)
        lengths = batch.feature_lengths.to(self.device, non_blocking=True)
        token_lengths = batch.token_lengths.to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.cfg.amp):
            log_probs, out_lengths = self.model(feats, lengths)
        losses = torch.nn.functional.ctc_loss(
            log_probs.float().transpose(0, 1),  # (T', B, V), as ctc_loss wants
            batch.tokens.to(self.device), out_lengths, token_lengths,
            blank=self.vocab.blank, reduction="none", zero_infinity=True,
        )  # (B,)
        return (losses / token_lengths.clamp_min(1)).sum()

    def train_step(self, batches: Batch | list[Batch]) -> float | None:
        """One optimiser step over one batch, or several whose gradients add up (accumulation); under DDP over
        this process's share of the global batch. Returns the loss averaged over the utterances of the global
        batch, or None if the loss or the gradient was not finite (then no process takes the step)."""
        batches = [batches] if isinstance(batches, Batch) else list(batches)
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        # The loss is the mean over all utterances of the global batch, as CTC's reduction 'mean' is over one
        # batch. DDP averages gradients over processes, so each process's part is scaled by world_size.
        count = torch.tensor([sum(len(b.ids) for b in batches)], dtype=torch.float64)
        count = float(distributed.all_sum(count, self.dist)[0])
        total = torch.zeros((), device=self.device)
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            with contextlib.nullcontext() if last or not self.dist.enabled else self.model.no_sync():
                loss = self._loss_sum(batch) / count * self.dist.world_size
                (loss if self.scaler is None else self.scaler.scale(loss)).backward()
            total += loss.detach()
        loss = float(distributed.all_sum(total, self.dist)) / self.dist.world_size
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.rec.model.parameters(), self.cfg.grad_clip)
        if not (math.isfinite(loss) and torch.isfinite(grad_norm)):
            self.state["skipped_steps"] += 1
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.update()  # an fp16 overflow: a smaller loss scale next time
            return None
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        pull_towards(self.anchor, lr * self.cfg.init_decay)
        self.state["step"] += 1
        return loss

    def validate(self) -> tuple[float, float]:
        """Greedy dev WER/CER; each process decodes every world_size-th utterance, every process gets the result."""
        self.rec.model.eval()
        rank, world = self.dist.rank, self.dist.world_size
        greedy = Decoder(DecodingConfig(), self.vocab)
        hyps = greedy.transcripts(utterance_log_probs(self.rec, self.dev_utts[rank::world]))
        if self.dist.enabled:
            parts = distributed.gather(hyps, self.dist)  # parts[r][j] is utterance j * world + r
            hyps = [parts[i % world][i // world] for i in range(len(self.dev_utts))]
        result = score(self.dev_utts, hyps)
        self.rec.model.train()
        return result["wer"], result["cer"]

    def train_epoch(self, loader, stop: StopRequested, start: float) -> tuple[list[float], float, str]:
        """Train on the rest of the current epoch; returns (its step losses, audio seconds, why it stopped or "")."""
        cfg, state = self.cfg, self.state
        losses, seconds, t0, pending = state["epoch_losses"], 0.0, time.time(), []  # kept in last.pt
        # The DataLoader draws its workers' base seed from the global RNG as an epoch starts: last.pt holds the
        # RNG after that draw when written mid-epoch, before the next epoch's when written at an epoch's end.
        if state["batch_in_epoch"] == 0:
            self._restore_rng()
        batches = start_batches(loader)  # workers that leave stop signals to the trainer
        self._restore_rng()
        progress = Progress(f"epoch {state['epoch'] + 1}/{cfg.epochs}", len(self.sampler), state["batch_in_epoch"],
                            enabled=self.dist.is_main)
        for i, batch in enumerate(batches, start=state["batch_in_epoch"]):
            pending.append(batch)
            if len(pending) < cfg.accum_steps and i + 1 < len(self.sampler):
                continue
            loss = self.train_step(pending)
            state["batch_in_epoch"] = i + 1
            seconds += sum(b.seconds for b in pending)
            pending = []
            if loss is not None:
                losses.append(loss)
            progress.update(i + 1, loss, self.optimizer.param_groups[0]["lr"], seconds / max(time.time() - t0, 1e-9))
            state["elapsed"] = time.time() - start
            stopped = why_stop(stop, state["elapsed"], cfg.max_minutes, self.dist)
            if stopped:
                progress.close()
                return losses, seconds, stopped
        progress.close()
        return losses, seconds, ""

    def _restore_rng(self) -> None:
        """Once, as a resumed run goes on: this process's RNG states from last.pt (it draws what it would have)."""
        if self.rng_to_restore is not None:
            set_rng_state(self.rng_to_restore, self.device)
            self.rng_to_restore = None

    def end_epoch(self, epoch: int, losses: list[float], seconds: float, train_seconds: float, start: float) -> None:
        """Validate on dev, log a metrics row, write best.pt (if dev WER is as low as it has been: of epochs that tie,
        the later one, trained longer and further down the learning-rate schedule) and last.pt (rank 0)."""
        state, main = self.state, self.dist.is_main
        state["epoch"], state["batch_in_epoch"], state["epoch_losses"] = epoch + 1, 0, []
        dev_wer, dev_cer = self.validate()
        improved = dev_wer <= state["best_dev_wer"]  # a small dev ties often (a fine-tune's 150 clips: 8 epochs)
        if improved:
            state["best_dev_wer"] = dev_wer
        state["elapsed"] = time.time() - start
        seconds = float(distributed.all_sum(torch.tensor([seconds], dtype=torch.float64), self.dist)[0])
        row = {"epoch": epoch + 1, "step": state["step"], "train_loss": float(np.mean(losses)) if losses else None,
               "dev_wer": round(dev_wer, 3), "dev_cer": round(dev_cer, 3), "lr": self.optimizer.param_groups[0]["lr"],
               "audio_seconds_per_second": round(seconds / max(train_seconds, 1e-9), 1),
               "elapsed_minutes": round(state["elapsed"] / 60, 2), "skipped_steps": state["skipped_steps"]}
        train_state = self.train_state()
        if main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(epoch_line(row), file=sys.stderr)
            if improved:
                self.save(self.out / "best.pt")
            self.save(self.out / "last.pt", train_state)
            if self.cfg.average_last > 1:
                save_snapshot(self.rec.model, self.out, epoch + 1, self.cfg.average_last)

    def save_stopped(self, why: str) -> None:
        """Save last.pt (rank 0) at the batch where training stopped."""
        train_state = self.train_state()
        if self.dist.is_main:
            self.save(self.out / "last.pt", train_state)
            how = "--resume with a larger --max-minutes" if why == "time limit" else "--resume"  # the budget is spent
            print(f"stopped by {why} in epoch {self.state['epoch'] + 1} after batch {self.state['batch_in_epoch']}; "
                  f"saved {self.out / 'last.pt'} ({how} continues from there)", file=sys.stderr)

    def run(self) -> dict:
        cfg, state, main = self.cfg, self.state, self.dist.is_main
        if main:
            trained = sum(p.numel() for p in self.rec.model.parameters() if p.requires_grad) / 1e6
            frozen = f" ({trained:.2f}M trained: --freeze-bottom {cfg.freeze_bottom})" if cfg.freeze_bottom else ""
            print(f"model: {self.rec.model.num_parameters() / 1e6:.2f}M parameters{frozen}; {len(self.train_utts)} "
                  f"training utterances ({sum(u.duration for u in self.train_utts) / 3600:.2f} h), {len(self.sampler)} "
                  f"batches an epoch, {cfg.epochs} epochs", file=sys.stderr)
            print(augmentation_summary(cfg, self.dataset.wave_augment), file=sys.stderr)
            if self.dist.enabled or cfg.accum_steps > 1:
                print(f"{self.dist.world_size} processes x {cfg.accum_steps} batches a step (batches above are per "
                      f"process); {self.steps_per_epoch} steps an epoch", file=sys.stderr)
            said = warmup_warning(cfg, self.steps_per_epoch)
            if said:
                print(said, file=sys.stderr)
        loader = make_loader(self.dataset, self.sampler, cfg, self.device)
        start = time.time() - state["elapsed"]
        with StopRequested() as stop:
            stopped = why_stop(stop, state["elapsed"], cfg.max_minutes, self.dist)  # resumed with no time left?
            while state["epoch"] < cfg.epochs and not stopped:
                epoch = state["epoch"]
                self.sampler.set_epoch(epoch, start=state["batch_in_epoch"])
                self.dataset.set_epoch(epoch)
                self.model.train()
                t0 = time.time()
                losses, seconds, stopped = self.train_epoch(loader, stop, start)
                train_seconds = time.time() - t0
                # A stop mid-epoch (or by a signal, which must not wait for validation) saves where it is, so that
                # --resume trains the rest of the epoch; a time limit reached at the epoch's end ends it first.
                if stopped == "signal" or (stopped and state["batch_in_epoch"] < len(self.sampler)):
                    self.save_stopped(stopped)
                    break
                self.end_epoch(epoch, losses, seconds, train_seconds, start)
        distributed.barrier(self.dist)  # rank 0's files are written before any process reads them
        if cfg.average_last > 1 and not stopped and state["epoch"] >= cfg.epochs:
            finish_with_average(self)
        if main and stopped != "signal" and (self.out / "metrics.jsonl").exists():
            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        distributed.barrier(self.dist)  # no process exits (ending the job) before rank 0 has written its files
        return {"stopped": stopped or "done", **state}
