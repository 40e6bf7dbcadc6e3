"""Train a BiLSTM-CTC model, in one process or data-parallel over GPUs and nodes (torchrun).

    python -m asr.train --train manifests/an4/train.jsonl --dev manifests/an4/dev.jsonl --out exp/an4
    torchrun --standalone --nproc-per-node 8 -m asr.train --config conf.json --device cuda --amp ...
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr import augment, distributed
from asr.audio import SAMPLE_RATE, AudioError
from asr.checkpoint import Recognizer, read_checkpoint, recognizer_from_state, save_atomic, model_state
from asr.data import Batch, BucketBatchSampler, ManifestError, SpeechDataset, Utterance, collate, read_manifest
from asr.evaluate import recognize_utterances, score
from asr.features import FeatureConfig, normalization_stats, num_frames
from asr.plot import plot_curves
from asr.model import AcousticModel, ModelConfig, subsampled_lengths
from asr.text import BpeVocab, CharVocab


@dataclass(frozen=True)
class TrainConfig:
    train: str  # training manifest (JSONL)
    dev: str  # dev manifest: per-epoch WER and best-checkpoint selection
    out: str  # experiment folder: last.pt, best.pt, metrics.jsonl, curves.png
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    epochs: int = 60  # passes over the training set
    max_minutes: float = 0.0  # stop after this much wall time (0: no limit); the schedule is per step
    batch_seconds: float = 120.0  # padded audio seconds per batch
    lr: float = 1e-3  # peak learning rate (AdamW)
    final_lr_ratio: float = 0.02  # cosine decay ends at lr * this
    warmup_steps: int = 200  # linear warm-up from 0
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 5.0  # max global gradient norm
    seed: int = 0  # everything random derives from it
    noise: str = ""  # noise folder or JSONL manifest; "" -> synthetic coloured noise
    noise_prob: float = 0.4  # probability of adding noise to an utterance (0 disables)
    snr_db: tuple[float, float] = (5.0, 30.0)  # SNR range of added noise, dB
    rir: str = ""  # room impulse responses (folder or JSONL); "" -> no reverberation
    rir_prob: float = 0.2  # probability of reverberation when rir is given
    speed_perturb: bool = True  # speed factors 0.9 / 1.0 / 1.1
    spec_augment: bool = True  # SpecAugment time and frequency masks
    freq_masks: int = 2  # SpecAugment frequency masks
    freq_width: int = 15  # widest frequency mask, mel bins
    time_masks: int = 2  # SpecAugment time masks
    time_width: float = 0.05  # widest time mask, fraction of the utterance
    num_workers: int = 1  # DataLoader processes computing features (0: in the training process)
    device: str = "cpu"  # "cpu" or "cuda"
    amp: bool = False  # autocast (bf16 where supported) on cuda
    resume: bool = False  # continue from out/last.pt
    accum_steps: int = 1  # batches (per process) whose gradients add up to one optimiser step
    amp_dtype: str = "auto"  # with amp: "bf16", "fp16" (loss scaled by a GradScaler), "auto": bf16 where supported
    tokenizer: str = ""  # SentencePiece model file: BPE pieces as targets; "" -> characters


def build_augmentations(cfg: TrainConfig) -> tuple[list, list]:
    """(waveform augmentations, feature augmentations) as switched on in cfg."""
    wave, feats = [], []
    if cfg.speed_perturb:
        wave.append(augment.SpeedPerturb((0.9, 1.0, 1.1), seed=cfg.seed))
    if cfg.rir and cfg.rir_prob > 0:
        wave.append(augment.Reverb(augment.read_audio_list(cfg.rir), p=cfg.rir_prob, seed=cfg.seed))
    if cfg.noise_prob > 0:
        noises = augment.read_audio_list(cfg.noise) if cfg.noise else []
        wave.append(augment.AddNoise(noises, snr_db=cfg.snr_db, p=cfg.noise_prob, seed=cfg.seed))
    if cfg.spec_augment:
        feats.append(augment.SpecAugment(cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width, seed=cfg.seed))
    return wave, feats


def ctc_feasible(utt: Utterance, vocab: CharVocab, slowest_speed: float = 1.1) -> bool:
    """Whether the model's output frames (at the fastest speed perturbation) can hold the transcript:
    CTC needs one frame per token plus a blank between repeated tokens."""
    ids = vocab.encode(utt.text)
    needed = len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))
    frames = num_frames(int(utt.duration / slowest_speed * SAMPLE_RATE))
    return len(ids) > 0 and int(subsampled_lengths(torch.tensor(frames))) >= needed


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * final_lr_ratio at total_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.final_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def usable_utterances(utts: list[Utterance], vocab: CharVocab, name: str, quiet: bool = False) -> list[Utterance]:
    """Drop (and report, unless quiet) utterances whose audio is missing or whose transcript cannot fit CTC."""
    missing = [u for u in utts if not Path(u.audio).is_file()]
    for u in missing[: 0 if quiet else 10]:
        print(f"warning: {name}: {u.id}: audio file {u.audio} not found, skipped", file=sys.stderr)
    present = [u for u in utts if Path(u.audio).is_file()]
    kept = [u for u in present if ctc_feasible(u, vocab)]
    if (missing or len(kept) < len(present)) and not quiet:
        print(f"{name}: kept {len(kept)} of {len(utts)} utterances ({len(missing)} missing audio, "
              f"{len(present) - len(kept)} transcripts too long for their audio or empty)", file=sys.stderr)
    if not kept:
        raise ManifestError(f"{name}: no usable utterances")
    return kept


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


def _worker_init(_):
    torch.set_num_threads(1)


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    """The autocast dtype: cfg.amp_dtype, where "auto" means bf16 unless the GPU lacks it (then fp16)."""
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if cfg.amp_dtype == "auto":
        return torch.float16 if device.type == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
    if cfg.amp_dtype not in choices:
        raise ValueError(f"amp_dtype must be auto, bf16 or fp16, got {cfg.amp_dtype!r}")
    return choices[cfg.amp_dtype]


def load_vocab(tokenizer: str) -> CharVocab | BpeVocab:
    """BPE pieces of a SentencePiece model file, or characters when tokenizer is ""."""
    return BpeVocab.from_file(tokenizer) if tokenizer else CharVocab()


class Trainer:
    """Holds the state of one training run; `run()` trains, validates, checkpoints and plots.

    Under torchrun (WORLD_SIZE > 1) each process trains on its share of every epoch's batches through
    DistributedDataParallel, validation is split over the processes, and rank 0 alone writes files.
    """

    def __init__(self, cfg: TrainConfig):
        if cfg.accum_steps < 1:
            raise ValueError(f"accum_steps must be at least 1, got {cfg.accum_steps}")
        self.cfg = cfg
        self.dist = distributed.setup(cfg.device)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(self.dist.device)
        torch.manual_seed(cfg.seed)
        self.vocab = load_vocab(cfg.tokenizer)
        quiet = not self.dist.is_main  # one report, not one per process
        self.train_utts = usable_utterances(read_manifest(cfg.train), self.vocab, cfg.train, quiet=quiet)
        self.dev_utts = [u for u in read_manifest(cfg.dev) if Path(u.audio).is_file()]
        self.state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_dev_wer": float("inf"), "elapsed": 0.0,
                      "skipped_steps": 0}
        self.amp_dtype = amp_dtype(cfg, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.amp and self.amp_dtype == torch.float16 else None
        last = self.out / "last.pt"
        if cfg.resume and last.exists():
            self._resume(last)
        else:
            model_cfg = dataclasses.replace(cfg.model, n_mels=cfg.features.n_mels, vocab_size=len(self.vocab))
            stats = normalization_stats(self.train_utts, cfg.features, seed=cfg.seed) if self.dist.is_main else None
            frontend = distributed.broadcast(stats, self.dist)  # computed once, by rank 0
            self.rec = Recognizer(AcousticModel(model_cfg).to(self.device), frontend, self.vocab, {})
            self._make_optimizer()
        self.model = self.rec.model  # what the training step calls: the model, or DDP around it
        if self.dist.enabled:
            torch.manual_seed(cfg.seed + self.dist.rank)  # the same initial weights, different dropout masks
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.rec.model, device_ids=device_ids)
        wave_aug, feat_aug = build_augmentations(cfg)
        self.dataset = SpeechDataset(self.train_utts, self.rec.frontend, self.vocab, wave_aug, feat_aug, cfg.seed)
        self.sampler = BucketBatchSampler([u.duration for u in self.train_utts], cfg.batch_seconds, seed=cfg.seed,
                                          num_replicas=self.dist.world_size, rank=self.dist.rank)
        self.total_steps = cfg.epochs * math.ceil(len(self.sampler) / cfg.accum_steps)

    def _make_optimizer(self):
        self.optimizer = torch.optim.AdamW(self.rec.model.parameters(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay)

    def _resume(self, last: Path) -> None:
        ckpt = read_checkpoint(last)
        train_state = dict(ckpt["train_state"])
        self.rec = recognizer_from_state(ckpt, self.device)
        self.vocab = self.rec.vocab
        self._make_optimizer()
        self.optimizer.load_state_dict(train_state.pop("optimizer"))
        scaler_state = train_state.pop("scaler", None)
        if self.scaler is not None and scaler_state is not None:
            self.scaler.load_state_dict(scaler_state)
        saved_world = train_state.pop("world_size", 1)
        if saved_world != self.dist.world_size:
            # Batch j of rank r is batch j * world_size + r of the epoch's list: keep the global position.
            train_state["batch_in_epoch"] = train_state["batch_in_epoch"] * saved_world // self.dist.world_size
        self.state.update(train_state)
        if self.dist.is_main:
            print(f"resumed from {last}: epoch {self.state['epoch']}, step {self.state['step']}", file=sys.stderr)

    def save(self, path: Path, with_train_state: bool) -> None:
        self.rec.metadata.update({
            "train_manifest": str(self.cfg.train), "dev_manifest": str(self.cfg.dev),
            "epochs": self.state["epoch"], "steps": self.state["step"],
            "wall_minutes": round(self.state["elapsed"] / 60, 2), "best_dev_wer": self.state["best_dev_wer"],
            "train_config": json.loads(json.dumps(dataclasses.asdict(self.cfg))),
            "parameters": self.rec.model.num_parameters(),
        })
        ckpt = model_state(self.rec)
        if with_train_state:
            ckpt["train_state"] = {**self.state, "optimizer": self.optimizer.state_dict(),
                                   "world_size": self.dist.world_size}
            if self.scaler is not None:
                ckpt["train_state"]["scaler"] = self.scaler.state_dict()
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
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.state["step"], self.total_steps, self.cfg)
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
        self.state["step"] += 1
        return loss

    def validate(self) -> tuple[float, float]:
        """Greedy dev WER/CER; each process decodes every world_size-th utterance, every process gets the result."""
        self.rec.model.eval()
        rank, world = self.dist.rank, self.dist.world_size
        hyps = recognize_utterances(self.rec, self.dev_utts[rank::world])
        if self.dist.enabled:
            parts = distributed.gather(hyps, self.dist)  # parts[r][j] is utterance j * world + r
            hyps = [parts[i % world][i // world] for i in range(len(self.dev_utts))]
        result = score(self.dev_utts, hyps)
        self.rec.model.train()
        return result["wer"], result["cer"]

    def _should_stop(self, stop: StopRequested) -> str:
        """"signal", "time limit" or "": decided together, so that every process leaves the loop at the same step."""
        over_time = bool(self.cfg.max_minutes) and self.state["elapsed"] > self.cfg.max_minutes * 60
        by_signal, by_time = distributed.any_true([stop.requested, over_time], self.dist)
        return "signal" if by_signal else "time limit" if by_time else ""

    def train_epoch(self, loader, stop: StopRequested, start: float) -> tuple[list[float], float, str]:
        """Train on the rest of the current epoch; returns (step losses, audio seconds, why it stopped early or "")."""
        cfg, state = self.cfg, self.state
        losses, seconds, t0, pending = [], 0.0, time.time(), []
        bar = tqdm(loader, total=len(self.sampler), desc=f"epoch {state['epoch'] + 1}/{cfg.epochs}", file=sys.stderr,
                   dynamic_ncols=True, leave=False, initial=state["batch_in_epoch"], disable=not self.dist.is_main)
        for i, batch in enumerate(bar, start=state["batch_in_epoch"]):
            pending.append(batch)
            if len(pending) < cfg.accum_steps and i + 1 < len(self.sampler):
                continue
            loss = self.train_step(pending)
            state["batch_in_epoch"] = i + 1
            seconds += sum(b.seconds for b in pending)
            pending = []
            if loss is not None:
                losses.append(loss)
            bar.set_postfix(loss=f"{loss if loss is not None else float('nan'):.3f}",
                            lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                            audio_s_per_s=f"{seconds / (time.time() - t0):.0f}")
            state["elapsed"] = time.time() - start
            stopped = self._should_stop(stop)
            if stopped:
                bar.close()
                return losses, seconds, stopped
        bar.close()
        return losses, seconds, ""

    def end_epoch(self, epoch: int, losses: list[float], seconds: float, train_seconds: float, start: float) -> None:
        """Validate on dev, log a metrics row, write best.pt (if dev WER improved) and last.pt (rank 0)."""
        state, main = self.state, self.dist.is_main
        state["epoch"], state["batch_in_epoch"] = epoch + 1, 0
        dev_wer, dev_cer = self.validate()
        improved = dev_wer < state["best_dev_wer"]
        if improved:
            state["best_dev_wer"] = dev_wer
        state["elapsed"] = time.time() - start
        seconds = float(distributed.all_sum(torch.tensor([seconds], dtype=torch.float64), self.dist)[0])
        row = {"epoch": epoch + 1, "step": state["step"], "train_loss": float(np.mean(losses)) if losses else None,
               "dev_wer": round(dev_wer, 3), "dev_cer": round(dev_cer, 3), "lr": self.optimizer.param_groups[0]["lr"],
               "audio_seconds_per_second": round(seconds / max(train_seconds, 1e-9), 1),
               "elapsed_minutes": round(state["elapsed"] / 60, 2), "skipped_steps": state["skipped_steps"]}
        if main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)
            if improved:
                self.save(self.out / "best.pt", with_train_state=False)
            self.save(self.out / "last.pt", with_train_state=True)

    def run(self) -> dict:
        cfg, state, main = self.cfg, self.state, self.dist.is_main
        if main:
            print(f"model: {self.rec.model.num_parameters() / 1e6:.2f}M parameters; {len(self.train_utts)} training "
                  f"utterances ({sum(u.duration for u in self.train_utts) / 3600:.2f} h), {len(self.sampler)} "
                  f"batches an epoch, {cfg.epochs} epochs", file=sys.stderr)
            if self.dist.enabled or cfg.accum_steps > 1:
                print(f"{self.dist.world_size} processes x {cfg.accum_steps} batches a step (batches above are per "
                      f"process); {self.total_steps // max(cfg.epochs, 1)} steps an epoch", file=sys.stderr)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=cfg.num_workers,
            worker_init_fn=_worker_init, persistent_workers=False, prefetch_factor=4 if cfg.num_workers else None,
            pin_memory=self.device.type == "cuda",
        )
        start = time.time() - state["elapsed"]
        stopped = ""
        with StopRequested() as stop:
            while state["epoch"] < cfg.epochs and not stopped:
                epoch = state["epoch"]
                self.sampler.set_epoch(epoch, start=state["batch_in_epoch"])
                self.dataset.set_epoch(epoch)
                self.model.train()
                t0 = time.time()
                losses, seconds, stopped = self.train_epoch(loader, stop, start)
                train_seconds = time.time() - t0
                if stopped == "signal":
                    if main:
                        self.save(self.out / "last.pt", with_train_state=True)
                        print(f"stopped by signal in epoch {epoch + 1}; saved {self.out / 'last.pt'}", file=sys.stderr)
                    distributed.barrier(self.dist)  # no process exits (ending the job) before the file is written
                    return {"stopped": stopped, **state}
                self.end_epoch(epoch, losses, seconds, train_seconds, start)
        if main:
            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        distributed.barrier(self.dist)
        return {"stopped": stopped or "done", **state}


def apply_config_file(p: argparse.ArgumentParser, argv: list[str] | None) -> None:
    """Make the settings of the `--config` JSON file (flag names as keys, "-" or "_") the parser's defaults,
    so that flags given on the command line win over the file."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    path = pre.parse_known_args(argv)[0].config
    if not path:
        return
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        p.error(f"--config {path}: cannot read it as JSON ({e})")
    if not isinstance(values, dict):
        p.error(f"--config {path}: expected a JSON object of settings, got {type(values).__name__}")
    values = {k.replace("-", "_"): v for k, v in values.items()}
    known = {a.dest for a in p._actions} - {"help", "config", "train", "dev", "out"}
    unknown = sorted(set(values) - known)
    if unknown:
        p.error(f"--config {path}: unknown setting(s) {', '.join(unknown)} (paths go on the command line)")
    p.set_defaults(**values)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m asr.train", description="Train a BiLSTM-CTC model.")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", required=True, help="dev manifest (JSONL), for validation and model selection")
    p.add_argument("--out", required=True, help="experiment folder")
    for name in ("epochs", "warmup_steps", "seed", "num_workers", "freq_masks", "freq_width", "time_masks"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=defaults[name])
    for name in ("max_minutes", "batch_seconds", "lr", "final_lr_ratio", "weight_decay", "grad_clip", "noise_prob",
                 "rir_prob", "time_width"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=defaults[name])
    p.add_argument("--snr-db", type=float, nargs=2, default=defaults["snr_db"], metavar=("LOW", "HIGH"))
    p.add_argument("--noise", default="", help="noise folder or JSONL (default: synthetic coloured noise)")
    p.add_argument("--rir", default="", help="room impulse responses: folder or JSONL (default: none)")
    p.add_argument("--no-speed-perturb", dest="speed_perturb", action="store_false")
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast: bf16 where supported, else fp16 with loss scaling")
    p.add_argument("--amp-dtype", choices=["auto", "bf16", "fp16"], default=defaults["amp_dtype"])
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--accum-steps", type=int, default=defaults["accum_steps"],
                   help="batches per process whose gradients add up to one optimiser step")
    p.add_argument("--tokenizer", default="", help="SentencePiece model for BPE targets (default: characters)")
    p.add_argument("--config", help="JSON file of settings, e.g. {\"hidden\": 512}; flags given here win")
    m = ModelConfig()
    p.add_argument("--hidden", type=int, default=m.hidden, help="LSTM units per direction")
    p.add_argument("--layers", type=int, default=m.layers, help="BiLSTM layers")
    p.add_argument("--conv-channels", type=int, default=m.conv_channels)
    p.add_argument("--dropout", type=float, default=m.dropout)
    apply_config_file(p, argv)
    a = vars(p.parse_args(argv))
    a.pop("config")
    model = ModelConfig(hidden=a.pop("hidden"), layers=a.pop("layers"), conv_channels=a.pop("conv_channels"),
                        dropout=a.pop("dropout"))
    a["snr_db"] = tuple(a["snr_db"])
    return TrainConfig(model=model, **a)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        trainer = Trainer(cfg)
        result = trainer.run()
    except (ManifestError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if trainer.dist.is_main:
        print(f"best_dev_wer={result['best_dev_wer']:.2f} epochs={result['epoch']} stopped={result['stopped']}")
    distributed.shutdown(trainer.dist)
    return 130 if result["stopped"] == "signal" else 0


if __name__ == "__main__":
    sys.exit(main())
