"""asr.augment.VocalTractWarp (VTLP): a tone's band moves to the warped frequency on the real front end's mel
bands, the top of the band stays put, and it is seeded, optional and wired into training by its flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.augment import SpecAugment, VocalTractWarp
from asr.features import FeatureConfig, log_mel, mel_filterbank
from asr.train import parse_args
from asr.training import TrainConfig, Trainer, build_augmentations
from tests.test_train import tiny_flags

CFG = FeatureConfig()


def tone_features(hz: float) -> torch.Tensor:
    """(T, n_mels) log-mel of one second of a pure tone at `hz`, through the shipped front end's filterbank."""
    t = np.arange(CFG.sample_rate) / CFG.sample_rate
    return log_mel(0.1 * np.sin(2 * np.pi * hz * t).astype(np.float32), CFG)


def peak_hz(feats: torch.Tensor) -> float:
    """The centre frequency of the loudest band, averaged over the frames."""
    band = int(feats.mean(dim=0).argmax())
    return float(VocalTractWarp(CFG.f_min, CFG.f_max).band_centres(CFG.n_mels)[band])


def always(factor: float) -> VocalTractWarp:
    return VocalTractWarp(CFG.f_min, CFG.f_max, factors=(factor, factor), p=1.0)


def test_band_centres_are_the_peaks_of_the_front_ends_filters():
    fb = mel_filterbank(CFG).numpy()  # (n_mels, n_fft // 2 + 1)
    peaks = fb.argmax(axis=1) * CFG.sample_rate / CFG.n_fft  # Hz
    centres = VocalTractWarp(CFG.f_min, CFG.f_max).band_centres(CFG.n_mels)
    assert np.abs(peaks - centres).max() <= CFG.sample_rate / CFG.n_fft  # within one FFT bin


@pytest.mark.parametrize("hz, factor", [(1000.0, 1.1), (1000.0, 0.9), (2500.0, 1.15), (2500.0, 0.85)])
def test_a_tone_below_the_boundary_moves_to_factor_times_its_frequency(hz, factor):
    before = peak_hz(tone_features(hz))
    after = peak_hz(always(factor)(tone_features(hz)))
    expected = peak_hz(tone_features(hz * factor))  # the band the front end gives the moved tone
    assert after == pytest.approx(expected, rel=0.04) and after != pytest.approx(before, rel=0.04)


@pytest.mark.parametrize("factor", [0.85, 0.9, 1.1, 1.15])
def test_the_warp_is_monotonic_and_keeps_both_ends_of_the_band(factor):
    source = always(factor).source_bands(factor, CFG.n_mels)
    assert np.all(np.diff(source) > 0)
    shift = np.abs(source - np.arange(CFG.n_mels))  # bands
    assert shift[-1] < 0.5 < shift[CFG.n_mels // 2]  # bent back towards f_max, which stays where it is
    assert shift[0] < 0.5


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_a_band_that_starts_above_0_hz_is_warped_from_its_bottom(factor):
    f_min, f_max, n_mels = 300.0, 3800.0, 23  # a telephone band's filterbank
    warp = VocalTractWarp(f_min, f_max)
    centres, source = warp.band_centres(n_mels), warp.source_bands(factor, n_mels)
    source_hz = np.interp(source, np.arange(n_mels), centres)
    expected = f_min + (centres - f_min) / factor
    low = centres - f_min <= 0.6 * (f_max - f_min) * min(factor, 1.0)  # below the corner: a scaled copy
    read = low & (expected >= centres[0])  # below the lowest band there is nothing to read: its value is kept
    np.testing.assert_allclose(source_hz[read], expected[read], rtol=1e-9)
    assert abs(source[0]) < 0.5 and abs(source[-1] - (n_mels - 1)) < 0.5  # both ends of the band stay put
    assert np.all(np.diff(source) > 0)


def test_bf16_features_are_warped_as_fp32_ones_are():
    feats = torch.randn(20, CFG.n_mels, generator=torch.Generator().manual_seed(2))
    warped = always(1.07)(feats.bfloat16())
    assert warped.dtype == torch.bfloat16
    torch.testing.assert_close(warped.float(), always(1.07)(feats), atol=0.05, rtol=0.02)


def test_factor_one_and_probability_zero_leave_the_features_as_they_are():
    feats = torch.randn(50, CFG.n_mels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(always(1.0)(feats), feats, rtol=0, atol=0)
    never = VocalTractWarp(CFG.f_min, CFG.f_max, p=0.0)
    assert all(never(feats, np.random.default_rng(s)) is feats for s in range(20))


def test_it_is_seeded_and_applied_at_its_probability():
    feats = torch.randn(50, CFG.n_mels, generator=torch.Generator().manual_seed(1))
    warp = VocalTractWarp(CFG.f_min, CFG.f_max, factors=(0.9, 1.1), p=0.3)
    for seed in range(5):
        torch.testing.assert_close(warp(feats, np.random.default_rng(seed)), warp(feats, np.random.default_rng(seed)))
    changed = [not torch.equal(warp(feats, np.random.default_rng(s)), feats) for s in range(600)]
    assert np.mean(changed) == pytest.approx(0.3, abs=0.06)


def test_training_warps_before_masking_when_asked(tmp_path):
    paths = ["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--precision", "fp32"]
    feats = build_augmentations(parse_args([*paths, "--vtlp-prob", "0.4", "--vtlp-factors", "0.8", "1.2"]))[1]
    assert [type(a) for a in feats] == [VocalTractWarp, SpecAugment]
    assert (feats[0].p, feats[0].factors) == (0.4, (0.8, 1.2))
    assert VocalTractWarp not in [type(a) for a in build_augmentations(parse_args(paths))[1]]  # off by default


def test_a_run_says_it_warps():
    from asr.training.checks import augmentation_summary

    cfg = TrainConfig(train="t", dev="d", out="o", vtlp_prob=0.5, vtlp_factors=(0.85, 1.15))
    assert augmentation_summary(cfg, []).endswith(", formants (VTLP) p=0.5 at 0.85-1.15")
    assert "VTLP" not in augmentation_summary(TrainConfig(train="t", dev="d", out="o"), [])


@pytest.mark.parametrize("factors", [["1.2", "0.9"], ["0.9", "3"], ["0", "1"], ["nan", "1"]])
def test_absurd_vtlp_factors_are_one_line(tmp_path, capsys, factors):
    with pytest.raises(SystemExit) as e:
        parse_args(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--vtlp-factors", *factors])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--vtlp-factors" in err[-1] and err[-1].startswith("python -m asr.train: error: "), err


def test_a_training_item_is_warped_and_a_tiny_run_with_it_trains(clips_manifest, tmp_path):
    flags = [*tiny_flags(clips_manifest, tmp_path / "run"), "--epochs", "1", "--no-spec-augment", "--no-speed-perturb"]
    plain, warped = (Trainer(parse_args([*flags, *more])) for more in ([], ["--vtlp-prob", "1.0", "--overwrite"]))
    a, b = plain.dataset[0]["features"], warped.dataset[0]["features"]
    assert a.shape == b.shape and not torch.allclose(a, b)  # the same utterance, another vocal tract
    result = warped.run()
    assert np.isfinite(result["best_dev_wer"]) and result["epoch"] == 1
