"""stream=true on POST /v1/audio/transcriptions: OpenAI's server-sent events, a segment at a time.

    data: {"type": "transcript.text.delta", "delta": "six eight three"}        one per decoded segment, in order
    data: {"type": "transcript.text.delta", "delta": " three oh seven"}       (each after the first begins with a space)
    data: {"type": "transcript.text.done", "text": "...", "usage": {...}}     the whole text: the deltas joined

With include[]=logprobs each event has "logprobs" too. Audio that cannot be read before the first event is
answered as without stream=true (400 and OpenAI's error shape); a failure after it ends the stream with
{"type": "error", "error": {...}}: past the request's deadline, the error event of a 504 (request_timeout), and the
answer ends. Its sending ends ERROR_SEND_S after that deadline: a client that stops reading cannot hold its
request's slot past it (the connection is cut). The access line, written once the answer ends, says 200, or 499
for a client that went away before it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import AsyncIterator, Awaitable, Callable

from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from asr.longform import FileResult, SegmentResult
from asr.serve.errors import APIError, error_body
from asr.serve.formats import text_delta, text_done
from asr.serve.logs import GONE, access_later, access_line

log = logging.getLogger("asr.serve")
ERROR_SEND_S = 2.0  # s after the request's deadline (when its job is cancelled) for the error event to be sent
Job = Callable[[Callable[[SegmentResult], None]], Awaitable[tuple[FileResult, int]]]  # transcribe_file, bound


def sse(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


async def stream_response(job: Job, logprobs: bool, frame_s: float, cleanup: Callable[[], None],
                          gone: Awaitable[None], deadline: float) -> StreamingResponse:
    """Start `job` (it calls its argument with each segment as it is decoded) and answer with its events; raises
    what the job raises before its first segment, and ClientDisconnect (the job cancelled) if `gone` (the client
    went away) comes first. `cleanup` runs once the job is over, however it ends. The job must end by `deadline`
    (time.monotonic()); the answer is cut ERROR_SEND_S after it, so that the job's error event is sent first."""
    segments: asyncio.Queue = asyncio.Queue()
    task = asyncio.ensure_future(job(segments.put_nowait))
    first, left = asyncio.ensure_future(segments.get()), asyncio.ensure_future(gone)
    try:
        await asyncio.wait({task, first, left}, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is not None and not first.done():
            raise task.exception()
        if left.done() and not first.done():
            raise ClientDisconnect()
    except BaseException:
        first.cancel()
        task.cancel()
        cleanup()
        raise
    finally:
        left.cancel()  # once the events flow, Starlette watches for the client going
    return BoundedResponse(_events(task, first, segments, logprobs, frame_s, cleanup), deadline + ERROR_SEND_S)


class BoundedResponse(StreamingResponse):
    """Server-sent events that end by `deadline` (time.monotonic()), however slowly the client reads: past it the
    sending stops and the connection is cut (uvicorn closes an answer left incomplete); the events' generator is
    closed at once either way, so its cleanup never waits for the garbage collector. Its access line is written
    once it ends: 499 if the client went away before, else 200 (uvicorn's, as it began, is left out)."""

    def __init__(self, events: AsyncIterator[str], deadline: float):
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.deadline = deadline

    async def __call__(self, scope, receive, send) -> None:
        ended, status = False, GONE  # the access line: 200 once the answer has ended (or is cut), 500 on a fault

        async def sending(message: dict) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                with access_later():
                    return await send(message)
            await send(message)
            ended = ended or not message.get("more_body", False)

        try:
            left = max(0.0, self.deadline - time.monotonic())
            await asyncio.wait_for(super().__call__(scope, receive, sending), left)
            status = 200 if ended else GONE
        except asyncio.TimeoutError:
            status = 200  # as its headers said; the warning says it was cut
            log.warning("stream=true answer cut at its deadline (--max-request-s): the client read too slowly")
        except Exception:
            status = 500
            raise
        finally:
            await self.body_iterator.aclose()
            access_line(scope, status)  # however it ends: uvicorn's own line was left out


async def _events(task: asyncio.Future, first: asyncio.Future, segments: asyncio.Queue, logprobs: bool,
                  frame_s: float, cleanup: Callable[[], None]) -> AsyncIterator[str]:
    sent, waiting = 0, first
    try:
        while True:
            await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():  # the job is over: what it queued last, then the end
                waiting.cancel()
                break
            seg = waiting.result()
            yield sse(text_delta((" " if sent else "") + seg.text, _delta_logprobs(seg, sent, logprobs)))
            sent, waiting = sent + 1, asyncio.ensure_future(segments.get())
        while not segments.empty():
            seg = segments.get_nowait()
            yield sse(text_delta((" " if sent else "") + seg.text, _delta_logprobs(seg, sent, logprobs)))
            sent += 1
        if task.exception() is not None:
            e = task.exception()
            body = e.body() if isinstance(e, APIError) else error_body(f"the server failed ({type(e).__name__})",
                                                                       "server_error")
            yield sse({"type": "error", **body})
            return
        result, _ = task.result()
        yield sse(text_done(result, round(result.duration / frame_s), logprobs))
    finally:
        waiting.cancel()  # a client gone mid-stream: nothing waits for its next segment
        task.cancel()  # and its job stops
        cleanup()


def _delta_logprobs(seg: SegmentResult, sent: int, logprobs: bool) -> list[tuple[str, float]] | None:
    if not logprobs:
        return None
    return ([(" ", 0.0)] if sent else []) + seg.logprobs
