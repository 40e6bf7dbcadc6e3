"""ModelWorker: the one thread that runs every model call of a server, so that transcriptions and live streams never
run torch at once (two threads, each with --threads threads, oversubscribe a small machine).

    worker = ModelWorker()
    batcher = Batcher(run, worker=worker)      # each source joins the worker it is given
    worker.start()                             # with the server
    worker.stop(timeout=10)                    # after the last request: what is queued runs first

A source keeps its own queue and answers `poll(now, flush)`: the work to run now (a callable), or none and the
time at which it will have some (a batch that waits for company), or none at all. The worker asks the sources
in turn, starting after the one that ran last, so that no source holds the model from another for longer than
one piece of its work (one model call of transcriptions, one round of the streams).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

Work = Callable[[], None]
log = logging.getLogger("asr.serve")


class Source(Protocol):
    def poll(self, now: float, flush: bool) -> tuple[Work | None, float | None]:
        """(work to run now, None) or (None, the monotonic time it will have work, or None: nothing queued).
        flush: the server is stopping, run what is queued without waiting for more."""


class ModelWorker:
    def __init__(self):
        self.sources: list[Source] = []
        self._cond = threading.Condition()
        self._woken = False  # something was submitted since the sources were last asked
        self._stopping = False
        self._turn = 0  # the source asked first next time
        self._thread = threading.Thread(target=self._work, name="asr-model", daemon=True)

    def add(self, source: Source) -> None:
        self.sources.append(source)

    def wake(self) -> None:
        """A source has new work (called from any thread, after queueing it)."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Run what the sources hold (without waiting for batches to fill), then end the thread; wait at most
        `timeout` seconds for that."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _next(self) -> tuple[Work | None, float | None]:
        """The first source's work, in turn from self._turn; else the earliest time one will have work."""
        wake_at, now = None, time.monotonic()
        for k in range(len(self.sources)):
            i = (self._turn + k) % len(self.sources)
            work, at = self.sources[i].poll(now, self._stopping)
            if work is not None:
                self._turn = i + 1
                return work, None
            if at is not None:
                wake_at = at if wake_at is None else min(wake_at, at)
        return None, wake_at

    def _work(self) -> None:
        while True:
            work, wake_at = self._next()
            if work is not None:
                try:
                    work()  # sources settle their own errors with the requests they belong to
                except Exception:  # a source's own bug: logged, and the thread goes on serving the others
                    log.exception("error in the model thread")
                continue
            with self._cond:
                if self._woken:
                    self._woken = False
                    continue
                if self._stopping and wake_at is None:
                    return
                self._cond.wait(None if wake_at is None else max(0.0, wake_at - time.monotonic()))
                self._woken = False
