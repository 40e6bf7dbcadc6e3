"""The batching queue: segments of requests that arrive together go through the model in one call.

    batcher = Batcher(lambda segments: decode_segments(rec, segments, decoder), max_batch=32, max_wait_s=0.005)
    batcher.start()
    words, batch_size = await batcher.submit(segment)     # from any coroutine; the event loop is never blocked
    batcher.stop()                                        # after the last request: finishes what it holds

One worker thread takes the first segment waiting, waits at most `max_wait_s` for more (up to `max_batch`),
and runs them all at once (features, model and decoding: `run`). While it works, new segments queue up, so
under load batches fill without waiting. If a batch fails, each of its segments is run alone, so that one bad
segment fails only its own request.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

_STOP = object()  # put on the queue by stop(): the worker finishes what it holds, then ends


@dataclass
class _Item:
    segment: Any  # asr.longform.Segment
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


@dataclass
class BatchStats:
    batches: int = 0  # model calls so far
    segments: int = 0  # segments through the model so far
    sizes: Counter = field(default_factory=Counter)  # batch size -> how many batches had it

    def to_dict(self) -> dict:
        return {"batches": self.batches, "segments": self.segments, "largest_batch": max(self.sizes, default=0),
                "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())}}


class Batcher:
    def __init__(self, run: Callable[[list], list], max_batch: int = 32, max_wait_s: float = 0.005):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self.stats = BatchStats()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="asr-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Run what is queued, then end the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    async def submit(self, segment) -> tuple[Any, int]:
        """`run`'s result for this one segment, and the size of the batch it went through the model in."""
        loop = asyncio.get_running_loop()
        item = _Item(segment, loop, loop.create_future())
        self._queue.put(item)
        return await item.future

    def _work(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, deadline = [first], time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._run(batch)
        while True:  # anything queued after stop() (nothing should be): never leave a request hanging
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._run([item])

    def _run(self, batch: list[_Item]) -> None:
        try:
            results = self.run([item.segment for item in batch])
        except Exception as e:
            if len(batch) > 1:  # find the segment that fails; the others still get their answers
                for item in batch:
                    self._run([item])
                return
            _settle(batch[0], error=e)
            return
        self.stats.batches += 1
        self.stats.segments += len(batch)
        self.stats.sizes[len(batch)] += 1
        for item, result in zip(batch, results):
            _settle(item, (result, len(batch)))


def _settle(item: _Item, result=None, error: BaseException | None = None) -> None:
    """Hand a result (or an error) to the waiting coroutine, on its own event loop's thread."""

    def settle() -> None:
        if item.future.done():  # the request went away (cancelled)
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)

    try:
        item.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
