"""Shared fixtures: the five AN4 clips, their normalisation statistics, a tiny untrained recogniser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from asr.audio import load_audio
from asr.checkpoint import DEFAULT_STREAM_MODEL, model_state, save_atomic
from asr.data import read_manifest
from asr.features import FeatureConfig, Frontend, RunningStats, log_mel
from asr.model import AcousticModel, ModelConfig
from asr.recognizer import Recognizer
from asr.text import CharVocab

CLIPS_DIR = Path(__file__).parent / "data" / "an4"
TINY_MODEL = ModelConfig(conv_channels=8, hidden=32, layers=1, dropout=0.0)  # ~40k parameters


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Small tensors gain nothing from threads, and the suite must share two cores politely."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def clips_manifest() -> Path:
    """tests/data/an4/clips.jsonl: 5 real AN4 utterances, audio paths relative to the manifest."""
    return CLIPS_DIR / "clips.jsonl"


@pytest.fixture(scope="session")
def clips(clips_manifest):
    """The clips as Utterances (absolute audio paths), in manifest order."""
    return read_manifest(clips_manifest)


@pytest.fixture(scope="session")
def short_clip(clips) -> Path:
    """The shortest clip (0.8 s, "STOP")."""
    return Path(min(clips, key=lambda u: u.duration).audio)


@pytest.fixture(scope="session")
def clips_frontend(clips) -> Frontend:
    """Frontend with per-band mean/std computed from the clips."""
    cfg = FeatureConfig()
    stats = RunningStats(cfg.n_mels)
    for u in clips:
        stats.add(log_mel(load_audio(u.audio), cfg))
    return Frontend(cfg, *stats.mean_std())


def make_recognizer(frontend: Frontend, model_cfg: ModelConfig = TINY_MODEL, seed: int = 0) -> Recognizer:
    """An untrained recogniser, in eval mode, with seeded weights."""
    vocab = CharVocab()
    torch.manual_seed(seed)
    model = AcousticModel(ModelConfig(**{**model_cfg.__dict__, "vocab_size": len(vocab)}))
    return Recognizer(model.eval(), frontend, vocab, {"note": "tiny untrained test model"})


@pytest.fixture(scope="session")
def build_recognizer(clips_frontend):
    """Factory: build_recognizer(ModelConfig(...), seed=0) -> a fresh untrained Recognizer (clip statistics)."""
    return lambda model_cfg=TINY_MODEL, seed=0: make_recognizer(clips_frontend, model_cfg, seed)


@pytest.fixture
def tiny_recognizer(clips_frontend) -> Recognizer:
    """A fresh tiny untrained recogniser (hidden 32, 1 layer) for each test."""
    return make_recognizer(clips_frontend)


@pytest.fixture(scope="session")
def tiny_checkpoint(clips_frontend, tmp_path_factory) -> Path:
    """The tiny recogniser saved as a checkpoint file (read it, do not write to it)."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    save_atomic(model_state(make_recognizer(clips_frontend)), path)
    return path


@pytest.fixture(scope="session")
def stream_model() -> Path:
    """The shipped streaming (LC-BLSTM) model, asr/assets/an4_stream.pt, with the LM beside it."""
    return DEFAULT_STREAM_MODEL


@pytest.fixture
def no_ffmpeg(tmp_path_factory, monkeypatch) -> dict:
    """PATH without ffmpeg, as on a machine that lacks it (in this process; the returned environment for children)."""
    empty = tmp_path_factory.mktemp("bin-without-ffmpeg")
    monkeypatch.setenv("PATH", str(empty))
    return {**os.environ, "PATH": str(empty)}
