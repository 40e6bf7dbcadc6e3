"""Voice-activity segmentation and the block reader, on synthetic audio with known speech."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from asr.audio import SAMPLE_RATE, AudioError, load_audio, read_blocks
from asr.audio.energy import ENERGY_FRAME, frame_energies_db, stream_energies_db
from asr.longform.segment import (
    SegmentConfig,
    cut_segments,
    file_segments,
    overlapping_windows,
    speech_level,
    speech_mask,
    speech_regions,
    unclear_cuts,
    voiced_frames,
)

SR = SAMPLE_RATE
NO_PAD = SegmentConfig(padding_s=0.0)


def synthetic(events: list[tuple[float, float, str]], total_s: float, seed: int = 0) -> np.ndarray:
    """(N,) waveform: a -60 dB noise floor, with tones or noise bursts at -10 dB at (start, end, kind)."""
    rng = np.random.default_rng(seed)
    wave = (rng.standard_normal(int(total_s * SR)) * 10 ** (-60 / 20)).astype(np.float32)
    for start, end, kind in events:
        n = int((end - start) * SR)
        t = np.arange(n) / SR
        burst = np.sin(2 * np.pi * 440 * t) * np.sqrt(2) if kind == "tone" else rng.standard_normal(n)
        wave[int(start * SR) : int(start * SR) + n] += (burst * 10 ** (-10 / 20)).astype(np.float32)
    return wave


EVENTS = [(0.5, 1.5, "tone"), (2.3, 2.8, "noise"), (3.6, 5.1, "tone"), (6.0, 6.4, "noise")]


def to_seconds(regions):
    return [(s * ENERGY_FRAME / SR, e * ENERGY_FRAME / SR) for s, e in regions]


def test_boundaries_of_tones_and_noise_bursts_within_0_1_s():
    wave = synthetic(EVENTS, 7.0)
    found = to_seconds(speech_regions(frame_energies_db(wave), NO_PAD))
    assert len(found) == len(EVENTS)
    for (start, end, _), (s, e) in zip(EVENTS, found):
        assert abs(s - start) <= 0.1 and abs(e - end) <= 0.1


def test_padding_is_added_but_stops_halfway_to_a_neighbour():
    wave = synthetic([(1.0, 2.0, "tone"), (2.4, 3.0, "tone")], 4.0)
    found = to_seconds(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.3)))
    assert len(found) == 2
    assert abs(found[0][0] - 0.7) <= 0.05 and abs(found[1][1] - 3.3) <= 0.05
    assert abs(found[0][1] - 2.2) <= 0.05 and found[0][1] == found[1][0]  # they meet in the middle of the pause


def test_short_pauses_are_bridged_and_clicks_dropped():
    wave = synthetic([(1.0, 2.0, "tone"), (2.2, 3.0, "tone"), (4.0, 4.03, "noise")], 5.0)
    found = to_seconds(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.0, min_silence_s=0.3)))
    assert len(found) == 1  # the 0.2 s pause is hangover, the 30 ms click is not speech
    assert abs(found[0][0] - 1.0) <= 0.1 and abs(found[0][1] - 3.0) <= 0.1
    apart = to_seconds(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.0, min_silence_s=0.1)))
    assert len(apart) == 2


def test_bursts_shorter_than_min_speech_s_are_not_speech():
    """A 60 ms burst alone is dropped at the default min_speech_s (0.1 s) and kept at 0.05 s; bursts of 60 ms
    spread over a pause do not bridge it at the default, and do at 0.05 s."""
    wave = synthetic([(1.0, 1.06, "noise"), (2.0, 3.0, "tone")], 4.0)
    assert len(speech_regions(frame_energies_db(wave), NO_PAD)) == 1
    assert len(speech_regions(frame_energies_db(wave), SegmentConfig(padding_s=0.0, min_speech_s=0.05))) == 2
    flicker = synthetic([(1.0, 2.0, "tone"), (2.2, 2.26, "noise"), (2.46, 2.52, "noise"), (2.72, 3.7, "tone")], 4.0)
    assert len(speech_regions(frame_energies_db(flicker), NO_PAD)) == 2  # a 0.72 s pause with two bursts in it
    assert len(speech_regions(frame_energies_db(flicker), SegmentConfig(padding_s=0.0, min_speech_s=0.05))) == 1

def test_long_speech_is_split_at_its_quietest_point():
    wave = synthetic([(0.5, 3.0, "tone"), (3.1, 6.0, "tone")], 6.5)  # a 0.1 s dip at 3.0 s
    cfg = SegmentConfig(padding_s=0.0, min_silence_s=0.5, max_segment_s=4.0)
    found = to_seconds(speech_regions(frame_energies_db(wave), cfg))
    assert len(found) == 2
    assert all(e - s <= 4.0 + 1e-9 for s, e in found)
    assert 3.0 <= found[0][1] <= 3.1 and found[0][1] == found[1][0]


def test_long_speech_is_split_in_its_longest_pause_not_at_a_deeper_dip():
    """A 0.08 s dip to the noise floor at 2.5 s (inside a spelled word, say) is quieter than a 0.25 s pause
    at 3.0 s that holds -48 dB noise; the split goes in the longer pause (it went in the dip)."""
    wave = synthetic([(0.5, 2.5, "tone"), (2.58, 3.0, "tone"), (3.25, 6.0, "tone")], 6.5)
    n = int(0.25 * SR)
    wave[3 * SR : 3 * SR + n] += (np.random.default_rng(1).standard_normal(n) * 10 ** (-48 / 20)).astype(np.float32)
    cfg = SegmentConfig(padding_s=0.0, min_silence_s=0.5, max_segment_s=4.0)
    found = to_seconds(speech_regions(frame_energies_db(wave), cfg))
    assert len(found) == 2 and found[0][1] == found[1][0]
    assert 3.0 <= found[0][1] <= 3.25, found


def test_segments_overlap_only_where_they_meet_at_no_clear_pause():
    """Regions in frames: two touch at 100 inside speech (a split), two touch at 300 in a 0.4 s pause, the last
    stands apart. Only the split is overlapped, by at most the neighbour's length; the kept parts are the regions."""
    speech = np.zeros(600, bool)
    speech[20:280] = speech[320:400] = speech[500:580] = True
    regions = [(10, 100), (100, 300), (300, 420), (480, 590)]
    unclear = unclear_cuts(regions, speech, clear_pause=20)
    assert unclear == {100}
    assert unclear_cuts(regions, speech, clear_pause=50) == {100, 300}  # a 0.4 s pause is not clear at 0.5 s
    windows = overlapping_windows(regions, 150, unclear)
    assert windows == [(10, 250, 10, 100), (10, 300, 100, 300), (300, 420, 300, 420), (480, 590, 480, 590)]
    wave = np.arange(600 * ENERGY_FRAME, dtype=np.float32)
    blocks = (wave[i : i + 7000] for i in range(0, len(wave), 7000))
    segs = list(cut_segments(blocks, [tuple(f * ENERGY_FRAME for f in w) for w in windows]))
    assert [(s.start_s, s.end_s) for s in segs] == [(w[0] / 100, w[1] / 100) for w in windows]
    assert [(s.keep_start_s, s.keep_end_s) for s in segs] == [(w[2] / 100, w[3] / 100) for w in windows]
    for s in segs:
        np.testing.assert_array_equal(s.samples, wave[s.start : s.start + len(s.samples)])


def test_the_speech_mask_bridges_short_pauses():
    energies = np.full(100, -80.0, np.float32)
    energies[10:40] = energies[50:90] = -10.0  # a 0.1 s pause
    mask = speech_mask(energies, SegmentConfig(min_silence_s=0.3), threshold_db=-40.0)
    assert mask[10:90].all() and not mask[:10].any() and not mask[90:].any()


def test_silence_and_constant_noise_give_no_speech():
    assert speech_regions(frame_energies_db(np.zeros(3 * SR, np.float32))) == []
    noise = (np.random.default_rng(0).standard_normal(3 * SR) * 0.01).astype(np.float32)
    assert speech_regions(frame_energies_db(noise)) == []


def test_stream_energies_equal_whole_file_energies():
    wave = synthetic(EVENTS, 7.0)
    blocks = [wave[i : i + 1234] for i in range(0, len(wave), 1234)]  # blocks that split frames
    energies, total = stream_energies_db(blocks)
    assert total == len(wave)
    np.testing.assert_allclose(energies, frame_energies_db(wave), atol=1e-4)
    highpassed, _ = stream_energies_db(blocks, highpass=True)
    np.testing.assert_allclose(highpassed, frame_energies_db(wave, highpass=True), atol=1e-4)


def test_highpassed_energies_leave_out_dc_and_mains_hum_but_not_speech_frequencies():
    t = np.arange(SR) / SR  # 1 s
    assert (frame_energies_db(np.full(SR, 0.03), highpass=True) == -100.0).all()  # an offset is no energy
    for hz, min_drop_db in ((50, 15.0), (60, 12.0)):
        hum = np.sin(2 * np.pi * hz * t)
        drop = frame_energies_db(hum) - frame_energies_db(hum, highpass=True)
        assert np.median(drop) >= min_drop_db, (hz, np.median(drop))
    for hz in (300, 1000, 4000):
        tone = np.sin(2 * np.pi * hz * t)
        assert np.abs(frame_energies_db(tone) - frame_energies_db(tone, highpass=True)).max() <= 0.5, hz


def test_a_short_last_frame_keeps_its_energy_less_its_mean_and_frames_keep_a_fit_exact_energy():
    """A last frame of a few samples was fitted whole by the quadratic: any sound there read as digital silence (a
    review). It loses its mean only; whole frames' energy is the residual's, as fitting and subtracting gives."""
    tail = np.array([0.5, 0.5, 0.5, 0.2])
    expected = 10 * np.log10(np.mean((tail - tail.mean()) ** 2) + 1e-10)
    assert frame_energies_db(tail, highpass=True)[0] == pytest.approx(expected, abs=1e-3)
    frame = np.random.default_rng(0).normal(size=160)
    t = np.linspace(-1.0, 1.0, 160)
    residual = frame - np.polyval(np.polyfit(t, frame, 2), t)  # the definition, written here
    assert frame_energies_db(frame, highpass=True)[0] == pytest.approx(10 * np.log10(np.mean(residual**2) + 1e-10),
                                                                       abs=1e-3)


def test_cut_segments_returns_the_samples_of_each_region():
    wave = np.arange(10_000, dtype=np.float32)
    regions = [(0, 150), (1000, 2500), (2500, 2600), (9000, 10_000)]
    blocks = (wave[i : i + 700] for i in range(0, len(wave), 700))
    segs = list(cut_segments(blocks, regions))
    assert [(s.start, s.start + len(s.samples)) for s in segs] == regions
    for s in segs:
        np.testing.assert_array_equal(s.samples, wave[s.start : s.start + len(s.samples)])


def test_read_blocks_never_returns_more_than_a_block_and_matches_load_audio(tmp_path):
    rng = np.random.default_rng(0)
    clip = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "tiled.wav"
    sf.write(path, np.tile(clip, (5, 1)), 44100)  # 15 s, 44.1 kHz stereo
    blocks = list(read_blocks(path, block_seconds=0.5))
    assert max(len(b) for b in blocks) <= SR // 2 and min(len(b) for b in blocks) > 0
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(path), atol=1e-5)


def test_file_segments_of_a_long_file_stays_in_bounded_memory(tmp_path):
    """Five minutes of tones, read in 1 s blocks: Python's allocations peak far below the file's size."""
    minute = synthetic([(t + 0.5, t + 2.0, "tone") for t in np.arange(0.0, 60.0, 3.0)], 60.0)
    path = tmp_path / "five_minutes.wav"
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(5):
            f.write(minute)
    cfg = SegmentConfig(block_s=1.0, padding_s=0.0)
    tracemalloc.start()
    count, longest = 0, 0
    for seg in file_segments(path, cfg):
        count += 1
        longest = max(longest, len(seg.samples))
        assert 0.4 <= seg.start_s % 3.0 <= 0.6 and abs(seg.end_s - seg.start_s - 1.5) <= 0.1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    whole = 5 * 60 * SR * 4  # bytes of the whole file as float32
    assert count == 100
    assert peak < whole / 10, f"peak {peak / 1e6:.1f} MB for a {whole / 1e6:.0f} MB file"


def test_a_short_file_is_one_segment_as_it_is(short_clip):
    (seg,) = list(file_segments(short_clip))
    assert seg.start == 0
    np.testing.assert_array_equal(seg.samples, load_audio(short_clip))


def test_a_long_silent_file_has_no_segments(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(25 * SR, np.float32), SR)
    assert list(file_segments(path)) == []


def test_errors_in_a_long_file_come_before_any_segment(tmp_path):
    wave = synthetic([(1.0, 2.0, "tone"), (22.0, 23.0, "tone")], 25.0)
    wave[22 * SR] = np.nan
    path = tmp_path / "nan_late.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    segments = file_segments(path)
    with pytest.raises(AudioError, match="nan_late.wav.*NaN"):
        next(segments)


def test_voiced_frames_mark_the_10_ms_frames_with_energy():
    """A tone from 1.00 to 1.40 s voices exactly the 10 ms frames 100 to 139."""
    wave = synthetic([(1.0, 1.4, "tone")], 2.0)
    voiced = voiced_frames(wave, -40.0)
    assert voiced.shape == (200,)
    assert np.array_equal(np.flatnonzero(voiced), np.arange(100, 140))


def test_the_speech_level_stays_in_the_speech_however_little_of_the_file_it_fills():
    """Speech frames at -40..-20 dB among silence at -75 dB: where speech fills a fifth or more of the frames the level
    is their 95th percentile, as it always was (to interpolation, at a fifth); below that it no longer falls into
    the silence (at 4% it did)."""
    rng = np.random.default_rng(0)
    speech = rng.uniform(-40.0, -20.0, 2000)
    for fraction in (0.01, 0.04, 0.05, 0.07, 0.1, 0.19, 0.2, 0.25, 0.5, 1.0):
        energies = np.concatenate([speech, np.full(round(len(speech) * (1 / fraction - 1)), -75.0)])
        level = speech_level(energies)
        assert -30.0 <= level <= -20.0, (fraction, level)
        if fraction > 0.2:
            assert level == float(np.percentile(energies, 95)), fraction
