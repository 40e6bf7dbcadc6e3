"""The server's guard at the connection level, before any request exists: connections at once (in all and per
client address), the time a request's headers may take, and the notice that the server is stopping; and Notices,
log lines that stay few however many clients misbehave.

    guard = Guard(cfg)
    uvicorn.Config(app, http=guarded_protocol(guard), ...)    # every HTTP connection goes through it
    uvicorn.Config(app, ws=graceful_websockets(), ...)       # streams end themselves at shutdown (asr.serve.stream)
    guard.stop()                                             # at shutdown: bodies still arriving are dropped
    await guard.cut.wait()                                   # set CUT_BEFORE_S before --shutdown-grace-s ends

uvicorn's HTTP protocol (h11) gives a connection no time limit until its first answer: a client that opens
connections and sends nothing, or half a header, held them forever. Here each connection must have sent a whole
request's headers within header_timeout_s of opening (or of its previous answer), or it is closed; more than
max_connections (or max_peer_connections from one address) are answered 503 and closed at once. A connection
that becomes a WebSocket leaves these counts: /v1/stream counts its streams (asr.serve.stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from asr.serve.config import ServeConfig
from asr.serve.errors import error_body, status_kind

log = logging.getLogger("asr.serve")
NOTICE_EVERY_S = 10.0  # one log line of a kind at most this often; the next says how many it stood for
REASONS = {408: "Request Timeout", 503: "Service Unavailable"}  # the answers written here, before any request
CUT_BEFORE_S = 0.5  # s before the shutdown grace ends (at most half of it) that what is still in flight is ended


def raw_answer(status: int, message: str, code: str, headers: str = "") -> bytes:
    """A whole HTTP answer with OpenAI's error body, written to a connection that never became a request (h11 has
    none to answer); the connection is closed after it."""
    body = json.dumps(error_body(message, status_kind(status), code=code)).encode()
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
            f"\r\n{headers}connection: close\r\n\r\n").encode() + body


class Notices:
    """Warnings by kind: the first at once, then at most one each NOTICE_EVERY_S, counting those it stands for."""

    def __init__(self, every_s: float = NOTICE_EVERY_S):
        self.every_s = every_s
        self.last: dict[str, float] = {}
        self.counts: Counter = Counter()

    def note(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        if now - self.last.get(kind, -math.inf) >= self.every_s:
            n, self.last[kind] = self.counts.pop(kind), now
            log.warning("%s%s", message, f" ({n} such in the last {self.every_s:g} s)" if n > 1 else "")


class Guard:
    """What the connections of one server share: how many are open (in all, per address) and the notices."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.max_connections = cfg.max_connections  # lowered at start-up where the process may open fewer files
        self.open = 0
        self.peers: Counter = Counter()
        self.notices = Notices()
        self.stopping = asyncio.Event()  # set when the server begins to shut down
        self.cut = asyncio.Event()  # set as the grace is about to end: requests still at work are answered (503)

    def admit(self, peer: str) -> str | None:
        """Count a new connection from `peer`; or why it is refused (it is then not counted)."""
        if self.open >= self.max_connections:
            return f"{self.open} connections are open (--max-connections {self.max_connections})"
        if self.peers[peer] >= self.cfg.max_peer_connections:
            return f"{self.peers[peer]} connections from {peer} are open (--max-peer-connections)"
        self.open += 1
        self.peers[peer] += 1
        return None

    def release(self, peer: str) -> None:
        self.open -= 1
        self.peers[peer] -= 1
        if not self.peers[peer]:
            del self.peers[peer]

    def stop(self) -> None:
        """The server begins to stop (call on its event loop): `stopping` now, `cut` CUT_BEFORE_S before the
        grace ends, so that what is still in flight can be answered within it (uvicorn cuts it at the end)."""
        self.stopping.set()
        grace = self.cfg.shutdown_grace_s
        asyncio.get_running_loop().call_later(grace - min(CUT_BEFORE_S, grace / 2), self.cut.set)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a guard's connection limits and header deadline (guarded_protocol sets it)."""

    guard: Guard
    peer: str | None = None  # set while the connection is counted
    timer: asyncio.TimerHandle | None = None  # the header deadline, while one runs

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        peer = self.client[0] if self.client else "-"
        if why := self.guard.admit(peer):
            self.guard.notices.note("refused", f"refused a connection from {peer}: {why}")
            transport.write(raw_answer(503, f"the server is busy: {why}; try again later", "server_busy",
                                       "retry-after: 1\r\n"))
            transport.close()
            return
        self.peer = peer
        self.arm()

    def connection_lost(self, exc) -> None:
        self.disarm()
        self.forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are in
            self.disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            self.arm()  # the next request's headers have header_timeout_s too

    def handle_websocket_upgrade(self, event) -> None:
        self.disarm()
        self.forget()  # a stream now: /v1/stream counts it
        super().handle_websocket_upgrade(event)

    def forget(self) -> None:
        if self.peer is not None:
            self.guard.release(self.peer)
            self.peer = None

    def arm(self) -> None:
        self.disarm()
        self.timer = self.loop.call_later(self.guard.cfg.header_timeout_s, self.headers_late)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def headers_late(self) -> None:
        self.timer = None
        self.guard.notices.note("headers", f"closed a connection from {self.peer} that sent no whole request within "
                                           f"{self.guard.cfg.header_timeout_s:g} s (--header-timeout-s)")
        if not self.transport.is_closing():
            self.transport.write(raw_answer(408, f"no whole request within {self.guard.cfg.header_timeout_s:g} s "
                                                 "(--header-timeout-s)", "request_timeout"))
            self.transport.close()


def guarded_protocol(guard: Guard) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (Config(http=...)) for the connections of the server `guard` belongs to."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def graceful_websockets() -> type | str:
    """uvicorn's WebSocket protocol (Config(ws=...)), except that at shutdown a stream under way is left open, for
    the app to end within the grace (asr.serve.stream: its utterance's result, then 1012), where uvicorn's closes
    it at once (1012, the utterance lost); uvicorn still waits for it and cuts it when the grace is over."""
    if AutoWebSocketsProtocol is None:
        return "auto"  # no WebSocket library: no streams to end

    class GracefulWebSocketProtocol(AutoWebSocketsProtocol):  # type: ignore[misc, valid-type]
        def shutdown(self) -> None:
            if getattr(self, "handshake_complete", False) and not getattr(self, "close_sent", True):
                return  # accepted and not closing: the app ends it
            super().shutdown()

    return GracefulWebSocketProtocol
