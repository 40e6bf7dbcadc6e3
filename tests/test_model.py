"""asr.model: output lengths, padding invariance, log-probabilities, input checks."""

from __future__ import annotations

import math

import pytest
import torch

from asr.features import FeatureConfig
from asr.model import (
    SUBSAMPLING,
    AcousticModel,
    ModelConfig,
    output_frame_seconds,
    reverse_padded,
    subsampled_lengths,
    time_mask,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AcousticModel(ModelConfig(conv_channels=4, hidden=16, layers=2, dropout=0.3)).eval()


def test_subsampled_lengths_formula():
    lengths = torch.arange(0, 201)
    expected = [math.ceil(math.ceil(n / 2) / 2) for n in range(0, 201)]
    assert subsampled_lengths(lengths).tolist() == expected
    assert expected == [math.ceil(n / SUBSAMPLING) for n in range(0, 201)]  # SUBSAMPLING is the convolutions'


def test_an_output_frame_lasts_subsampling_hops():
    assert output_frame_seconds(FeatureConfig()) == pytest.approx(0.04)
    assert output_frame_seconds(FeatureConfig(hop_length=320)) == pytest.approx(0.08)


@torch.no_grad()
def test_output_lengths_for_every_input_length(model):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.arange(1, 201)
    batch = torch.randn(200, 200, 80, generator=gen)
    log_probs, out_lengths = model(batch, lengths)
    assert torch.equal(out_lengths, subsampled_lengths(lengths))
    assert log_probs.shape == (200, int(subsampled_lengths(torch.tensor(200))), 29)
    for n in range(1, 201):
        single, single_len = model(batch[n - 1 : n, :n], torch.tensor([n]))
        assert single.shape[1] == int(single_len) == math.ceil(math.ceil(n / 2) / 2)


@torch.no_grad()
def test_padding_never_changes_a_result(model):
    gen = torch.Generator().manual_seed(1)
    lengths = [300, 1, 7, 150, 4, 299]
    feats = [torch.randn(n, 80, generator=gen) for n in lengths]
    batch = torch.full((len(lengths), max(lengths), 80), 1e3)  # padding full of large garbage
    for b, f in enumerate(feats):
        batch[b, : len(f)] = f
    log_probs, out_lengths = model(batch, torch.tensor(lengths))
    for b, f in enumerate(feats):
        alone, alone_len = model(f[None], torch.tensor([len(f)]))
        assert int(out_lengths[b]) == int(alone_len) == alone.shape[1]
        diff = (log_probs[b, : alone.shape[1]] - alone[0]).abs().max().item()
        assert diff <= 1e-4, f"utterance {b} (length {lengths[b]}): max abs diff {diff}"


@torch.no_grad()
def test_log_probs_are_normalised(model):
    log_probs, _ = model(torch.randn(3, 57, 80), torch.tensor([57, 30, 1]))
    assert log_probs.dtype == torch.float32
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 15))


def test_dropout_only_in_training_mode(model):
    x, n = torch.randn(2, 40, 80), torch.tensor([40, 33])
    with torch.no_grad():
        torch.testing.assert_close(model(x, n)[0], model(x, n)[0], rtol=0, atol=0)
        model.train()
        try:
            assert not torch.equal(model(x, n)[0], model(x, n)[0])
        finally:
            model.eval()


def test_gradients_reach_every_parameter(model):
    model.train()
    try:
        log_probs, _ = model(torch.randn(2, 23, 80), torch.tensor([23, 9]))
        log_probs[:, :, 1:].sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


@pytest.mark.parametrize("shape", [(50, 80), (2, 50, 40), (2, 1, 50, 80)])
def test_bad_input_shape_is_rejected(model, shape):
    with pytest.raises(ValueError, match=r"\(B, T, 80\)") as info:
        model(torch.zeros(shape), torch.tensor([50, 50]))
    assert str(tuple(shape)) in str(info.value)


def test_config_sets_sizes():
    cfg = ModelConfig(n_mels=40, vocab_size=7, conv_channels=3, hidden=5, layers=3)
    model = AcousticModel(cfg)
    assert len(model.lstms) == 3
    log_probs, _ = model.eval()(torch.randn(1, 21, 40), torch.tensor([21]))
    assert log_probs.shape == (1, 6, 7)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) > 0


def test_reverse_padded_and_time_mask():
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])[:, :, None]  # (3, 4, 1)
    lengths = torch.tensor([4, 2, 1])
    assert reverse_padded(x, lengths)[:, :, 0].tolist() == [[4, 3, 2, 1], [6, 5, 0, 0], [7, 0, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, lengths), lengths), x)
    assert time_mask(lengths, 4).tolist() == [[True] * 4, [True, True, False, False], [True, False, False, False]]


@pytest.mark.parametrize("cfg", [ModelConfig(), ModelConfig(hidden=32, layers=1, conv_channels=8, vocab_size=5),
                                 ModelConfig(hidden=96, layers=3, conv_channels=4, n_mels=41)])
def test_the_parameter_estimate_that_bounds_a_model_is_close(cfg):
    assert cfg.parameter_estimate() == pytest.approx(AcousticModel(cfg).num_parameters(), rel=0.02)
