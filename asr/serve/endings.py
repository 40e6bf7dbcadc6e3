"""How a transcription's work ends when it does not end with its result, each in OpenAI's shape: its client goes
away (ClientDisconnect: a 499 access line), its deadline passes (504 request_timeout), or the server is stopping
and its grace is about to end (503 server_shutting_down, with Connection: close). In each case the work is
cancelled at once: its queued segments leave the queue and its file is read no further.

    result = await until_answered(work, deadline, cfg, guard.cut, request)
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, TypeVar

from starlette.requests import ClientDisconnect, Request

from asr.serve.config import ServeConfig
from asr.serve.errors import APIError, shutting_down

T = TypeVar("T")


async def disconnected(request: Request) -> None:
    """Return once the client has gone away (call when its body has been read: it reads what else comes)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def overtime(cfg: ServeConfig) -> APIError:
    return APIError(504, f"the request took longer than this server's limit of {cfg.max_request_s:g} s "
                         "(--max-request-s)", "request_timeout")


async def until_answered(work: Awaitable[T], deadline: float, cfg: ServeConfig, cut: asyncio.Event,
                         request: Request | None = None) -> T:
    """`work`'s result, unless the deadline (time.monotonic()) passes first (APIError 504), `cut` is set (the
    server's shutdown grace is about to end: APIError 503) or, where `request` is given, its client goes away
    (ClientDisconnect); the work is cancelled then."""
    task, stop = asyncio.ensure_future(work), asyncio.ensure_future(cut.wait())
    gone = asyncio.ensure_future(disconnected(request)) if request is not None else None
    waits = {task, stop} | ({gone} if gone is not None else set())
    try:
        done, _ = await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()  # a no-op for those done
    if task in done:
        return task.result()
    if gone in done:
        raise ClientDisconnect()
    if stop in done:
        raise shutting_down()
    raise overtime(cfg)
