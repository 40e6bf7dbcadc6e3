"""asr.augment's channel: a microphone's colour, a trim to the words, clipping, a telephone line, lossy codecs;
each seeded, keeping the rate, and all but the trim the length."""

from __future__ import annotations

import numpy as np
import pytest

from asr.audio import SAMPLE_RATE, load_audio
from asr.augment import Clip, Codec, Equalize, Telephone, Trim, alaw_round_trip, mulaw_round_trip, power


@pytest.fixture(scope="module")
def speech(clips):
    """(N,) the longest clip (4 s), its peak at half of full scale."""
    x = load_audio(max(clips, key=lambda u: u.duration).audio)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def band_energy(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1 / SAMPLE_RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def snr(clean: np.ndarray, degraded: np.ndarray) -> float:
    return 10 * np.log10(power(clean) / power(degraded.astype(np.float64) - clean))


AUGMENTERS = {
    "equalize": lambda seed: Equalize(p=1.0, seed=seed),
    "clip": lambda seed: Clip(p=1.0, seed=seed),
    "telephone": lambda seed: Telephone(p=1.0, seed=seed),
    "mulaw_phone": lambda seed: Telephone(laws=("mulaw",), p=1.0, seed=seed),
    "mp3": lambda seed: Codec(codecs=("mp3",), p=1.0, seed=seed),
    "opus": lambda seed: Codec(codecs=("opus",), p=1.0, seed=seed),
    "vorbis": lambda seed: Codec(codecs=("vorbis",), p=1.0, seed=seed),
}


@pytest.mark.parametrize("name", AUGMENTERS)
def test_each_keeps_length_and_rate_and_changes_the_audio(speech, name):
    out = AUGMENTERS[name](0)(speech)
    assert out.shape == speech.shape and out.dtype == np.float32
    assert not np.allclose(out, speech, atol=1e-3)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0 + 1e-6
    lag = np.argmax(np.fft.irfft(np.fft.rfft(out, 2 * len(out)) * np.conj(np.fft.rfft(speech, 2 * len(out)))))
    assert lag == 0  # no delay: the transcript's word times stay where they were


@pytest.mark.parametrize("name", AUGMENTERS)
def test_each_is_seeded_and_repeatable(speech, name):
    a, b = AUGMENTERS[name](5), AUGMENTERS[name](5)
    first = [a(speech) for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, [b(speech) for _ in range(3)]))
    given = [AUGMENTERS[name](1)(speech, np.random.default_rng(7)) for _ in range(2)]
    assert np.array_equal(*given)  # a given generator decides, not the own one


@pytest.mark.parametrize("make", [Equalize, Trim, Clip, Telephone, Codec])
def test_p_zero_is_the_identity_and_p_is_the_fraction(speech, make):
    assert make(p=0.0)(speech) is speech
    aug = make(p=0.3, seed=0)
    short = speech[:8000]
    changed = sum(aug(short) is not short for _ in range(200))
    assert 40 <= changed <= 80


def test_the_telephone_band_is_kept_and_the_rest_removed(speech):
    out = Telephone(laws=("linear",), p=1.0, seed=0)(speech)
    assert band_energy(out, 4100, 8000) < 1e-4 * band_energy(speech, 4100, 8000)  # 8 kHz: nothing above 4 kHz
    assert band_energy(out, 0, 150) < 1e-2 * band_energy(speech, 0, 150)
    assert band_energy(out, 600, 2800) == pytest.approx(band_energy(speech, 600, 2800), rel=0.05)


@pytest.mark.parametrize("law", [mulaw_round_trip, alaw_round_trip])
def test_g711_companding_keeps_about_38_db_at_any_level(speech, law):
    for gain in (1.0, 0.3, 0.1):  # peaks at -6, -16 and -26 dBFS
        x = speech * np.float32(gain)
        assert 30 < snr(x, law(x)) < 45  # companding: the error follows the level (8-bit linear would not)
    assert np.array_equal(law(law(speech)), law(speech))  # decoded values are code words: idempotent


def test_linear_8_bits_would_not_keep_quiet_speech():
    """What companding is for: the same quiet signal through 256 uniform levels loses far more."""
    x = (0.01 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 200)).astype(np.float32)
    uniform = np.round((x + 1) / (2 / 255)) * (2 / 255) - 1
    assert snr(x, mulaw_round_trip(x)) > snr(x, uniform) + 15


def test_clipping_reaches_full_scale_and_flattens_the_peaks(speech):
    out = Clip(gain_db=(6.0, 6.0), p=1.0)(speech)
    assert np.abs(out).max() == pytest.approx(1.0)
    assert np.mean(np.abs(out) >= 1.0) > 1e-3


def test_codec_compression_lowers_the_quality(speech):
    low = Codec(codecs=("mp3",), level=(0.0, 0.0), p=1.0)(speech)
    high = Codec(codecs=("mp3",), level=(0.99, 0.99), p=1.0)(speech)
    assert snr(speech, low) > snr(speech, high) + 3


def test_unknown_codecs_are_refused():
    with pytest.raises(ValueError, match=r"codecs must be among \['mp3', 'opus', 'vorbis'\], got \['aac'\]"):
        Codec(codecs=("mp3", "aac"))


def test_a_microphones_colour_is_a_smooth_gain_within_its_limit_at_the_same_power():
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 4).astype(np.float32) * 0.05
    for seed in range(5):
        out = Equalize(max_db=10.0, p=1.0, seed=seed)(noise)
        assert power(out) == pytest.approx(power(noise), rel=1e-3)  # the colour, not the level
        gains = [10 * np.log10(band_energy(out, f, f * 1.25) / band_energy(noise, f, f * 1.25))
                 for f in (60, 120, 250, 500, 1000, 2000, 4000, 6000)]
        spread = max(gains) - min(gains)
        assert 3.0 < spread <= 2 * 10.0 + 1.0  # coloured, and no band moved past the limit either way
    flat = Equalize(max_db=0.0, p=1.0, seed=0)(noise)
    assert np.allclose(flat, noise, atol=1e-5)


def tone_in_silence(lead_s: float, tone_s: float, tail_s: float) -> np.ndarray:
    t = np.arange(int(tone_s * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    silence = [np.zeros(int(s * SAMPLE_RATE)) for s in (lead_s, tail_s)]
    return np.concatenate([silence[0], tone, silence[1]]).astype(np.float32)


def test_trim_cuts_the_silence_around_the_speech_as_an_editor_would():
    wave = tone_in_silence(0.5, 1.0, 0.7)
    start, end = int(np.flatnonzero(wave)[0]), int(np.flatnonzero(wave)[-1]) + 1
    for seed in range(10):
        out = Trim(lead_ms=(0.0, 30.0), p=1.0, seed=seed)(wave)
        before, after = int(np.flatnonzero(out)[0]), len(out) - int(np.flatnonzero(out)[-1]) - 1
        assert out.dtype == np.float32 and np.array_equal(out, wave[start - before : end + after])  # a cut, no more
        assert before <= 0.04 * SAMPLE_RATE and after <= 0.04 * SAMPLE_RATE  # 30 ms, to the 10 ms frame


def test_trim_cuts_a_weak_onset_as_fsdds_clips_begin():
    wave = tone_in_silence(0.5, 1.0, 0.5)
    wave[int(0.45 * SAMPLE_RATE) : int(0.5 * SAMPLE_RATE)] = 0.003  # 40 dB under the tone: a soft first sound
    out = Trim(db=(15.0, 35.0), lead_ms=(0.0, 0.0), p=1.0, seed=0)(wave)
    assert abs(len(out) - SAMPLE_RATE) <= 160 and np.abs(out[:80]).max() > 0.01  # it starts at the tone


def test_trim_leaves_a_recording_without_silence_and_digital_silence_alone():
    loud = (0.3 * np.sin(np.arange(16000) * 0.1)).astype(np.float32)
    assert len(Trim(p=1.0, seed=0)(loud)) >= len(loud) - 160
    silence = np.zeros(16000, np.float32)
    assert Trim(p=1.0, seed=0)(silence) is silence


def test_trim_is_seeded_and_keeps_a_word_in_the_last_short_frame():
    wave = np.concatenate([tone_in_silence(0.5, 0.3, 0.2), np.full(150, 0.3, np.float32)])  # a sound in a short
    assert len(wave) % 160 == 150  # last frame, after 0.2 s of silence
    out = Trim(lead_ms=(0.0, 0.0), p=1.0, seed=0)(wave)
    assert np.array_equal(out[-150:], wave[-150:])
    quiet = tone_in_silence(0.5, 0.3, 0.5)
    a, b = Trim(p=1.0, seed=5), Trim(p=1.0, seed=5)
    assert all(np.array_equal(a(quiet), b(quiet)) for _ in range(3))
    given = [Trim(p=1.0, seed=seed)(quiet, np.random.default_rng(7)) for seed in (1, 2)]
    assert np.array_equal(*given)  # a given generator decides, not the own one


@pytest.mark.parametrize("make", [Equalize, Trim])
def test_an_empty_waveform_stays_empty(make):
    empty = np.zeros(0, np.float32)
    assert make(p=1.0, seed=0)(empty).shape == (0,)


@pytest.mark.parametrize("make", [lambda: Equalize(max_db=-1.0), lambda: Equalize(points=1),
                                  lambda: Trim(db=(-5.0, 10.0)), lambda: Trim(lead_ms=(-1.0, 0.0))])
def test_settings_that_cannot_be_are_refused_at_construction(make):
    with pytest.raises(ValueError, match="needs"):
        make()
