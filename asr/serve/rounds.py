"""The streams' share of the model thread, a round at a time (a source of asr.serve.worker.ModelWorker).

    rounds = StreamRounds(max_batch=32, worker=worker)
    events = await rounds.submit(stream, samples, final)     # a Transcriber's events for one message

A message's audio goes to its stream one window's worth a round (chunk_frames output frames: 0.12 s of audio for
the shipped model), and a round runs at most one window of each stream that has one, all in one batch. So a
stream that sends 5 s at a time takes no more of a round than one that sends 0.1 s in real time, and each stream
is answered at the end of the round that finishes its own message, whatever the others still hold (a message
with no window to run is answered before the round's model step). Messages just come get a round of their own
first (a real-time stream's message is usually all done there), but never two in a row while a round of all
waits, which runs in two halves (the audio, then the windows), so that what a new message waits for is at most
half a round. At most max_batch streams share a round; the others go first in the next. A stream's failure is
its own answer: the others' audio is taken once, as it came.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from asr.serve.batcher import BatchStats
from asr.serve.worker import ModelWorker, Work
from asr.streaming import Transcriber, step_streams


@dataclass(eq=False)
class _Job:
    stream: Transcriber
    samples: np.ndarray  # (N,) float32 at 16 kHz: the message's audio not yet given to the stream
    final: bool  # the message ends the stream (eof)
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future  # -> the events, or the exception that broke the stream
    log_probs: list = field(default_factory=list)  # (T, V) of each window run for this message so far
    dropped: bool = False  # nobody waits for it (set on the loop's thread)
    settled: bool = False

    def has_audio(self) -> bool:
        """Audio of the message still to give to the stream (or its end, for the last message)."""
        return len(self.samples) > 0 or (self.final and not self.stream.done)

    def busy(self) -> bool:
        return not self.settled and not self.dropped and (self.has_audio() or self.stream.model.ready())


class StreamRounds:
    def __init__(self, max_batch: int = 32, worker: ModelWorker | None = None):
        self.max_batch = max_batch
        self.stats = BatchStats()  # batches: rounds' model calls; segments: windows run
        self.worker = worker or ModelWorker()
        self.worker.add(self)
        self._lock = threading.Lock()
        self._new: list[_Job] = []  # submitted, not yet seen by the worker (guarded by the lock)
        self._active: deque[_Job] = deque()  # the worker's own from here: in the order they share rounds
        self._plan: deque[Work] = deque()  # the rest of the round of all under way
        self._fresh_last = False  # the last work was a round of messages just come

    async def submit(self, stream: Transcriber, samples: np.ndarray, final: bool) -> list:
        """The stream's events once `samples` (and with `final`, its end) have been through the model."""
        loop = asyncio.get_running_loop()
        job = _Job(stream, np.asarray(samples, np.float32).reshape(-1), final, loop, loop.create_future())
        job.future.add_done_callback(lambda future: self._gone(job) if future.cancelled() else None)
        with self._lock:
            self._new.append(job)
        self.worker.wake()
        result = await job.future
        if isinstance(result, Exception):
            raise result
        return result

    def _gone(self, job: _Job) -> None:
        job.dropped = True
        self.worker.wake()

    def poll(self, now: float, flush: bool) -> tuple[Work | None, float | None]:
        """The next piece of work: a round of the messages just come (first, but never twice in a row while other
        work waits), else the next half of a round of all (its audio; then its windows and answers)."""
        waiting = bool(self._plan) or any(not job.dropped for job in self._active)
        with self._lock:
            self.stats.dropped += sum(job.dropped for job in self._new)
            live = [job for job in self._new if not job.dropped]
            now_or_later = not (self._fresh_last and waiting)
            fresh, self._new = (live[: self.max_batch], live[self.max_batch :]) if now_or_later else ([], live)
        if fresh:
            self._fresh_last = True
            return (lambda: self._round(fresh, fresh=True)), None
        self._fresh_last = False
        if not self._plan:
            self.stats.dropped += sum(job.dropped for job in self._active)
            self._active = deque(job for job in self._active if not job.dropped and not job.settled)
            jobs = [self._active.popleft() for _ in range(min(self.max_batch, len(self._active)))]
            self._active.extend(jobs)  # to the back: streams left out of this round go first in the next
            self._plan.extend([lambda: self._feed_all(jobs), lambda: self._round(jobs)] if jobs else [])
        return (self._plan.popleft(), None) if self._plan else (None, None)

    def _feed_all(self, jobs: list[_Job]) -> None:
        for job in jobs:
            if not job.settled and not job.dropped:
                try:
                    self._feed(job)
                except Exception as e:  # this stream only
                    self._finish(job, e)

    def _round(self, jobs: list[_Job], fresh: bool = False) -> None:
        """One window of each job that has one, in one batch; answers for those with nothing left to run. Messages
        just come are fed their first window's audio here (and answered before the step if they need none)."""
        if fresh:
            self._feed_all(jobs)
        for job in jobs:
            if not job.busy() and not job.settled:  # nothing of it to run: answered before the model step
                self._finish(job)
        ready = [job for job in jobs if job.busy() and job.stream.model.ready()]
        if ready:
            self._step(ready)
        for job in ready:
            if not job.busy() and not job.settled:
                self._finish(job)
        if fresh:
            self._active.extend(job for job in jobs if job.busy())  # the rest of their audio in the rounds of all

    def _feed(self, job: _Job) -> None:
        """One window's worth of the message's audio to its stream (and the stream's end after its last)."""
        size = job.stream.samples_per_frame * job.stream.model.chunk
        piece, job.samples = job.samples[:size], job.samples[size:]
        if len(piece):
            job.stream.accept_audio(piece)
        if job.final and not len(job.samples) and not job.stream.done:
            job.stream.finish_audio()

    def _step(self, ready: list[_Job]) -> None:
        """One window of each ready stream, in one batch."""
        try:
            log_probs = step_streams([job.stream.model for job in ready], max_windows=1)
        except Exception as e:  # the batch's model step: every stream in it is broken
            for job in ready:
                self._finish(job, e)
            return
        self.stats.add([len(ready)] * len(ready))
        for job, lp in zip(ready, log_probs):
            job.log_probs.append(lp)

    def _finish(self, job: _Job, error: Exception | None = None) -> None:
        """The message is done: its events (or the error), handed to the waiting coroutine."""
        result: object = error
        if error is None:
            try:
                vocab = job.stream.model.model.cfg.vocab_size
                result = job.stream.take(torch.cat(job.log_probs) if job.log_probs else torch.zeros(0, vocab))
            except Exception as e:
                result = e
        job.settled = True

        def settle() -> None:
            if not job.future.done():
                job.future.set_result(result)

        try:
            job.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
