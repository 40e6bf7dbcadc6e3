"""What the server holds for its clients at once, bounded: requests and streams (in all and per client address,
Slots) and the audio waiting for the model (AudioBudget), so that memory is bounded per server, not per request.
Everything here runs on the event loop's thread."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import contextmanager
from typing import Iterator


class Full(Exception):
    """No slot: `peer` says whether the client's own limit was reached (else the server's)."""

    def __init__(self, message: str, peer: bool):
        super().__init__(message)
        self.peer = peer


class Slots:
    """Things served at once (requests, streams), at most `limit` in all and `peer_limit` for one client address."""

    def __init__(self, what: str, limit: int, peer_limit: int, flags: tuple[str, str]):
        self.what, self.limit, self.peer_limit, self.flags = what, limit, peer_limit, flags
        self.open = 0
        self.peers: Counter = Counter()

    def check(self, peer: str) -> None:
        """Full unless `peer` could take a slot now."""
        if self.peers[peer] >= self.peer_limit:  # the client's own limit first: it says what the client can do
            raise Full(f"{self.peers[peer]} {self.what} of {peer} are being served already ({self.flags[1]} "
                       f"{self.peer_limit}); wait for one to end", peer=True)
        if self.open >= self.limit:
            raise Full(f"the server is serving {self.open} {self.what} already ({self.flags[0]} {self.limit}); "
                       "try again later", peer=False)

    def take(self, peer: str) -> None:
        """Take a slot for `peer` (give it back with give(peer)); Full if there is none."""
        self.check(peer)
        self.open += 1
        self.peers[peer] += 1

    def give(self, peer: str) -> None:
        self.open -= 1
        self.peers[peer] -= 1
        if not self.peers[peer]:
            del self.peers[peer]

    @contextmanager
    def slot(self, peer: str) -> Iterator[None]:
        """Hold a slot for `peer` while the block runs; Full if there is none."""
        self.take(peer)
        try:
            yield
        finally:
            self.give(peer)


class AudioBudget:
    """Samples of every request waiting for the model, at most `limit` of them: take() waits while they would be
    more (a request waits before reading on), except when nothing is held (a segment longer than the whole budget
    still gets through, alone)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.held = 0
        self._freed = asyncio.Event()

    async def take(self, samples: int) -> None:
        while self.held > 0 and self.held + samples > self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.held += samples

    def give(self, samples: int) -> None:
        self.held -= samples
        self._freed.set()
