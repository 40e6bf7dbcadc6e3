"""One uploaded file -> its segments -> the batcher -> a FileResult, as `python -m asr.transcribe` makes it.

The file is read from disk as the CLI reads it (asr.longform.file_segments: a short file is one segment, a long
one is streamed and cut at pauses), each segment goes to the shared Batcher as soon as it is cut, and at most
`pool_seconds` of one request's audio waits for the model at a time, so memory stays bounded for any length.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asr.audio import SAMPLE_RATE, AudioError
from asr.decoding import Steering
from asr.longform import FileResult, SegmentConfig, SegmentResult, file_duration, file_segments, segment_result
from asr.serve.batcher import Batcher
from asr.serve.errors import APIError, audio_error


@dataclass
class _Pending:
    start: int  # the segment's first sample in the file
    keep_start_s: float  # the part of the file whose words it keeps (asr.longform.seams)
    keep_end_s: float
    samples: int  # its length, while it waits for the model
    task: asyncio.Task  # -> (alternatives, batch size)
    announced: bool = False  # handed to on_segment already


def too_long(name: str, seconds: float, limit: float) -> APIError:
    return APIError(400, f"{name}: {seconds:.1f} s of audio is longer than this server's limit of {limit:g} s",
                    "audio_too_long", "file")


async def transcribe_file(path: str, name: str, batcher: Batcher, max_seconds: float | None = None,
                          pool_seconds: float = 600.0, steering: Steering | None = None,
                          on_segment: Callable[[SegmentResult], None] | None = None) -> tuple[FileResult, int]:
    """The file's FileResult (named `name`, the upload's file name, in it and in errors) and the largest batch
    its segments went through the model in. Raises APIError for audio that cannot be read or is too long.
    steering: the request's hotwords or grammar, for each of its segments; on_segment: called with each segment
    that has words, in time order, as soon as it and those before it are decoded (stream=true)."""
    duration = file_duration(path)
    if max_seconds is not None and duration > max_seconds:
        raise too_long(name, duration, max_seconds)
    segments = file_segments(path, SegmentConfig())
    pending: list[_Pending] = []
    try:
        while (seg := await asyncio.to_thread(next, segments, None)) is not None:  # reading the file is blocking
            if max_seconds is not None and seg.end_s > max_seconds:  # a header that understated the length
                raise too_long(name, seg.end_s, max_seconds)
            task = asyncio.ensure_future(batcher.submit((seg, steering)))
            pending.append(_Pending(seg.start, seg.keep_start_s, seg.keep_end_s, len(seg.samples), task))
            await _wait_below(pending, pool_seconds * SAMPLE_RATE)
            _announce(pending, on_segment)
        done = []
        for p in pending:  # in time order, each announced as it is done
            done.append((p, *(await p.task)))
            _announce(pending, on_segment)
    except AudioError as e:
        raise audio_error(public(str(e), path, name)) from e
    finally:
        for p in pending:
            p.task.cancel()  # a no-op for those done; the others' answers are not wanted
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


async def _wait_below(pending: list[_Pending], samples: float) -> None:
    """Wait until the segments still waiting for the model hold fewer than `samples`."""
    while sum(p.samples for p in pending if not p.task.done()) >= samples:
        await asyncio.wait([p.task for p in pending if not p.task.done()], return_when=asyncio.FIRST_COMPLETED)
