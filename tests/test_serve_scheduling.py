"""The server's scheduling, without a server: one model thread for every source of work (transcriptions, streams),
taken in turn; batches as the model runs them."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

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


def batches_of(budget: float) -> list[list[str]]:
    """The batches (max_batch 2) that six segments of request A (size 2) and then one of B (size 6) go in."""
    calls: list = []
    worker = ModelWorker()

    def run(items):
        calls.append(list(items))
        return [(item, len(items)) for item in items]

    batcher = Batcher(run, max_batch=2, max_wait_s=0.0, worker=worker, size=len, budget=budget)

    async def main():
        tasks = [asyncio.ensure_future(batcher.submit(f"a{k}", "A")) for k in range(6)]
        tasks.append(asyncio.ensure_future(batcher.submit("bbbbbb", "B")))
        await asyncio.sleep(0)  # all queued before the worker looks
        worker.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            worker.stop(10)

    assert sorted(a for a, _ in asyncio.run(main())) == [f"a{k}" for k in range(6)] + ["bbbbbb"]
    return calls


def test_requests_are_served_in_turn_within_the_padded_budget():
    """B's one segment goes in the first batch (in turn, not first come first served: it is not behind all of
    A's); with a budget of 10, a0 and B's (2 x 6 = 12) cannot share a call."""
    assert batches_of(float("inf")) == [["a0", "bbbbbb"], ["a1", "a2"], ["a3", "a4"], ["a5"]]
    assert batches_of(10) == [["a0"], ["bbbbbb"], ["a1", "a2"], ["a3", "a4"], ["a5"]]


def test_a_budget_given_as_a_function_is_asked_at_each_batch():
    """The server's budget shrinks while a live stream is open (--stream-batch-seconds): each model call is cut to
    the budget of the moment it is made, so that a stream's round waits behind a short call, not a long one."""
    budgets = iter([10.0] + [float("inf")] * 5)
    calls: list = []
    worker = ModelWorker()

    def run(items):
        calls.append(list(items))
        return [(item, len(items)) for item in items]

    batcher = Batcher(run, max_batch=2, max_wait_s=0.0, worker=worker, size=len, budget=lambda: next(budgets))

    async def main():
        tasks = [asyncio.ensure_future(batcher.submit(f"a{k}", "A")) for k in range(3)]
        tasks.append(asyncio.ensure_future(batcher.submit("bbbbbb", "B")))
        await asyncio.sleep(0)
        worker.start()
        try:
            return await asyncio.wait_for(asyncio.gather(*tasks), 30)
        finally:
            worker.stop(10)

    asyncio.run(main())
    assert calls == [["a0"], ["bbbbbb", "a1"], ["a2"]]  # a0 and B's (2 x 6) over 10, then together under inf


def test_a_stream_is_answered_after_its_own_windows_not_another_streams(stream_model, clips):
    """A stream that sends 5 s at once and one that sends 0.5 s (a window's worth): the short message is answered
    once a few windows have run, long before the other's 15 are done; both streams' transcripts are what they are
    alone; a stream whose decoding fails gets its own error, and the others' audio is taken once."""
    from argparse import Namespace

    from asr.audio import load_audio
    from asr.checkpoint import load_model
    from asr.decoding import Decoder, decoding_config
    from asr.serve.rounds import StreamRounds
    from asr.streaming import Final, Transcriber

    rec = load_model(stream_model)
    decoder = Decoder(decoding_config(Namespace(), rec.metadata, stream_model), rec.vocab)
    x = np.concatenate([load_audio(c.audio) for c in clips[:2]])  # 6.3 s
    worker = ModelWorker()
    rounds = StreamRounds(max_batch=8, worker=worker)
    flood, live, broken = (Transcriber(rec, decoder) for _ in range(3))
    broken.take = lambda log_probs: 1 / 0
    answered: dict = {}

    async def send(name, stream, samples, final):
        events = await rounds.submit(stream, samples, final)
        answered[name] = rounds.stats.segments  # windows run when it was answered
        return events

    async def main():
        worker.start()
        try:
            big = asyncio.ensure_future(send("flood", flood, x[:80000], False))
            small = asyncio.ensure_future(send("live", live, x[:8000], False))
            bad = asyncio.ensure_future(send("broken", broken, x[:8000], False))
            done = await asyncio.wait_for(asyncio.gather(big, small, bad, return_exceptions=True), 60)
            ends = [await send(f"end{k}", s, x[n:], True) for k, (s, n) in enumerate([(flood, 80000), (live, 8000)])]
            return done, ends
        finally:
            worker.stop(10)

    (_, _, error), ends = asyncio.run(main())
    assert isinstance(error, ZeroDivisionError)
    assert 1 <= answered["live"] <= 6 < 15 <= answered["flood"], answered  # live first, flood after its 15
    alone = " ".join(e.text for e in Transcriber(rec, decoder).events([x]) if isinstance(e, Final) and e.text)
    for events in ends:
        assert " ".join(e.text for e in events if isinstance(e, Final) and e.text) == alone
    assert flood.samples == live.samples == len(x)


def test_the_segments_waiting_are_counted_until_run_or_dropped():
    """Batcher.waiting() (GET /health's queued_segments): what waits for the model, less what its request left."""
    batcher = Batcher(recording([]), max_batch=8, max_wait_s=60)

    async def main():
        tasks = [asyncio.ensure_future(batcher.submit(s, owner=s)) for s in ("a", "b", "c")]
        await asyncio.sleep(0)  # each submitted: in the queues, no worker to run them
        queued = batcher.waiting()
        tasks[1].cancel()
        for _ in range(3):  # the task, its future, the future's callback
            await asyncio.sleep(0)
        left = batcher.waiting()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return queued, left, batcher.waiting()

    assert asyncio.run(main()) == (3, 2, 0)
