"""Cut recordings of any length into speech segments, streamed from disk in bounded memory.

    for seg in file_segments("meeting.flac"): ...      # Segment(start sample, (N,) samples, voiced_db)

A file no longer than `max_segment_s` is one segment, as it is. A longer one is read twice, block by
block (asr.audio.read_blocks): first for the energy of every 10 ms frame (4 bytes a frame, 1.4 MB an
hour), from which the thresholds and the segments are chosen; then again to cut those segments
out. Nothing longer than one block plus one segment is held at a time.

Energy-based voice activity: a frame is speech when its energy is within `dynamic_range_db` of the
file's speech level (a high percentile of all frames) and `min_snr_db` above its noise floor (a low
percentile). Bursts shorter than `min_speech_s` (clicks, noise flicker) are dropped first, so that
they cannot break a pause into short ones; then pauses shorter than `min_silence_s` do not end a
segment (hangover). `padding_s` of audio is kept either side (the model was trained on clips with
0.1-0.4 s of silence around the speech), and speech longer than `max_segment_s` is split at its longest pause
(one too short to end a segment; else its quietest point). Where two segments meet inside speech or in a pause
shorter than `clear_pause_s`, each can be decoded `overlap_s` into the other and keep only the tokens emitted in its
own part (asr.longform.seams), so that a word cut in half is heard whole. Each segment carries the speech level and
a stricter one (`word_range_db` below it) that marks clearly voiced frames for word timestamps. Energies are measured
without DC and mains hum (asr.audio.energy's highpass), and the segments cut from a long file without their mean, so
that an offset or hum neither hides quiet speech under the noise floor nor clicks at a segment's edges.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from asr.audio import SAMPLE_RATE, read_blocks
from asr.audio.energy import ENERGY_FRAME, ENERGY_FRAME_SECONDS, frame_energies_db, stream_energies_db

# The voiced frames that word edges snap to (voiced_frames), as speech_mask reads speech: shorter voiced bursts
# (clicks) are dropped, then shorter dips below the level inside voiced speech are bridged.
VOICED_MIN_RUN_S = 0.03  # s; a click fills one or two 10 ms frames, a spoken letter's vowel many more
VOICED_MAX_DIP_S = 0.02  # s; one or two 10 ms frames just under the level inside a vowel


@dataclass(frozen=True)
class SegmentConfig:
    max_segment_s: float = 20.0  # longer speech is split at its quietest point; files this short are not cut
    dynamic_range_db: float = 35.0  # frames this far below the speech level are silence
    word_range_db: float = 25.0  # word edges snap to frames within this of the speech level (asr.longform.timestamps)
    min_snr_db: float = 6.0  # frames less than this above the noise floor are silence
    speech_percentile: float = 95.0  # the speech level: this percentile of the frame energies (dB), but at least
    loud_percentile: float = 75.0  # this percentile of the frames within loud_range_db of the loudest (speech_level)
    loud_range_db: float = 30.0
    floor_percentile: float = 10.0  # the noise floor: this percentile of the frame energies (dB)
    min_silence_s: float = 0.3  # a pause must last this long to end a segment (hangover)
    min_speech_s: float = 0.1  # shorter bursts of energy (clicks) are not speech (nor can they break a pause)
    padding_s: float = 0.4  # audio kept before and after speech (less where two segments meet)
    # Where segments meet at no clear pause, each is decoded this far into the other (0: never). Off by default:
    # with the shipped AN4 model the neighbour's speech at a window's edge costs more than the context gains
    # (README, long audio: 12 clips back to back, every meeting overlapped by 1 s: 11.2% WER vs 8.6%).
    overlap_s: float = 0.0
    clear_pause_s: float = 0.0  # segments that meet in a pause at least this long are not overlapped (0: any pause)
    split_search_s: float = 0.1  # energies are averaged over this long when looking for the quietest point
    block_s: float = 30.0  # audio read from disk at a time


@dataclass(frozen=True)
class Segment:
    start: int  # sample at 16 kHz in the file where the segment begins
    samples: np.ndarray  # (N,) float32 at 16 kHz
    voiced_db: float | None  # frames above this energy are clearly speech (word edges snap to them); None: unknown
    keep_start: int | None = None  # first sample of the file this segment's words are kept from (None: start)
    keep_end: int | None = None  # sample where the kept part ends, exclusive (None: the segment's end);
    # outside [keep_start, keep_end) lies audio decoded only as context, kept by the neighbour
    level_db: float | None = None  # the file's speech level (speech_level of its 10 ms frame energies), dBFS

    @property
    def keep_start_s(self) -> float:
        return (self.start if self.keep_start is None else self.keep_start) / SAMPLE_RATE

    @property
    def keep_end_s(self) -> float:
        return self.end_s if self.keep_end is None else self.keep_end / SAMPLE_RATE

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return (self.start + len(self.samples)) / SAMPLE_RATE


def speech_level(energies_db: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> float:
    """The speech level of (F,) frame energies, dB: their speech_percentile, or where speech fills so little of them
    that it lies in the background (a word in minutes of near-silence), loud_percentile of the frames within
    loud_range_db of the loudest. The two agree where those frames are (100 - speech_percentile) / (100 -
    loud_percentile) of all (20%), so the level does not jump; above that it is the plain percentile."""
    level = float(np.percentile(energies_db, cfg.speech_percentile))
    loud = energies_db[energies_db >= energies_db.max() - cfg.loud_range_db]
    return max(level, float(np.percentile(loud, cfg.loud_percentile)))


def speech_threshold(energies_db: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> float:
    """dB above which a frame is speech, from the file's speech level and noise floor."""
    if len(energies_db) == 0:
        return 0.0
    floor = float(np.percentile(energies_db, cfg.floor_percentile))
    return speech_threshold_from(speech_level(energies_db, cfg), floor, cfg)


def speech_threshold_from(level_db: float, floor_db: float, cfg: SegmentConfig = SegmentConfig()) -> float:
    """dB above which a frame is speech: dynamic_range_db under the speech level, min_snr_db over the floor."""
    return max(level_db - cfg.dynamic_range_db, floor_db + cfg.min_snr_db)


def voiced_threshold(energies_db: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> float:
    """dB above which a frame is clearly speech: within word_range_db of the speech level (and speech)."""
    if len(energies_db) == 0:
        return 0.0
    return max(speech_level(energies_db, cfg) - cfg.word_range_db, speech_threshold(energies_db, cfg))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a bool array, end exclusive."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _split_point(quiet: np.ndarray, smooth_db: np.ndarray) -> int:
    """Where to split a stretch: the middle of its longest run of quiet frames (the longest pause, however
    short); the quietest frame if it has none. quiet: (F,) bool, smooth_db: (F,) dB."""
    runs = _runs(quiet)
    if not runs:
        return int(np.argmin(smooth_db))
    s, e = max(runs, key=lambda run: (run[1] - run[0], -float(smooth_db[run[0] : run[1]].min())))
    return (s + e) // 2


def _split_long(start: int, end: int, quiet: np.ndarray, smooth_db: np.ndarray, max_len: int) -> list[tuple[int, int]]:
    """Cut [start, end) into pieces of at most max_len frames, each cut in the longest pause of the second
    half of the piece it ends (_split_point)."""
    pieces = []
    while end - start > max_len:
        lo, hi = start + max_len // 2, start + max_len
        cut = lo + _split_point(quiet[lo:hi], smooth_db[lo:hi])
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def speech_mask(energies_db: np.ndarray, cfg: SegmentConfig = SegmentConfig(), threshold_db: float | None = None) -> np.ndarray:
    """(F,) bool: which frames are speech, after clicks are dropped and short pauses bridged (hangover)."""
    if threshold_db is None:
        threshold_db = speech_threshold(energies_db, cfg)
    n = len(energies_db)
    min_silence, min_speech = round(cfg.min_silence_s / ENERGY_FRAME_SECONDS), round(cfg.min_speech_s / ENERGY_FRAME_SECONDS)
    speech = energies_db > threshold_db
    for start, end in _runs(speech):  # clicks first, so that they cannot bridge the pauses around them
        if end - start < min_speech:
            speech[start:end] = False
    for start, end in _runs(~speech):  # hangover: short pauses inside speech stay speech
        if start > 0 and end < n and end - start < min_silence:
            speech[start:end] = True
    return speech


def speech_regions(
    energies_db: np.ndarray, cfg: SegmentConfig = SegmentConfig(), threshold_db: float | None = None
) -> list[tuple[int, int]]:
    """(start, end) frame ranges to transcribe, end exclusive, in order, padded, none longer than
    max_segment_s; neighbours may touch but never overlap. Speech too long for one segment is split in its
    longest pause (too short to end a segment), or at its quietest point if it has none."""
    if threshold_db is None:
        threshold_db = speech_threshold(energies_db, cfg)
    n = len(energies_db)
    min_speech = round(cfg.min_speech_s / ENERGY_FRAME_SECONDS)
    pad, max_len = round(cfg.padding_s / ENERGY_FRAME_SECONDS), max(2, round(cfg.max_segment_s / ENERGY_FRAME_SECONDS))
    speech = speech_mask(energies_db, cfg, threshold_db)
    runs = [(s, e) for s, e in _runs(speech) if e - s >= min_speech]
    padded = []
    for i, (s, e) in enumerate(runs):
        # Pad each side, but stop halfway to a neighbour that is closer than two paddings.
        lo = max(0, s - pad) if i == 0 else max(s - pad, (runs[i - 1][1] + s + 1) // 2)
        hi = min(n, e + pad) if i == len(runs) - 1 else min(e + pad, (e + runs[i + 1][0] + 1) // 2)
        padded.append((lo, hi))
    width = max(1, round(cfg.split_search_s / ENERGY_FRAME_SECONDS))
    smooth = np.convolve(energies_db, np.ones(width) / width, mode="same") if n else energies_db
    quiet = energies_db <= threshold_db
    return [piece for s, e in padded for piece in _split_long(s, e, quiet, smooth, max_len)]


def overlapping_windows(
    regions: list[tuple[int, int]], overlap: int, unclear: set[int]
) -> list[tuple[int, int, int, int]]:
    """Regions (in order, not overlapping, in any unit) -> (start, end, keep_start, keep_end) windows: where
    two regions touch at a cut in `unclear` (not a clear pause), each window reaches `overlap` into the other
    (never past the other region); the keep spans are the regions. Starts and ends stay in order."""
    out = []
    for i, (s, e) in enumerate(regions):
        lo = max(s - overlap, regions[i - 1][0]) if i > 0 and regions[i - 1][1] == s and s in unclear else s
        hi = min(e + overlap, regions[i + 1][1]) if i + 1 < len(regions) and regions[i + 1][0] == e and e in unclear else e
        out.append((lo, hi, s, e))
    return out


def unclear_cuts(regions: list[tuple[int, int]], speech: np.ndarray, clear_pause: int) -> set[int]:
    """The frames where two regions touch and the cut is not a clear pause: inside speech (a split) or in a
    pause shorter than clear_pause frames."""
    pauses = np.zeros(len(speech), np.int64)  # (F,) the length of the pause each frame is in (0: speech)
    for s, e in _runs(~speech):
        pauses[s:e] = e - s
    return {s for (_, e), (s, _) in zip(regions, regions[1:]) if e == s and s < len(speech) and pauses[s] < max(1, clear_pause)}


def cut_segments(
    blocks: Iterable[np.ndarray], regions: list[tuple[int, ...]], voiced_db: float | None = None
) -> Iterator[Segment]:
    """Cut (start, end) sample ranges, or (start, end, keep_start, keep_end) windows (overlapping_windows),
    starts and ends in order, out of a stream of blocks; holds at most one block plus one region. Stops
    reading after the last region."""
    held, held_start, read = np.zeros(0, np.float32), 0, 0  # samples [held_start, read) of the stream
    todo = iter(regions)
    region = next(todo, None)

    def segment(lo: int, hi: int | None) -> Segment:
        keep = region[2:4] if len(region) == 4 else (None, None)
        return Segment(lo, held[lo - held_start : None if hi is None else hi - held_start].copy(), voiced_db, *keep)

    for block in blocks:
        if region is None:
            break
        read += len(block)
        held = np.concatenate([held, block])
        while region is not None and region[1] <= read:
            yield segment(region[0], region[1])
            region = next(todo, None)
        keep_from = min(region[0], read) if region is not None else read  # drop what no region needs
        held, held_start = held[keep_from - held_start :], keep_from
    if region is not None and region[0] < read:  # a region that runs past the end of the stream
        yield segment(region[0], None)


def file_segments(path: str | Path, cfg: SegmentConfig = SegmentConfig(),
                  read: Callable = read_blocks) -> Iterator[Segment]:
    """The speech segments of an audio file, in order (see the module docstring), its blocks from `read` (a
    server's wraps read_blocks). Raises AudioError, before yielding anything, if it cannot be read to its end."""
    limit = int(cfg.max_segment_s * SAMPLE_RATE)
    kept: list[np.ndarray] = []  # the blocks, while the file could still be short enough to be one segment

    def remember(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        seen = 0
        for block in blocks:
            seen += len(block)
            if seen <= limit:
                kept.append(block)
            else:
                kept.clear()
            yield block

    energies, total = stream_energies_db(remember(read(path, cfg.block_s)), highpass=True)  # reads the whole file
    voiced, level = voiced_threshold(energies, cfg), speech_level(energies, cfg)
    if total <= limit:
        yield Segment(0, np.concatenate(kept), voiced, level_db=level)
        return
    overlap = round(cfg.overlap_s / ENERGY_FRAME_SECONDS)
    frames = speech_regions(energies, cfg)
    unclear = unclear_cuts(frames, speech_mask(energies, cfg), round(cfg.clear_pause_s / ENERGY_FRAME_SECONDS))
    unclear = unclear if overlap else set()
    regions = [tuple(min(f * ENERGY_FRAME, total) for f in window)
               for window in overlapping_windows(frames, overlap, unclear)]
    for seg in cut_segments(read(path, cfg.block_s), regions, voiced):
        yield replace(seg, samples=without_offset(seg.samples), level_db=level)


def without_offset(samples: np.ndarray) -> np.ndarray:
    """(N,) -> (N,) float32 less its mean: a segment cut out of a recording with a DC offset would start and end in
    a step (the model's features are padded with zeros), a click beside speech where it is cut inside an utterance."""
    return (samples - samples.mean(dtype=np.float64)).astype(np.float32) if len(samples) else samples


def voiced_frames(samples: np.ndarray, voiced_db: float, hop: int = ENERGY_FRAME) -> np.ndarray:
    """(ceil(N / hop),) bool: which frames of `hop` samples (one per feature hop: [h, h + 1) x hop) are clearly speech,
    for word timestamps (asr.longform.timestamps): above voiced_db, without bursts shorter than VOICED_MIN_RUN_S (a
    click before the speech would become a word's start), and with dips of at most VOICED_MAX_DIP_S inside voiced
    speech bridged (one quiet frame in a vowel would cut a word's end short)."""
    return voiced_mask(frame_energies_db(samples, hop, highpass=True), voiced_db, hop)


def voiced_mask(energies_db: np.ndarray, voiced_db: float, hop: int = ENERGY_FRAME) -> np.ndarray:
    """voiced_frames from the frames' energies (dB, one per `hop` samples), as a stream keeps them (asr.streaming)."""
    voiced = np.asarray(energies_db) > voiced_db
    min_run, max_dip = (max(1, round(s * SAMPLE_RATE / hop)) for s in (VOICED_MIN_RUN_S, VOICED_MAX_DIP_S))
    for start, end in _runs(voiced):  # clicks first, so that they cannot bridge a dip either
        if end - start < min_run:
            voiced[start:end] = False
    for start, end in _runs(~voiced):
        if start > 0 and end < len(voiced) and end - start <= max_dip:
            voiced[start:end] = True
    return voiced
