"""One uploaded file -> its segments -> the batcher -> a FileResult, as `python -m asr.transcribe` makes it.

The file is read from disk as the CLI reads it (asr.longform.file_segments: a short file is one segment, a long
one is streamed and cut at pauses), each segment goes to the shared Batcher as soon as it is cut, and at most
`pool_seconds` of one request's audio waits for the model at a time, and at most an AudioBudget's of all requests,
so memory stays bounded for any length and any number of requests. A request that is cancelled (its client went
away) stops reading its file between two blocks, and its segments not yet run leave the queue.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from asr.audio import SAMPLE_RATE, AudioError, check_samples, read_blocks
from asr.audio.ffmpeg import ffprobe_header, needs_ffmpeg
from asr.batching import length_batches
from asr.decoding import Decoder, Steering
from asr.longform import (FileResult, Segment, SegmentConfig, SegmentResult, decode_alternatives, file_duration,
                          file_segments, segment_result)
from asr.recognizer import Recognizer
from asr.serve.batcher import Batcher
from asr.serve.errors import APIError, audio_error
from asr.serve.limits import AudioBudget


@dataclass
class _Pending:
    start: int  # the segment's first sample in the file
    keep_start_s: float  # the part of the file whose words it keeps (asr.longform.seams)
    keep_end_s: float
    samples: int  # its length, while it waits for the model
    task: asyncio.Task  # -> (alternatives, batch size)
    announced: bool = False  # handed to on_segment already


def model_batches(rec: Recognizer, decoder: Decoder, batch_seconds: float) -> Callable[[list], list[tuple[list, int]]]:
    """The Batcher's work for transcriptions: (segment, its request's steering) pairs -> each segment's
    alternatives (the best) and the size of the model call it went through (the model's batches hold at most
    batch_seconds of padded audio: count x longest)."""

    def run(items: list) -> list[tuple[list, int]]:
        out: list = [None] * len(items)
        for idx in length_batches([len(seg.samples) for seg, _ in items], batch_seconds * SAMPLE_RATE):
            chosen = [items[i] for i in idx]
            alternatives = decode_alternatives(rec, [seg for seg, _ in chosen], decoder, batch_seconds,
                                               steering=[steering for _, steering in chosen])  # one model call
            for i, a in zip(idx, alternatives):
                out[i] = (a, len(idx))
        return out

    return run


class _Stopped(Exception):
    """Raised in the reading thread of a request that nobody waits for any more."""


class _Reader:
    """A file's segments (asr.longform.file_segments), each read in a worker thread; stop() ends the reading at the
    next block (30 s of audio), so that a client that went away does not keep a thread reading an hour for nobody,
    and closes the generators at once (the file, an ffmpeg child), or as soon as the thread reading them is done:
    never left to the garbage collector (they and the reader refer to each other). _Reader.reading counts the
    files being read (/health)."""

    reading = 0
    _count = threading.Lock()

    def __init__(self, path: str):
        self.stopped = threading.Event()
        self.busy = False  # a thread is in the generators (they are closed by it, then)
        self._turn = threading.Lock()  # guards busy and stopped together
        self.samples = 0  # the file's samples (16 kHz), counted as it is read (a long file is read twice: the most)
        self.opened: list[Iterator[np.ndarray]] = []  # the blocks' generators read() made
        self.segments = file_segments(path, SegmentConfig(), self.read)

    def read(self, path: str, block_s: float) -> Iterator[np.ndarray]:
        blocks = self._blocks(path, block_s)
        self.opened.append(blocks)
        return blocks

    def _blocks(self, path: str, block_s: float) -> Iterator[np.ndarray]:
        blocks = read_blocks(path, block_s)  # AudioError at once for a missing or empty file
        with _Reader._count:
            _Reader.reading += 1
        try:
            count = 0
            for block in blocks:
                if self.stopped.is_set():
                    raise _Stopped(path)
                count += len(block)
                self.samples = max(self.samples, count)
                yield block
        finally:
            blocks.close()  # the file closed, an ffmpeg child ended, now
            with _Reader._count:
                _Reader.reading -= 1

    async def next(self) -> Segment | None:
        return await asyncio.to_thread(self._next)  # reading the file is blocking

    def _next(self) -> Segment | None:
        with self._turn:
            if self.stopped.is_set():
                return None
            self.busy = True
        try:
            return next(self.segments, None)
        finally:
            with self._turn:
                self.busy, close = False, self.stopped.is_set()
            if close:  # stopped while this thread read: the event loop left the closing to it
                self._close()

    def stop(self) -> None:
        """End the reading: the generators are closed now, or by the thread in them when it is done."""
        with self._turn:
            self.stopped.set()
            close = not self.busy
        if close:
            self._close()

    def _close(self) -> None:
        self.segments.close()
        for blocks in self.opened:
            blocks.close()


def files_reading() -> int:
    """Uploaded files being read by a thread now (a request's reading ends at its next block once it is cancelled)."""
    return _Reader.reading


def header_seconds(path: str) -> float | None:
    """The file's duration as asr.transcribe gives it, where that needs no decoding; for a format read through
    ffmpeg, whose samples the CLI counts (they are counted here as the file is read: a decode for the count alone
    would cost as much as the reading, up to hours of audio, and nothing could stop it when its client goes), what
    its header says, or None where it says nothing (a WebM from a browser)."""
    if not needs_ffmpeg(Path(path)):
        return file_duration(path)
    try:
        return ffprobe_header(Path(path), count=False)[0]
    except AudioError:  # reading the file says what is wrong
        return None


def too_long(name: str, seconds: float, limit: float) -> APIError:
    return APIError(400, f"{name}: {seconds:.1f} s of audio is longer than this server's limit of {limit:g} s",
                    "audio_too_long", "file")


async def transcribe_file(path: str, name: str, batcher: Batcher, max_seconds: float | None = None,
                          pool_seconds: float = 120.0, budget: AudioBudget | None = None,
                          steering: Steering | None = None,
                          on_segment: Callable[[SegmentResult], None] | None = None) -> tuple[FileResult, int]:
    """The file's FileResult (named `name`, the upload's file name, in it and in errors) and the largest batch
    its segments went through the model in. Raises APIError for audio that cannot be read or is too long.
    steering: the request's hotwords or grammar, for each of its segments; on_segment: called with each segment
    that has words, in time order, as soon as it and those before it are decoded (stream=true)."""
    duration = await asyncio.to_thread(header_seconds, path)
    if max_seconds is not None and duration is not None and duration > max_seconds:
        raise too_long(name, duration, max_seconds)
    reader, pending = _Reader(path), []
    try:
        while (seg := await reader.next()) is not None:
            if max_seconds is not None and seg.end_s > max_seconds:  # a header that understated the length
                raise too_long(name, seg.end_s, max_seconds)
            check_samples(seg.samples, path, seg.start_s, SAMPLE_RATE)  # no bad sample reaches a batch
            pending.append(await _submit((seg, steering), batcher, budget, reader))  # the reader: the request
            await _wait_below(pending, pool_seconds * SAMPLE_RATE)
            _announce(pending, on_segment)
        done = []
        for p in pending:  # in time order, each announced as it is done
            done.append((p, *(await p.task)))
            _announce(pending, on_segment)
    except AudioError as e:
        raise audio_error(public(str(e), path, name)) from e
    finally:
        reader.stop()
        for p in pending:
            p.task.cancel()  # a no-op for those done; the others leave the queue
    if needs_ffmpeg(Path(path)):  # counted as it was read, as the CLI counts it (the header is near it)
        duration = reader.samples / SAMPLE_RATE
    result = FileResult(name, duration=duration, segments=[
        segment_result(p.keep_start_s, p.keep_end_s, alternatives)
        for p, alternatives, _ in sorted(done, key=lambda d: d[0].start) if _has_words(alternatives)])
    return result, max((size for _, _, size in done), default=0)  # as asr.longform's _Assembler does


def _has_words(alternatives: list) -> bool:
    return bool(alternatives) and bool(alternatives[0].words)


def _announce(pending: list[_Pending], on_segment: Callable[[SegmentResult], None] | None) -> None:
    """on_segment(each segment with words not yet announced, in order, up to the first still being decoded)."""
    if on_segment is None:
        return
    for p in pending:
        if not p.task.done():
            return
        if not p.announced:
            p.announced = True
            alternatives, _ = p.task.result()
            if _has_words(alternatives):
                on_segment(segment_result(p.keep_start_s, p.keep_end_s, alternatives))


def public(message: str, path: str, name: str) -> str:
    """An error about the spooled file `path` as the client may see it: the file called by its upload's `name`, and
    nothing of the server's folder (a command in the message that names a file beside it names that file alone)."""
    folder = str(Path(path).parent)
    return message.replace(path, name).replace(folder + os.sep, "").replace(folder, "")


async def _submit(item: tuple[Segment, Steering | None], batcher: Batcher, budget: AudioBudget | None,
                  owner: object) -> _Pending:
    """The (segment, steering) handed to the batcher once the server's budget has room for the segment (given back
    when it is done)."""
    seg = item[0]
    if budget is not None:
        await budget.take(len(seg.samples))
    task = asyncio.ensure_future(batcher.submit(item, owner))
    if budget is not None:
        task.add_done_callback(lambda _, n=len(seg.samples): budget.give(n))
    return _Pending(seg.start, seg.keep_start_s, seg.keep_end_s, len(seg.samples), task)


async def _wait_below(pending: list[_Pending], samples: float) -> None:
    """Wait until the segments still waiting for the model hold fewer than `samples`."""
    while sum(p.samples for p in pending if not p.task.done()) >= samples:
        await asyncio.wait([p.task for p in pending if not p.task.done()], return_when=asyncio.FIRST_COMPLETED)
