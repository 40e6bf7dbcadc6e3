"""Training: configuration, the loop, the learning-rate schedule, data-parallel set-up, training curves.

    trainer = Trainer(TrainConfig(train="train.jsonl", dev="dev.jsonl", out="exp/x"))
    result = trainer.run()                  # writes last.pt, best.pt, metrics.jsonl, curves.png

config.py       TrainConfig
checks.py       what a run refuses before it trains: an --out holding a run, a contradicting --resume, RIRs as noise
sets.py         the training and dev utterances: what is dropped or refused, and said
setup.py        augmentation, a new or resumed recogniser, the optimiser
schedule.py     the learning rate over training
resume.py       what last.pt keeps to go on from: progress, optimiser, loss scale, RNG states
stopping.py     stopping early, resumably: signals, the time budget
trainer.py      Trainer: train steps (DDP, AMP, accumulation), validation, checkpoints, stopping
distributed.py  torchrun / DDP helpers (one process: every helper is a no-op)
plot.py         training curves
"""

from asr.training import distributed
from asr.training.config import TrainConfig
from asr.training.schedule import lr_at
from asr.training.sets import ctc_feasible, usable_utterances
from asr.training.setup import build_augmentations, build_or_resume, fastest_speed_factor
from asr.training.stopping import StopRequested
from asr.training.trainer import Trainer

__all__ = [
    "StopRequested", "TrainConfig", "Trainer", "build_augmentations", "build_or_resume", "ctc_feasible",
    "distributed", "fastest_speed_factor", "lr_at", "usable_utterances",
]
