"""The server's scheduling, without a server: one model thread for every source of work (transcriptions, streams),
taken in turn; batches as the model runs them."""

from __future__ import annotations

import asyncio
import threading
import time

from asr.serve.batcher import Batcher
from asr.serve.worker import ModelWorker


def recording(calls: list, seconds: float = 0.02):
    """A Batcher's run that notes (its thread, start, end) and takes `seconds`."""

    def run(items):
        start = time.monotonic()
        time.sleep(seconds)
        calls.append((threading.get_ident(), start, time.monotonic()))
        return [(item, len(items)) for item in items]

    return run


def test_transcriptions_and_streams_share_one_model_thread_and_never_overlap():
    calls: list = []
    worker = ModelWorker()
    files = Batcher(recording(calls), max_batch=2, max_wait_s=0.0, worker=worker)
    streams = Batcher(recording(calls), max_batch=2, max_wait_s=0.0, worker=worker)

    async def main():
        worker.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*(b.submit(k) for k in range(6) for b in (files, streams))), 30)
        finally:
            worker.stop(10)

    answers = asyncio.run(main())
    assert [a for a, _ in answers] == [k for k in range(6) for _ in range(2)]
    assert {thread for thread, _, _ in calls} == {worker.thread.ident} and not worker.thread.is_alive()
    spans = sorted((start, end) for _, start, end in calls)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


def test_a_failing_source_does_not_end_the_model_thread():
    """A batch that fails is run again alone (each request gets its own error); an error of a source's own
    (outside any request) is logged and the thread goes on."""
    worker = ModelWorker()

    class Broken:
        polled = 0

        def poll(self, now, flush):
            self.polled += 1
            return ((lambda: 1 / 0) if self.polled == 1 else None), None

    worker.add(Broken())
    batcher = Batcher(lambda items: [(item, len(items)) for item in items], max_wait_s=0.0, worker=worker)

    async def main():
        worker.start()
        try:
            return await asyncio.wait_for(batcher.submit("x"), 10)
        finally:
            worker.stop(10)

    assert asyncio.run(main()) == ("x", 1)
