"""Train a BiLSTM-CTC model.

    python -m asr.train --train manifests/an4/train.jsonl --dev manifests/an4/dev.jsonl --out exp/an4
"""

from __future__ import annotations

import argparse
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

from asr import augment
from asr.audio import SAMPLE_RATE, AudioError
from asr.checkpoint import Recognizer, read_checkpoint, recognizer_from_state, save_atomic, model_state
from asr.data import BucketBatchSampler, ManifestError, SpeechDataset, Utterance, collate, read_manifest
from asr.evaluate import recognize_utterances, score
from asr.features import FeatureConfig, Frontend, RunningStats, log_mel, num_frames
from asr.audio import load_audio
from asr.model import AcousticModel, ModelConfig, subsampled_lengths
from asr.text import CharVocab


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


def normalization_stats(utts: list[Utterance], cfg: FeatureConfig, max_utts: int = 2000, seed: int = 0) -> Frontend:
    """Per-band mean/std of clean log-mel features over (up to max_utts of) the training set."""
    stats = RunningStats(cfg.n_mels)
    chosen = np.random.default_rng(seed).permutation(len(utts))[:max_utts]
    for i in chosen:
        stats.add(log_mel(load_audio(utts[i].audio), cfg))
    return Frontend(cfg, *stats.mean_std())


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * final_lr_ratio at total_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.final_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def usable_utterances(utts: list[Utterance], vocab: CharVocab, name: str) -> list[Utterance]:
    """Drop (and report) utterances whose audio is missing or whose transcript cannot fit CTC."""
    missing = [u for u in utts if not Path(u.audio).is_file()]
    for u in missing[:10]:
        print(f"warning: {name}: {u.id}: audio file {u.audio} not found, skipped", file=sys.stderr)
    present = [u for u in utts if Path(u.audio).is_file()]
    kept = [u for u in present if ctc_feasible(u, vocab)]
    if missing or len(kept) < len(present):
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


class Trainer:
    """Holds the state of one training run; `run()` trains, validates, checkpoints and plots."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.vocab = CharVocab()
        self.train_utts = usable_utterances(read_manifest(cfg.train), self.vocab, cfg.train)
        self.dev_utts = [u for u in read_manifest(cfg.dev) if Path(u.audio).is_file()]
        self.state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_dev_wer": float("inf"), "elapsed": 0.0,
                      "skipped_steps": 0}
        last = self.out / "last.pt"
        if cfg.resume and last.exists():
            ckpt = read_checkpoint(last)
            self.rec = recognizer_from_state(ckpt, self.device)
            self._make_optimizer()
            self.optimizer.load_state_dict(ckpt["train_state"]["optimizer"])
            self.state.update({k: v for k, v in ckpt["train_state"].items() if k != "optimizer"})
            print(f"resumed from {last}: epoch {self.state['epoch']}, step {self.state['step']}", file=sys.stderr)
        else:
            model_cfg = dataclasses.replace(cfg.model, n_mels=cfg.features.n_mels, vocab_size=len(self.vocab))
            frontend = normalization_stats(self.train_utts, cfg.features, seed=cfg.seed)
            self.rec = Recognizer(AcousticModel(model_cfg).to(self.device), frontend, self.vocab, {})
            self._make_optimizer()
        wave_aug, feat_aug = build_augmentations(cfg)
        self.dataset = SpeechDataset(self.train_utts, self.rec.frontend, self.vocab, wave_aug, feat_aug, cfg.seed)
        self.sampler = BucketBatchSampler([u.duration for u in self.train_utts], cfg.batch_seconds, seed=cfg.seed)
        self.total_steps = cfg.epochs * len(self.sampler)

    def _make_optimizer(self):
        self.optimizer = torch.optim.AdamW(self.rec.model.parameters(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay)

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
            ckpt["train_state"] = {**self.state, "optimizer": self.optimizer.state_dict()}
        save_atomic(ckpt, path)

    def train_step(self, batch) -> float | None:
        """One optimiser step; returns the loss, or None if it was not finite (the step is skipped)."""
        model = self.rec.model
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.state["step"], self.total_steps, self.cfg)
        feats, lengths = batch.features.to(self.device), batch.feature_lengths.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp):
            log_probs, out_lengths = model(feats, lengths)
        loss = torch.nn.functional.ctc_loss(
            log_probs.float().transpose(0, 1),  # (T', B, V), as ctc_loss wants
            batch.tokens.to(self.device), out_lengths, batch.token_lengths.to(self.device),
            blank=self.vocab.blank, reduction="mean", zero_infinity=True,
        )
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self.state["skipped_steps"] += 1
            return None
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
        if not torch.isfinite(grad_norm):
            self.state["skipped_steps"] += 1
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        self.state["step"] += 1
        return loss.item()

    def validate(self) -> tuple[float, float]:
        self.rec.model.eval()
        result = score(self.dev_utts, recognize_utterances(self.rec, self.dev_utts))
        self.rec.model.train()
        return result["wer"], result["cer"]

    def run(self) -> dict:
        cfg, state = self.cfg, self.state
        print(f"model: {self.rec.model.num_parameters() / 1e6:.2f}M parameters; {len(self.train_utts)} training "
              f"utterances ({sum(u.duration for u in self.train_utts) / 3600:.2f} h), {len(self.sampler)} "
              f"batches an epoch, {cfg.epochs} epochs", file=sys.stderr)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=cfg.num_workers,
            worker_init_fn=_worker_init, persistent_workers=False, prefetch_factor=4 if cfg.num_workers else None,
        )
        start = time.time() - state["elapsed"]
        stopped = ""
        with StopRequested() as stop:
            while state["epoch"] < cfg.epochs and not stopped:
                epoch = state["epoch"]
                self.sampler.set_epoch(epoch)
                self.dataset.set_epoch(epoch)
                self.rec.model.train()
                losses, seconds, t0 = [], 0.0, time.time()
                bar = tqdm(loader, total=len(self.sampler), desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr,
                           dynamic_ncols=True, leave=False, initial=state["batch_in_epoch"])
                for i, batch in enumerate(bar):
                    if i < state["batch_in_epoch"]:
                        continue  # resuming mid-epoch: these batches were trained before the stop
                    loss = self.train_step(batch)
                    state["batch_in_epoch"] = i + 1
                    seconds += batch.seconds
                    if loss is not None:
                        losses.append(loss)
                    bar.set_postfix(loss=f"{loss if loss is not None else float('nan'):.3f}",
                                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}",
                                    audio_s_per_s=f"{seconds / (time.time() - t0):.0f}")
                    state["elapsed"] = time.time() - start
                    if stop.requested:
                        stopped = "signal"
                        break
                    if cfg.max_minutes and state["elapsed"] > cfg.max_minutes * 60:
                        stopped = "time limit"
                        break
                bar.close()
                train_seconds = time.time() - t0
                if stopped == "signal":
                    self.save(self.out / "last.pt", with_train_state=True)
                    print(f"stopped by signal in epoch {epoch + 1}; saved {self.out / 'last.pt'}", file=sys.stderr)
                    return {"stopped": stopped, **state}
                state["epoch"], state["batch_in_epoch"] = epoch + 1, 0
                dev_wer, dev_cer = self.validate()
                improved = dev_wer < state["best_dev_wer"]
                if improved:
                    state["best_dev_wer"] = dev_wer
                state["elapsed"] = time.time() - start
                row = {"epoch": epoch + 1, "step": state["step"], "train_loss": float(np.mean(losses)) if losses else None,
                       "dev_wer": round(dev_wer, 3), "dev_cer": round(dev_cer, 3), "lr": self.optimizer.param_groups[0]["lr"],
                       "audio_seconds_per_second": round(seconds / max(train_seconds, 1e-9), 1),
                       "elapsed_minutes": round(state["elapsed"] / 60, 2), "skipped_steps": state["skipped_steps"]}
                with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)
                if improved:
                    self.save(self.out / "best.pt", with_train_state=False)
                self.save(self.out / "last.pt", with_train_state=True)
        plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        return {"stopped": stopped or "done", **state}


def plot_curves(metrics: Path, png: Path) -> None:
    """Training loss and dev WER per epoch, from metrics.jsonl, as a PNG (needs matplotlib: `.[plot]`)."""
    try:
        import matplotlib
    except ImportError:
        print(f"note: matplotlib is not installed, so {png} was not drawn (pip install 'asr[plot]')", file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(epochs, [r["train_loss"] for r in rows], color="tab:blue", label="train CTC loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train CTC loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [r["dev_wer"] for r in rows], color="tab:red", label="dev WER")
    ax2.set_ylabel("dev WER (%)", color="tab:red")
    ax2.set_ylim(0, min(100, max(r["dev_wer"] for r in rows) * 1.1 + 1))
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


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
    p.add_argument("--amp", action="store_true", help="bf16 autocast (cuda)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    m = ModelConfig()
    p.add_argument("--hidden", type=int, default=m.hidden, help="LSTM units per direction")
    p.add_argument("--layers", type=int, default=m.layers, help="BiLSTM layers")
    p.add_argument("--conv-channels", type=int, default=m.conv_channels)
    p.add_argument("--dropout", type=float, default=m.dropout)
    a = vars(p.parse_args(argv))
    model = ModelConfig(hidden=a.pop("hidden"), layers=a.pop("layers"), conv_channels=a.pop("conv_channels"),
                        dropout=a.pop("dropout"))
    a["snr_db"] = tuple(a["snr_db"])
    return TrainConfig(model=model, **a)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        result = Trainer(cfg).run()
    except (ManifestError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"best_dev_wer={result['best_dev_wer']:.2f} epochs={result['epoch']} stopped={result['stopped']}")
    return 130 if result["stopped"] == "signal" else 0


if __name__ == "__main__":
    sys.exit(main())
