"""From audio files to timed transcripts, in bounded memory, whatever the files' lengths.

    for result in transcribe_paths(rec, ["a.wav", "meeting.flac"]):   # FileResults, in input order
        print(result.audio, result.text, result.words[:3])

Each file is cut into segments (segment.py: a short file is one segment, a long one is split at
pauses). Segments from all files gather in a pool of `pool_seconds` of audio; the pool is sorted by
length and run through the model in batches of at most `batch_seconds` (count x longest, the rule of
asr.data.length_batches), decoded by an asr.decoding.Decoder (greedy by default) and timed
(timestamps.py). Where two segments' windows overlap (a cut at no clear pause, if SegmentConfig.overlap_s is
set), each keeps the tokens emitted in its own part only (seams.py), so that each word is kept once; progress
counts each segment's own part, so overlapped audio counts once. A file's result comes out as soon as
all its segments, and every file before it, are done. A file that cannot be read gives a result with
`error` set and does not stop the others.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from asr.audio import (SAMPLE_RATE, AudioError, audio_duration, is_stream, read_stream, readable_extensions,
                       scan_folder, write_wav)
from asr.decoding import Decoder, Steering
from asr.longform.decode import Alternative, decode_alternatives, decode_segments
from asr.longform.notes import QUIET_DB, special_note, unreadable_note
from asr.longform.seams import clip_words
from asr.audio.energy import SILENCE_DB
from asr.longform.segment import Segment, SegmentConfig, file_segments
from asr.longform.timestamps import Word
from asr.recognizer import Recognizer

# Mean word confidence below which a file is flagged as likely outside the shipped model's domain (other models'
# confidences differ: each needs its own). Measured with the shipped v11 (bench/confidence.py,
# bench/results/confidence_an4_v11.txt), default decoding: AN4 test utterances 0.76-1.00 (median 0.95, 2.3% below
# 0.8), the same played backwards 0.39-0.97 (median 0.73, 73% below); on dev 9.1% and 70% below; greedy, test: 0.8%
# and 59%. v1, the model it was chosen for: test 6.2% and 86% below (greedy 3.8% and 76%; synthetic tones, greedy,
# 0.49-0.79).
LOW_CONFIDENCE = 0.8


@dataclass(frozen=True)
class PipelineConfig:
    batch_seconds: float = 200.0  # padded audio per model call: segments x the longest of them
    pool_seconds: float = 600.0  # audio gathered before sorting by length into batches (bounds memory)
    snap_to_speech: bool = True  # move word edges onto the speech energy around the CTC spikes
    nbest: int = 1  # alternatives kept per segment (SegmentResult.alternatives when > 1; beam search only)
    segment: SegmentConfig = field(default_factory=SegmentConfig)


@dataclass
class SegmentResult:
    start: float  # seconds in the file where the part this segment kept begins (its decoded audio may reach further)
    end: float  # the kept parts of a file's segments never overlap; each word's centre lies in its segment's
    words: list[Word]
    alternatives: list[Alternative] = field(default_factory=list)  # with PipelineConfig.nbest > 1: best first
    logprobs: list[tuple[str, float]] = field(default_factory=list)  # its text's tokens (asr.longform.decode)
    tokens: tuple[int, ...] = ()  # the token ids its words were read from

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


@dataclass
class FileResult:
    audio: str  # the path as given
    duration: float = 0.0  # seconds (from the file's header)
    segments: list[SegmentResult] = field(default_factory=list)  # in time order, those with words
    error: str | None = None  # why the file could not be transcribed (then there are no segments)
    level_db: float | None = None  # the file's speech level, dBFS (asr.longform.segment); None: no segment was cut

    @property
    def words(self) -> list[Word]:
        return [w for seg in self.segments for w in seg.words]

    @property
    def text(self) -> str:
        return " ".join(seg.text for seg in self.segments)

    @property
    def logprobs(self) -> list[tuple[str, float]]:
        """The text's tokens and their log-probs, segment after segment (the space between two: 0.0)."""
        return [pair for k, seg in enumerate(self.segments) for pair in ([(" ", 0.0)] if k else []) + seg.logprobs]

    @property
    def mean_confidence(self) -> float | None:
        """The mean of the words' confidences; None without words."""
        words = self.words
        return sum(w.confidence for w in words) / len(words) if words else None

    @property
    def no_speech(self) -> bool:
        """No words were heard (no speech, or none the model could hear)."""
        return self.error is None and not self.segments

    @property
    def silent(self) -> bool:
        """Digital silence: no level above the floor of the energy measure."""
        return self.level_db is not None and self.level_db <= SILENCE_DB + 1.0

    @property
    def too_quiet(self) -> bool:
        """Speech (not digital silence) below QUIET_DB."""
        return self.level_db is not None and not self.silent and self.level_db < QUIET_DB

    def to_dict(self, min_confidence: float = 0.0) -> dict:
        """JSON-ready: {"audio", "text", "duration", "segments": [{"start", "end", "text", "words": [...]}]}
        or {"audio", "error"}; times in seconds rounded to the millisecond. A file whose mean word confidence
        is below min_confidence (LOW_CONFIDENCE suits the shipped model) also has "low_confidence": true and
        "mean_confidence"; one with no words "no_speech": true, one whose speech is below QUIET_DB "too_quiet":
        true, and either its "level_db"."""
        if self.error is not None:
            return {"audio": self.audio, "error": self.error}

        def word(w: Word) -> dict:
            return {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                    "confidence": round(w.confidence, 3)}

        segments = [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                     "words": [word(w) for w in s.words]} for s in self.segments]
        for doc, s in zip(segments, self.segments):
            if s.alternatives:
                doc["alternatives"] = [{"text": a.text, "confidence": round(a.confidence, 4)} for a in s.alternatives]
        doc = {"audio": self.audio, "text": self.text, "duration": round(self.duration, 3), "segments": segments}
        if self.mean_confidence is not None and self.mean_confidence < min_confidence:
            doc |= {"low_confidence": True, "mean_confidence": round(self.mean_confidence, 3)}
        flags = {"no_speech": self.no_speech, "too_quiet": self.too_quiet}
        if any(flags.values()):
            doc |= {k: True for k, v in flags.items() if v} | {"level_db": self.level_db and round(self.level_db, 1)}
        return doc


def file_duration(path: str) -> float:
    """Seconds from the file's header; 0 if it has none (reading the file will then say what is wrong)."""
    try:
        return audio_duration(path) if Path(path).is_file() else 0.0
    except AudioError:
        return 0.0


class _Assembler:
    """Takes the segments of files read in order, runs them through the model a pool at a time, and
    hands back each file's result once it, and every file before it, is complete."""

    def __init__(self, rec: Recognizer, paths: list[str], cfg: PipelineConfig, decoder: Decoder | None,
                 on_progress: Callable[[float], None] | None, steering: Steering | None = None):
        self.rec, self.cfg, self.decoder, self.on_progress, self.steering = rec, cfg, decoder, on_progress, steering
        self.results = [FileResult(p, duration=file_duration(p)) for p in paths]
        self.read = [False] * len(paths)  # whether each file has been read to its end (or failed)
        self.waiting = [0] * len(paths)  # segments of each file still in the pool
        self.reported = [0.0] * len(paths)  # progress reported for each file, seconds
        self.decoded: list[list[tuple[Segment, list[Alternative]]]] = [[] for _ in paths]  # each file's, until done
        self.pool: list[tuple[int, Segment]] = []
        self.pooled = 0  # samples in the pool
        self.emitted = 0  # results handed back

    def add(self, i: int, seg: Segment) -> None:
        self.results[i].level_db = seg.level_db
        self.pool.append((i, seg))
        self.waiting[i] += 1
        self.pooled += len(seg.samples)
        if self.pooled >= self.cfg.pool_seconds * SAMPLE_RATE:
            self.run_pool()

    def fail(self, i: int, error: str) -> None:
        self.results[i].error, self.results[i].segments, self.decoded[i] = error, [], []
        self.pool = [(j, seg) for j, seg in self.pool if j != i]
        self.pooled = sum(len(seg.samples) for _, seg in self.pool)
        self.waiting[i] = 0

    def done_reading(self, i: int) -> None:
        self.read[i] = True

    def run_pool(self) -> None:
        segments = [seg for _, seg in self.pool]
        decoded = decode_alternatives(self.rec, segments, self.decoder, self.cfg.batch_seconds, self.cfg.snap_to_speech,
                                      self.steering, self.cfg.nbest)
        for (i, seg), alternatives in zip(self.pool, decoded):
            self.waiting[i] -= 1
            self.decoded[i].append((seg, alternatives))
            # Only the kept part counts: the audio two overlapping segments share is reported once.
            self._report(i, min(seg.keep_end_s - seg.keep_start_s, self.results[i].duration - self.reported[i]))
        self.pool, self.pooled = [], 0

    def ready(self) -> Iterator[FileResult]:
        while self.emitted < len(self.results) and self.read[self.emitted] and not self.waiting[self.emitted]:
            result = self.results[self.emitted]
            decoded = sorted(self.decoded[self.emitted], key=lambda pair: pair[0].start)
            result.segments = [segment_result(seg.keep_start_s, seg.keep_end_s, alts, self.cfg.nbest > 1)
                               for seg, alts in decoded if alts and alts[0].words]
            self.decoded[self.emitted] = []
            self._report(self.emitted, result.duration - self.reported[self.emitted])
            self.emitted += 1
            yield result

    def _report(self, i: int, seconds: float) -> None:
        self.reported[i] += seconds
        if self.on_progress is not None and seconds > 0:
            self.on_progress(seconds)


def segment_result(start: float, end: float, alternatives: list[Alternative], keep: bool = False) -> SegmentResult:
    """A decoded segment's kept part [start, end) s: its best alternative's words (clipped to it), token log-probs
    and tokens, and all its alternatives if `keep`."""
    clip = [replace(a, words=clip_words(a.words, start, end)) for a in alternatives]
    best = clip[0]
    return SegmentResult(start, end, best.words, clip if keep else [], best.logprobs, best.tokens)


def transcribe_paths(
    rec: Recognizer,
    paths: list[str],
    cfg: PipelineConfig = PipelineConfig(),
    decoder: Decoder | None = None,
    on_progress: Callable[[float], None] | None = None,
    steering: Steering | None = None,
) -> Iterator[FileResult]:
    """One FileResult per path, in order, each as soon as it is ready; greedy decoding unless a decoder is
    given (`steering`, hotwords or a grammar, needs a beam-search one). on_progress(seconds) is called with the
    audio seconds done since its last call; over a run they add up to the files' durations."""
    assembler = _Assembler(rec, [str(p) for p in paths], cfg, decoder, on_progress, steering)
    for i, path in enumerate(paths):
        try:
            for seg in file_segments(path, cfg.segment):
                assembler.add(i, seg)
                yield from assembler.ready()
        except AudioError as e:
            assembler.fail(i, str(e))
        assembler.done_reading(i)
        yield from assembler.ready()
    if assembler.pool:
        assembler.run_pool()
    yield from assembler.ready()


def transcribe_waves(rec: Recognizer, waves: list[np.ndarray], batch_seconds: float = 200.0) -> list[str]:
    """Transcripts of (N,) 16 kHz waveforms, in order; similar lengths are batched together."""
    segments = [Segment(0, np.asarray(w, dtype=np.float32), None) for w in waves]  # no word edges to snap
    return [" ".join(w.word for w in words) for words in decode_segments(rec, segments, batch_seconds=batch_seconds)]


@dataclass(frozen=True)
class Input:
    path: str  # an audio file to transcribe, or the path that gave `error`
    name: Path  # where its outputs go under an output folder, without suffix
    error: str | None = None
    given: str | None = None  # the input as given where `path` is a copy of it (a pipe or stdin, spooled to a file)


def spool_stream(path: str, folder: Path) -> Input:
    """Stdin ("-") or a pipe read to its end (asr.audio.read_stream) and written to `folder` as 16 kHz float WAV,
    so that it can be read twice, as long files are (segment.py), and timed like any file."""
    name = Path("stdin" if path == "-" else Path(path).name)
    try:
        samples = read_stream(path)
    except AudioError as e:
        return Input(path, name, str(e))
    copy = folder / f"{len(list(folder.iterdir()))}.wav"
    write_wav(copy, samples)
    return Input(str(copy), name, given=path)


def expand_inputs(paths: list[str], spool: Path | None = None) -> list[Input]:
    """Files as given; folders -> the audio files under them (recursively, sorted), or an error if none;
    with a `spool` folder, stdin ("-"), pipes and /dev/stdin are read once and copied there (spool_stream).
    A folder below that cannot be listed is an input with an error, in its place among the files; files in
    formats that cannot be read (m4a, webm, wma, ...) are counted and named in one note on stderr per folder."""
    inputs = []
    for p in paths:
        if spool is not None and is_stream(p):
            inputs.append(spool_stream(p, spool))
            continue
        if not Path(p).is_dir():
            inputs.append(Input(p, Path(Path(p).stem)))
            continue
        scan = scan_folder(p)
        if scan.unreadable:
            print(f"note: {p}: {unreadable_note([f.relative_to(p) for f in scan.unreadable])}", file=sys.stderr)
        if scan.special:
            print(f"note: {p}: {special_note([f.relative_to(p) for f in scan.special])}", file=sys.stderr)
        if not scan.audio and not scan.problems:
            inputs.append(Input(p, Path(Path(p).name), f"{p}: no audio files found in this folder "
                                                       f"(looked for {' '.join(readable_extensions())})"))
        found = [(f, Input(str(f), f.relative_to(p).with_suffix(""))) for f in scan.audio]
        failed = [(f, Input(str(f), f.relative_to(p) if f != Path(p) else Path(f.name), why))
                  for f, why in scan.problems]
        inputs.extend(inp for _, inp in sorted(found + failed, key=lambda pair: pair[0]))
    return inputs
