"""asr.augment: noise at the SNR asked for, reverb, speed, SpecAugment; seeded and repeatable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.augment import (
    AddNoise,
    Reverb,
    SpecAugment,
    SpeedPerturb,
    coloured_noise,
    first_arrival,
    mix_at_snr,
    power,
    read_audio_list,
    snr_db,
    speech_power,
)


@pytest.fixture(scope="module")
def speech(clips):
    """(N,) the longest clip (4 s)."""
    return load_audio(max(clips, key=lambda u: u.duration).audio)


def sine(freq: float, n: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)).astype(np.float32)


def peak_frequency(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
def test_real_noise_at_the_requested_snr(speech, clips, snr):
    noise_clip = min(clips, key=lambda u: u.duration).audio  # 0.8 s: shorter than the speech, so it loops
    out = AddNoise([noise_clip], snr_db=(snr, snr), p=1.0, seed=3)(speech)
    assert out.shape == speech.shape and out.dtype == np.float32
    added = out.astype(np.float64) - speech
    assert np.abs(added).max() > 0
    assert snr_db(speech, added) == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("seed", range(6))  # each seed draws one of white / pink / brown
def test_synthetic_noise_at_the_requested_snr(speech, seed):
    out = AddNoise(None, snr_db=(10.0, 10.0), p=1.0, seed=seed)(speech)
    assert snr_db(speech, out.astype(np.float64) - speech) == pytest.approx(10.0, abs=0.1)


def test_snr_is_drawn_from_the_range(speech):
    aug = AddNoise(None, snr_db=(5.0, 15.0), p=1.0, seed=0)
    snrs = [snr_db(speech, aug(speech).astype(np.float64) - speech) for _ in range(12)]
    assert all(4.9 < s < 15.1 for s in snrs)
    assert max(snrs) - min(snrs) > 2.0  # not a constant


def test_coloured_noise_spectra():
    rng = np.random.default_rng(0)
    for exponent in (0.0, 1.0, 2.0):
        x = coloured_noise(32000, exponent, rng)
        assert np.mean(x.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-3)
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        low, high = spectrum[10:500].mean(), spectrum[8000:16000].mean()
        if exponent == 0.0:
            assert 0.7 < low / high < 1.4  # white: flat
        else:
            assert low / high > 10 * exponent  # pink and brown: falling with frequency


def test_mix_at_snr_leaves_silence_alone():
    silence = np.zeros(100, dtype=np.float32)
    assert mix_at_snr(silence, np.ones(100, dtype=np.float32), 10.0) is silence


def test_p_zero_is_the_identity(speech):
    for aug in (AddNoise(None, p=0.0), AddNoise(None, p=0.0, seed=5)):
        assert np.array_equal(aug(speech), speech)


def test_p_is_the_fraction_augmented(speech):
    aug = AddNoise(None, snr_db=(10.0, 10.0), p=0.3, seed=0)
    x = speech[:1600]
    changed = sum(not np.array_equal(aug(x), x) for _ in range(400))
    assert 80 <= changed <= 160  # 120 expected


def test_same_seed_repeats_different_seed_differs(speech):
    a = AddNoise(None, snr_db=(0.0, 20.0), p=1.0, seed=7)
    b = AddNoise(None, snr_db=(0.0, 20.0), p=1.0, seed=7)
    c = AddNoise(None, snr_db=(0.0, 20.0), p=1.0, seed=8)
    first, second = a(speech), a(speech)
    assert np.array_equal(first, b(speech)) and np.array_equal(second, b(speech))  # same sequence of draws
    assert not np.array_equal(first, second)  # successive calls draw anew
    assert not np.array_equal(first, c(speech))


def test_a_given_rng_overrides_the_own_generator(speech):
    aug = AddNoise(None, snr_db=(0.0, 20.0), p=1.0, seed=0)
    x = aug(speech, np.random.default_rng([1, 2, 3]))
    aug(speech)  # advancing the own generator changes nothing for an explicit rng
    assert np.array_equal(x, AddNoise(None, snr_db=(0.0, 20.0), p=1.0, seed=99)(speech, np.random.default_rng([1, 2, 3])))
    assert not np.array_equal(x, aug(speech, np.random.default_rng([1, 2, 4])))


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_perturb_changes_length_and_pitch_by_the_factor(factor):
    x = sine(1000.0, SAMPLE_RATE)
    y = SpeedPerturb((factor,), seed=0)(x)
    assert abs(len(y) - len(x) / factor) <= 2
    assert peak_frequency(y) == pytest.approx(1000.0 * factor, abs=3.0)


def test_speed_perturb_factor_one_is_the_identity_and_draws_are_seeded():
    x = sine(440.0, 8000)
    assert SpeedPerturb((1.0,))(x) is x
    aug1, aug2, aug3 = SpeedPerturb(seed=4), SpeedPerturb(seed=4), SpeedPerturb(seed=5)
    first = [len(aug1(x)) for _ in range(20)]
    assert first == [len(aug2(x)) for _ in range(20)]
    assert first != [len(aug3(x)) for _ in range(20)]
    assert len(set(first)) == 3  # all of 0.9, 1.0, 1.1 drawn


def masked_runs(zero: torch.Tensor) -> list[tuple[int, int]]:
    """(start, width) of each run of True in a (N,) bool tensor."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], zero.numpy().astype(np.int8), [0]])))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


@pytest.mark.parametrize("axis", ["freq", "time"])
def test_spec_augment_draws_one_mask_of_uniform_width_per_mask(axis):
    """One mask of one kind: at most one run of zeroed bands (or frames), as wide as drawn uniformly from
    0..max, along the right axis; over 400 draws the widths cover that range with the right mean."""
    frames, bins, max_width = 300, 80, (6 if axis == "freq" else 30)  # different limits: a swap shows
    aug = SpecAugment(freq_masks=1 if axis == "freq" else 0, freq_width=6,
                      time_masks=1 if axis == "time" else 0, time_width=30 / frames)
    feats = torch.ones(frames, bins)
    widths = []
    for seed in range(400):
        zero = aug(feats, np.random.default_rng(seed)) == 0
        along = zero[0] if axis == "freq" else zero[:, 0]  # (bins,) or (frames,)
        whole = along[None, :] if axis == "freq" else along[:, None]  # masks cover whole bands / frames
        assert torch.equal(zero, whole.expand_as(zero))
        runs = masked_runs(along)
        assert len(runs) <= 1
        widths.append(runs[0][1] if runs else 0)
    assert set(widths) == set(range(max_width + 1))
    assert np.mean(widths) == pytest.approx(max_width / 2, rel=0.15)


def test_spec_augment_masks_without_touching_its_input():
    feats = torch.randn(200, 80, generator=torch.Generator().manual_seed(0)) + 5.0  # no zeros anywhere
    before = feats.clone()
    out = SpecAugment(freq_masks=2, freq_width=15, time_masks=2, time_width=0.1, seed=1)(feats)
    assert out.shape == feats.shape
    torch.testing.assert_close(feats, before, rtol=0, atol=0)
    zero = out == 0
    assert zero.any()
    full_bands = zero.all(dim=0).sum().item()  # frequency masks zero whole bands
    full_frames = zero.all(dim=1).sum().item()  # time masks zero whole frames
    assert 0 < full_bands <= 2 * 15 and 0 < full_frames <= 2 * 20  # seed 1 draws both kinds of mask
    # Every zero lies in a masked band or frame; everything else is the input unchanged.
    explained = zero.all(dim=0)[None, :] | zero.all(dim=1)[:, None]
    assert torch.equal(zero, explained)
    torch.testing.assert_close(out[~zero], feats[~zero], rtol=0, atol=0)


def test_spec_augment_is_seeded():
    feats = torch.randn(100, 80) + 5.0
    a = [SpecAugment(seed=3)(feats) for _ in range(2)]
    assert torch.equal(a[0], a[1])
    assert not torch.equal(SpecAugment(seed=3)(feats), SpecAugment(seed=4)(feats))
    assert torch.equal(SpecAugment(freq_masks=0, time_masks=0)(feats), feats)


@pytest.fixture
def rir_files(tmp_path):
    """A room-like impulse response (decaying noise after a delay) and a pure delayed impulse."""
    rng = np.random.default_rng(0)
    n = 4000
    room = np.zeros(n, dtype=np.float32)
    room[200] = 1.0
    room[201:] = (0.05 * rng.standard_normal(n - 201) * np.exp(-np.arange(n - 201) / 600.0)).astype(np.float32)
    impulse = np.zeros(500, dtype=np.float32)
    impulse[123] = 0.5
    sf.write(tmp_path / "room.wav", room, SAMPLE_RATE, subtype="FLOAT")
    sf.write(tmp_path / "impulse.wav", impulse, SAMPLE_RATE, subtype="FLOAT")
    return tmp_path / "room.wav", tmp_path / "impulse.wav"


def test_reverb_keeps_length_and_peak(speech, rir_files):
    out = Reverb([rir_files[0]], p=1.0, seed=0)(speech)
    assert out.shape == speech.shape and out.dtype == np.float32
    assert np.abs(out).max() == pytest.approx(np.abs(speech).max(), rel=1e-5)
    assert not np.allclose(out, speech, atol=1e-3)
    # the direct path stays at time 0 (the RIR's 200-sample delay is removed): no shift of the speech
    size = 2 * len(speech)
    xcorr = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(speech, size)), size)
    assert int(np.argmax(xcorr)) == 0


def test_reverb_with_a_delayed_impulse_is_the_identity(speech, rir_files):
    out = Reverb([rir_files[1]], p=1.0)(speech)
    np.testing.assert_allclose(out, speech, atol=1e-5)


def test_reverb_p_zero_and_no_rirs(speech, rir_files):
    assert Reverb([rir_files[0]], p=0.0)(speech) is speech
    assert Reverb([], p=1.0)(speech) is speech


def test_read_audio_list_from_folder_and_manifest(tmp_path, clips_manifest, clips):
    (tmp_path / "sub").mkdir()
    for name in ("b.wav", "sub/a.flac", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert read_audio_list(tmp_path) == [tmp_path / "b.wav", tmp_path / "sub" / "a.flac"]
    assert [str(p) for p in read_audio_list(clips_manifest)] == [u.audio for u in clips]
    manifest = tmp_path / "noise.jsonl"
    manifest.write_text(json.dumps({"audio": "sub/a.flac"}) + "\n")
    assert read_audio_list(manifest) == [(tmp_path / "sub" / "a.flac").resolve()]


def test_reverb_keeps_the_direct_sound_when_a_reflection_is_louder(speech, tmp_path):
    """The direct sound at sample 100 is weaker than a reflection at 400: cutting at the peak (as before) drops
    the direct sound and shifts the speech 300 samples early; cutting at the first arrival keeps both."""
    rir = np.zeros(2000, dtype=np.float32)
    rir[100], rir[400] = 0.5, 1.0
    sf.write(tmp_path / "late_peak.wav", rir, SAMPLE_RATE, subtype="FLOAT")
    out = Reverb([tmp_path / "late_peak.wav"], p=1.0, seed=0)(speech)
    expected = speech.astype(np.float64) * 0.5
    expected[300:] += speech[:-300]
    expected *= np.abs(speech).max() / np.abs(expected).max()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_the_first_arrival_is_the_first_sample_at_a_tenth_of_the_peak():
    rir = np.array([0.0, 0.01, 0.05, 0.2, 0.1, 1.0, 0.3], dtype=np.float32)
    assert first_arrival(rir) == 3
    assert first_arrival(np.array([1.0, 0.5])) == 0


def test_noise_is_mixed_at_the_snr_of_the_speech_frames_not_of_the_whole_clip(speech):
    padded = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), speech, np.zeros(3 * SAMPLE_RATE, np.float32)])
    out = AddNoise(None, snr_db=(10.0, 10.0), p=1.0, seed=1)(padded)
    noise = out.astype(np.float64) - padded
    assert 10 * np.log10(speech_power(speech) / power(noise)) == pytest.approx(10.0, abs=0.2)
    assert 10 * np.log10(power(padded) / power(noise)) < 10.0 - 3.0  # the whole-clip SNR, 6 s of silence in it


def test_speech_power_ignores_the_pauses(speech):
    padded = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), speech, np.zeros(SAMPLE_RATE, np.float32)])
    assert speech_power(padded) == pytest.approx(speech_power(speech), rel=0.05)
    assert power(padded) < 0.8 * power(speech)


def test_a_silent_stretch_of_a_noise_recording_is_not_added_as_noise(speech, tmp_path):
    """A recording that is digital silence but for its last 0.1 s: an excerpt drawn in the silence is drawn
    again, so the utterance gets real noise or (NOISE_TRIES silent draws) none, never 'noise' of zeros."""
    recording = np.zeros(20 * SAMPLE_RATE, dtype=np.float32)
    recording[-1600:] = np.random.default_rng(0).standard_normal(1600).astype(np.float32)
    sf.write(tmp_path / "mostly_silent.wav", recording, SAMPLE_RATE, subtype="FLOAT")
    aug = AddNoise([tmp_path / "mostly_silent.wav"], snr_db=(10.0, 10.0), p=1.0, seed=0)
    short = speech[:SAMPLE_RATE]
    for _ in range(20):
        out = aug(short)
        added = out.astype(np.float64) - short
        assert power(added) == 0.0 or 10 * np.log10(speech_power(short) / power(added)) == pytest.approx(10, abs=0.2)


def test_noise_recordings_are_decoded_once_not_per_utterance(speech, tmp_path, monkeypatch):
    import asr.augment.acoustic as acoustic

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"noise{i}.wav")
        sf.write(paths[-1], np.random.default_rng(i).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1,
                 SAMPLE_RATE, subtype="FLOAT")
    decoded = []
    monkeypatch.setattr(acoustic, "load_audio", lambda path: decoded.append(path) or load_audio(path))
    aug = AddNoise(paths, p=1.0, seed=0)
    assert sorted(decoded) == sorted(paths)  # all decoded as it is built: before DataLoader workers fork from it
    for _ in range(30):  # 30 utterances, each with noise from one of the three
        aug(speech[:SAMPLE_RATE])
    assert len(decoded) == len(paths)  # and never again


@pytest.mark.parametrize("axis", [0, 1])
def test_spec_augment_can_mask_the_last_bin_and_the_last_frame(axis):
    feats = torch.ones(40, 20)
    freq, time = (1, 0) if axis == 1 else (0, 1)
    aug = SpecAugment(freq_masks=freq, freq_width=3, time_masks=time, time_width=3 / 40, seed=0)
    reached = False
    for _ in range(400):
        masked = aug(feats)
        edge = masked[:, -1] if axis == 1 else masked[-1, :]
        reached |= bool((edge == 0).all())
    assert reached
