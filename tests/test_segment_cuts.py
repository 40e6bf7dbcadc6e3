"""Where the segmenter cuts speech that has no silence added between utterances (bench/long_audio.py, part 3):
at the pauses between utterances, whatever clicks and noise lie in them, with room either side."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.audio.energy import ENERGY_FRAME, frame_energies_db
from asr.longform.segment import SegmentConfig, file_segments, speech_regions

SR = SAMPLE_RATE


def tones(spans: list[tuple[float, float]], clicks: list[float], total_s: float, seed: int = 0) -> np.ndarray:
    """(N,) a -60 dB noise floor, 440 Hz tones at -10 dB over `spans` (s) and a 20 ms noise click at -10 dB at
    each time in `clicks`."""
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal(int(total_s * SR)) * 10 ** (-60 / 20)
    for start, end in spans:
        t = np.arange(int(start * SR), int(end * SR))
        wave[t] += np.sqrt(2) * np.sin(2 * np.pi * 440 * t / SR) * 10 ** (-10 / 20)
    for at in clicks:
        wave[int(at * SR) : int(at * SR) + SR // 50] += rng.standard_normal(SR // 50) * 10 ** (-10 / 20)
    return wave.astype(np.float32)


def seconds(regions: list[tuple[int, int]]) -> list[tuple[float, float]]:
    return [(s * ENERGY_FRAME / SR, e * ENERGY_FRAME / SR) for s, e in regions]


def test_a_click_in_a_pause_does_not_join_the_speech_either_side():
    """A 0.4 s pause (longer than min_silence_s) with a 20 ms click in its middle still ends a segment: the
    click is dropped before short pauses are bridged, so it cannot make two 0.2 s pauses out of one."""
    wave = tones([(1.0, 2.0), (2.4, 3.4)], clicks=[2.19], total_s=4.5)
    found = seconds(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.0)))
    assert len(found) == 2, found
    assert abs(found[0][1] - 2.0) <= 0.05 and abs(found[1][0] - 2.4) <= 0.05


def test_clicks_in_a_short_pause_do_not_split_a_word():
    """A 0.2 s pause (shorter than min_silence_s) stays inside the segment, click or not."""
    wave = tones([(1.0, 2.0), (2.2, 3.2)], clicks=[2.09], total_s=4.5)
    (found,) = seconds(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.0)))
    assert abs(found[0] - 1.0) <= 0.05 and abs(found[1] - 3.2) <= 0.05


def test_segments_keep_0_4_s_of_the_silence_around_speech_by_default():
    """The model was trained on clips with 0.1-0.4 s of silence either side; less costs words (12 AN4 clips
    back to back, cut exactly at their edges: 8.5% WER with 0.2 s of padding, 7.2% with 0.4 s, as clip by clip)."""
    wave = tones([(1.0, 2.0), (4.0, 5.0)], clicks=[], total_s=6.0)
    found = seconds(speech_regions(frame_energies_db(wave)))
    assert len(found) == 2
    assert abs(found[0][0] - 0.6) <= 0.05 and abs(found[0][1] - 2.4) <= 0.05
    assert abs(found[1][0] - 3.6) <= 0.05 and abs(found[1][1] - 5.4) <= 0.05


def test_real_clips_back_to_back_are_cut_between_their_speech(clips):
    """The five AN4 clips joined without gaps (their own 0.1-0.4 s of recorded silence is all that separates
    them): every clip edge has a cut in the pause between the two clips' speech, not inside a word."""
    waves = [load_audio(u.audio) for u in clips]
    joined = np.concatenate(waves)
    edges = np.cumsum([len(w) for w in waves])[:-1] / SR  # (4,) s
    found = seconds(speech_regions(frame_energies_db(joined)))
    cuts = [(a[1] + b[0]) / 2 for a, b in zip(found, found[1:])]
    for edge in edges:
        assert any(abs(cut - edge) <= 0.3 for cut in cuts), (edge, cuts)


@pytest.mark.parametrize("dc, hum", [(0.01, 0.0), (0.03, 0.0), (0.0, 0.03)],
                         ids=["dc_0.01", "dc_0.03", "hum_50hz_0.03"])
def test_a_dc_offset_or_mains_hum_does_not_move_the_segments(clips, tmp_path, dc, hum):
    """The five AN4 clips, twice, with 0.5 s gaps (31 s: a long file) are cut as clean whatever DC offset or 50 Hz
    hum is added: the energy speech is read from leaves them out (an offset of 0.03 full scale, -30 dBFS, raised the
    noise floor over quiet speech: 60 AN4 test utterances joined so went from 6.3% to 68% WER, bench/long_audio_dc.py).
    The offset is not decoded either: a segment cut inside an utterance would start with a step, a click."""
    gap = np.zeros(SR // 2, np.float32)
    joined = np.concatenate([piece for u in clips * 2 for piece in (load_audio(u.audio), gap)])
    t = np.arange(len(joined)) / SR
    sf.write(tmp_path / "clean.wav", joined, SR, subtype="FLOAT")
    sf.write(tmp_path / "noisy.wav", joined + dc + hum * np.sin(2 * np.pi * 50 * t), SR, subtype="FLOAT")
    clean, noisy = list(file_segments(tmp_path / "clean.wav")), list(file_segments(tmp_path / "noisy.wav"))
    spans = [np.array([(seg.start_s, seg.end_s) for seg in segs]) for segs in (clean, noisy)]
    assert len(clean) >= 10  # a clip or two has a pause inside
    assert len(noisy) == len(clean), spans
    assert np.abs(spans[1] - spans[0]).max() <= 0.05, spans
    if dc:
        for a, b in zip(clean, noisy):
            np.testing.assert_allclose(b.samples, a.samples, atol=1e-4)
