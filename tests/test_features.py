"""asr.features: frame counts, agreement with librosa, the stored filterbank, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import load_audio
from asr.data import SpeechDataset
from asr.features import (
    ASSETS,
    LEVEL_ATTACK,
    LEVEL_RELEASE,
    LOG_FLOOR,
    FeatureConfig,
    Frontend,
    RunningStats,
    _asset_name,
    log_mel,
    mel_filterbank,
    num_frames,
    running_level,
)
from asr.text import CharVocab


@pytest.mark.parametrize("n", [1, 2, 100, 159, 160, 161, 399, 400, 401, 1600, 16000, 16001])
def test_frame_count(n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    feats = log_mel(x)
    assert feats.shape == (1 + n // 160, 80)
    assert num_frames(n) == feats.shape[0]
    assert torch.isfinite(feats).all()


def test_matches_librosa_melspectrogram(short_clip):
    import librosa

    cfg = FeatureConfig(relative_floor=0.0)  # v1 features: log(mel + LOG_FLOOR)
    x = load_audio(short_clip)
    expected = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        fmin=cfg.f_min, fmax=cfg.f_max, center=True, pad_mode="constant", power=2.0,
    )  # (n_mels, T)
    ours = log_mel(x, cfg).numpy()
    assert ours.shape == expected.T.shape
    np.testing.assert_allclose(ours, np.log(expected.T + LOG_FLOOR), atol=2e-3)


def test_stored_filterbank_equals_librosa():
    import librosa

    cfg = FeatureConfig()
    assert (ASSETS / _asset_name(cfg)).exists()
    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=0.0, fmax=8000.0)
    stored = mel_filterbank(cfg).numpy()
    assert stored.shape == (80, 201) and stored.dtype == np.float32
    np.testing.assert_allclose(stored, expected, rtol=1e-6, atol=1e-9)


def test_filterbank_without_a_stored_copy_is_computed():
    cfg = FeatureConfig(n_mels=40, f_max=7600.0)
    assert not (ASSETS / _asset_name(cfg)).exists()
    fb = mel_filterbank(cfg)
    assert fb.shape == (40, 201)
    assert log_mel(np.zeros(1600, dtype=np.float32), cfg).shape == (11, 40)


def test_silence_is_the_log_floor():
    feats = log_mel(np.zeros(800, dtype=np.float32), FeatureConfig(relative_floor=0.0))
    torch.testing.assert_close(feats, torch.full((6, 80), float(np.log(LOG_FLOOR))))


def test_digital_silence_is_the_relative_floor():
    feats = log_mel(np.zeros(16000, dtype=np.float32))
    torch.testing.assert_close(feats, torch.full((101, 80), float(np.log(FeatureConfig().relative_floor))))


def test_rejects_multichannel_waveforms():
    with pytest.raises(ValueError, match=r"\(N,\)"):
        log_mel(np.zeros((2, 1600), dtype=np.float32))


def test_file_and_array_give_identical_features(tmp_path, clips_frontend):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 12345).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    torch.testing.assert_close(log_mel(load_audio(path)), log_mel(x), rtol=0, atol=0)
    # and through the dataset, which reads the file itself
    from asr.data import Utterance

    item = SpeechDataset([Utterance("x", str(path), 12345 / 16000, "x")], clips_frontend, CharVocab())[0]
    torch.testing.assert_close(item["features"], clips_frontend(x), rtol=0, atol=0)


def test_normalisation_gives_zero_mean_unit_std_on_its_own_data(clips, clips_frontend):
    feats = torch.cat([clips_frontend(load_audio(u.audio)) for u in clips])  # (sum T, 80)
    assert feats.mean(0).abs().max() < 1e-3
    assert (feats.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_running_stats_match_numpy():
    rng = np.random.default_rng(1)
    chunks = [torch.from_numpy(rng.normal(3.0, 2.0, (t, 4)).astype(np.float32)) for t in (5, 17, 1)]
    stats = RunningStats(4)
    for c in chunks:
        stats.add(c)
    mean, std = stats.mean_std()
    joined = torch.cat(chunks).double().numpy()
    np.testing.assert_allclose(mean.numpy(), joined.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), joined.std(0), rtol=1e-5)
    with pytest.raises(ValueError):
        RunningStats(4).mean_std()


def test_frontend_rejects_stats_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"\(80,\)"):
        Frontend(FeatureConfig(), torch.zeros(40), torch.ones(40))


@pytest.mark.parametrize("gain_db", [-30.0, -20.0, -10.0, 10.0])
def test_features_do_not_depend_on_the_recording_level(short_clip, gain_db):
    x = load_audio(short_clip)
    reference = log_mel(x)
    scaled = log_mel(x * np.float32(10 ** (gain_db / 20)))
    assert (scaled - reference).abs().max() < 1e-3


def test_v1_features_do_depend_on_the_level(short_clip):
    """What the relative floor fixes: under v1's absolute floor a quieter copy slides under it."""
    x, cfg = load_audio(short_clip), FeatureConfig(relative_floor=0.0)
    shift = log_mel(x * np.float32(10 ** (-30 / 20)), cfg) - log_mel(x, cfg)
    assert (shift.mean(0) + 30 / 10 * np.log(10)).abs().max() > 1.0  # not a plain shift by the gain's log either


def test_the_relative_floor_matches_librosa_over_the_running_level(short_clip):
    import librosa

    cfg = FeatureConfig()
    x = load_audio(short_clip)
    mel = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        fmin=cfg.f_min, fmax=cfg.f_max, center=True, pad_mode="constant", power=2.0,
    ).T  # (T, n_mels)
    level = running_level(torch.from_numpy(np.log(mel.mean(1) + 1e-20))).numpy()[:, None]
    np.testing.assert_allclose(log_mel(x, cfg).numpy(), np.log(mel / np.exp(level) + cfg.relative_floor), atol=2e-3)


def test_the_running_level_rises_fast_falls_slowly_and_is_causal():
    e = torch.tensor([0.0] * 5 + [10.0] * 20 + [0.0] * 20)
    level = running_level(e)
    assert level[:5].tolist() == [0.0] * 5
    assert level[5].item() == pytest.approx(10 * LEVEL_ATTACK)
    assert level[24] > 9.8  # 20 frames of attack: within 1 - (1 - 0.2) ** 20 of the louder level
    assert level[25].item() == pytest.approx(level[24].item() * (1 - LEVEL_RELEASE), rel=1e-5)
    assert level[-1] > 9.0  # 20 frames of a pause barely move it
    assert torch.equal(running_level(e[:30]), level[:30])  # frame t sees only frames <= t
    carried = running_level(e[30:], start=level[29].item())
    assert torch.allclose(torch.cat([level[:30], carried]), level)  # chunk by chunk, as streaming will



def test_v1_features_bring_audio_outside_v1s_levels_to_them_and_leave_the_rest():
    """v1's front end (relative_floor 0) hears quiet and loud audio at the level v1 was trained at: a clip 40 dB
    quieter or 10 dB louder gives the features of the clip brought to V1_LEVEL_DB; a clip within V1_LEVELS_DB is
    left as it is (the same object, so v1 computes what it always did), and so is one under V1_QUIETEST_DB and
    digital silence. The level-independent front end needs no guard and has none."""
    from asr.features import (V1_LEVEL_DB, V1_LEVELS_DB, V1_QUIETEST_DB, Frontend, FeatureConfig, level_guard,
                              speech_level_db)

    clip = load_audio("tests/data/an4/an406-fcaw-b.flac")  # speech at -23.5 dBFS: inside
    assert V1_LEVELS_DB[0] < speech_level_db(clip) < V1_LEVELS_DB[1] and level_guard(clip) is clip
    v1 = Frontend(FeatureConfig(relative_floor=0.0), torch.zeros(80), torch.ones(80))
    at_target = clip * np.float32(10 ** ((V1_LEVEL_DB - speech_level_db(clip)) / 20))
    for gain_db in (-40, 10):
        other = clip * np.float32(10 ** (gain_db / 20))
        assert speech_level_db(level_guard(other)) == pytest.approx(V1_LEVEL_DB, abs=0.01)
        assert torch.allclose(v1(other), v1(at_target), atol=1e-3)
        assert not torch.allclose(log_mel(other, v1.cfg), log_mel(at_target, v1.cfg), atol=1.0)
    faint = clip * np.float32(10 ** ((V1_QUIETEST_DB - 5 - speech_level_db(clip)) / 20))
    silence = np.zeros(16000, np.float32)
    assert level_guard(faint) is faint and level_guard(silence) is silence
    new = Frontend(FeatureConfig(), torch.zeros(80), torch.ones(80))
    assert torch.equal(new(clip * np.float32(0.01)), new.normalize(log_mel(clip * np.float32(0.01), new.cfg)))


def test_the_speech_level_is_the_words_not_a_long_quiet_background_around_them():
    """A 2.4 s word at -32.5 dBFS (inside v1's levels) in 18 s of noise at -70 dBFS: the level is the word's, so
    the guard leaves it as it is instead of bringing the noise up 46 dB (and the word past full scale)."""
    from asr.features import V1_LEVELS_DB, level_guard, speech_level_db

    word = load_audio("tests/data/an4/an440-mjgm-b.flac")
    noise = np.random.default_rng(0).normal(0, 10 ** (-70 / 20), 16000 * 9).astype(np.float32)
    padded = np.concatenate([noise, word, noise])
    assert speech_level_db(padded) == pytest.approx(speech_level_db(word), abs=1.5)
    assert V1_LEVELS_DB[0] < speech_level_db(padded) and level_guard(padded) is padded
    with pytest.raises(ValueError, match=r"must be \(N,\)"):
        speech_level_db(np.zeros((2, 100), np.float32))
