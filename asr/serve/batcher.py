"""The batching queue: segments of requests that arrive together go through the model in one call.

    worker = ModelWorker()
    batcher = Batcher(run, max_batch=32, max_wait_s=0.005, worker=worker)
    worker.start()
    words, batch_size = await batcher.submit(segment)     # from any coroutine; the event loop is never blocked
    worker.stop()                                         # after the last request: finishes what it holds

The model worker's thread (asr.serve.worker) takes the first segment waiting, waits at most `max_wait_s` for more
(up to `max_batch`), and hands them all to `run` at once (features, model and decoding), which gives each its
result and the size of the model call it went through (the batch a response reports). Requests are served in
turn, not first come first served: each batch takes one segment of each request waiting, then a second of each,
and so on (a request that queued a long file's segments does not hold a short one behind all of them), within a
padded size (count x longest) that bounds how long one model call keeps the others waiting. While it works, new
segments queue up, so under load batches fill without waiting. A segment whose request went away (its future
cancelled) leaves the queue unrun. If a batch fails, each of its segments is run alone, so that one bad segment
fails only its own request.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from asr.serve.worker import ModelWorker, Work


@dataclass
class _Item:
    segment: Any  # asr.longform.Segment
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    since: float  # time.monotonic() when it was queued
    dropped: bool = False  # its request went away: not to be run (set on the loop's thread, read by the worker)


@dataclass
class BatchStats:
    batches: int = 0  # model calls so far
    segments: int = 0  # segments through the model so far
    sizes: Counter = field(default_factory=Counter)  # model batch size -> how many model calls had it
    reruns: int = 0  # segments run again alone after their batch failed
    dropped: int = 0  # segments whose request went away before the model ran them

    def to_dict(self) -> dict:
        return {"batches": self.batches, "segments": self.segments, "largest_batch": max(self.sizes, default=0),
                "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())}, "reruns": self.reruns,
                "dropped": self.dropped}

    def add(self, sizes: list[int]) -> None:
        """Count the model calls that gave results of these sizes (each call of size n gives n of them; size 0:
        no model call was needed)."""
        for size, n in Counter(s for s in sizes if s > 0).items():
            self.sizes[size] += n // size
            self.batches += n // size
        self.segments += len(sizes)


class Batcher:
    """run(segments) -> [(result, size of the model call it went through)] for each, in order. Segments of
    different owners (requests) are taken in turn; a batch's padded size, count x the longest `size(segment)`,
    stays within `budget` (one segment alone may be larger; a function: asked at each batch, the budget of the
    moment)."""

    def __init__(self, run: Callable[[list], list[tuple[Any, int]]], max_batch: int = 32, max_wait_s: float = 0.005,
                 worker: ModelWorker | None = None, size: Callable[[Any], float] = lambda _: 0.0,
                 budget: float | Callable[[], float] = math.inf):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run, self.max_batch, self.max_wait_s, self.size, self.budget = run, max_batch, max_wait_s, size, budget
        self.stats = BatchStats()
        self.worker = worker or ModelWorker()
        self.worker.add(self)
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[_Item]] = {}  # owner -> its segments; the least lately served first

    async def submit(self, segment, owner: Hashable = None) -> tuple[Any, int]:
        """`run`'s result for this one segment, and the size of the model call it went through."""
        loop = asyncio.get_running_loop()
        item = _Item(segment, loop, loop.create_future(), time.monotonic())
        item.future.add_done_callback(lambda future: self._gone(item) if future.cancelled() else None)
        with self._lock:
            self._queues.setdefault(owner, deque()).append(item)
        self.worker.wake()
        return await item.future

    def waiting(self) -> int:
        """How many segments wait for the model (those whose request went away not counted)."""
        with self._lock:
            return sum(not item.dropped for queue in self._queues.values() for item in queue)

    def _gone(self, item: _Item) -> None:
        """Its request went away: it leaves the queue when the worker next looks (woken for that now)."""
        item.dropped = True
        self.worker.wake()

    def poll(self, now: float, flush: bool) -> tuple[Work | None, float | None]:
        with self._lock:
            heads = [queue[0] for queue in self._live_queues().values()]
            if not heads:
                return None, None
            due = min(item.since for item in heads) + self.max_wait_s
            waiting = sum(map(len, self._queues.values()))
            if waiting < self.max_batch and now < due and not flush:
                return None, due
            batch = self._take()
        return (lambda: self._run(batch)), None

    def _live_queues(self) -> dict[Hashable, deque[_Item]]:
        """The queues, each headed by a segment still wanted (those of requests that went away are dropped)."""
        for owner, queue in list(self._queues.items()):
            while queue and queue[0].dropped:
                queue.popleft()
                self.stats.dropped += 1
            if not queue:
                del self._queues[owner]
        return self._queues

    def _take(self) -> list[_Item]:
        """Up to max_batch segments, one of each owner in turn (round robin), while the padded size fits."""
        batch: list[_Item] = []
        longest, budget = 0.0, self.budget() if callable(self.budget) else self.budget
        while len(batch) < self.max_batch and self._live_queues():
            for owner in list(self._queues):
                queue = self._queues[owner]
                if not queue or queue[0].dropped:  # emptied this pass, or gone meanwhile: dropped next pass
                    continue
                size = self.size(queue[0].segment)
                if len(batch) == self.max_batch or (batch and (len(batch) + 1) * max(longest, size) > budget):
                    return batch
                batch.append(queue.popleft())
                longest = max(longest, size)
                self._queues[owner] = self._queues.pop(owner)  # served: to the back of the turn
        return batch

    def _run(self, batch: list[_Item]) -> None:
        try:
            results = self.run([item.segment for item in batch])
        except Exception as e:
            if len(batch) > 1:  # find the segment that fails; the others still get their answers
                self.stats.reruns += len(batch)
                for item in batch:
                    self._run([item])
                return
            _settle(batch[0], error=e)
            return
        self.stats.add([size for _, size in results])
        for item, result in zip(batch, results):
            _settle(item, result)


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
