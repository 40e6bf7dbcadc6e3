"""asr.training.setup and the feature version a checkpoint carries: the optimiser's weight-decay groups, the
channel augmentations a TrainConfig switches on, and v1 checkpoints keeping v1 features."""

from __future__ import annotations

import dataclasses

import torch

from asr import augment
from asr.checkpoint import DEFAULT_MODEL, load_model, model_state, read_checkpoint, recognizer_from_state
from asr.features import FeatureConfig, Frontend
from asr.model import AcousticModel, ModelConfig
from asr.recognizer import Recognizer
from asr.text import CharVocab
from asr.training.config import TrainConfig
from asr.training.setup import build_augmentations, make_optimizer

TINY = ModelConfig(n_mels=80, vocab_size=29, conv_channels=4, hidden=8, layers=2)


def test_weight_decay_falls_on_matrices_and_kernels_only():
    model = AcousticModel(TINY)
    groups = make_optimizer(model, TrainConfig(train="t", dev="d", out="o", weight_decay=0.05)).param_groups
    decayed, kept = ({id(p) for p in g["params"]} for g in groups)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in kept} == {n for n, p in model.named_parameters() if p.ndim < 2}
    assert all("weight" in names[i] and "norm" not in names[i] for i in decayed)
    norms = {f"{n}.{k}" for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm) for k in ("weight", "bias")}
    assert norms and norms <= {names[i] for i in kept}  # LayerNorm gains and biases: no decay
    assert {n for n in names.values() if "bias" in n} <= {names[i] for i in kept}
    assert decayed | kept == set(names) and not decayed & kept


def test_the_channel_augmentations_follow_their_probabilities():
    cfg = TrainConfig(train="t", dev="d", out="o", noise_prob=0.0, speed_perturb=False, spec_augment=False)
    wave, _ = build_augmentations(cfg)
    assert [type(a) for a in wave] == [augment.Clip, augment.Telephone, augment.Codec]
    assert [a.p for a in wave] == [cfg.clip_prob, cfg.telephone_prob, cfg.codec_prob]
    off = dataclasses.replace(cfg, clip_prob=0.0, telephone_prob=0.0, codec_prob=0.0)
    assert build_augmentations(off) == ([], [])


def test_a_checkpoint_from_before_the_relative_floor_keeps_v1_features(tmp_path):
    old = read_checkpoint(DEFAULT_MODEL)  # the shipped model keeps v1's features: its floor is absolute
    assert old["feature_config"]["relative_floor"] == 0.0 and load_model().frontend.cfg.relative_floor == 0.0
    del old["feature_config"]["relative_floor"]  # as v1's an4.pt was written, before the field existed
    torch.save(old, tmp_path / "v1.pt")
    assert load_model(tmp_path / "v1.pt").frontend.cfg.relative_floor == 0.0


def test_a_new_checkpoint_keeps_its_relative_floor():
    cfg = FeatureConfig(relative_floor=1e-4)
    rec = Recognizer(AcousticModel(TINY), Frontend(cfg, torch.zeros(80), torch.ones(80)), CharVocab(), {})
    assert recognizer_from_state(model_state(rec)).frontend.cfg == cfg
