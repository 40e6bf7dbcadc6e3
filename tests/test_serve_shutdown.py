"""python -m asr.serve stopped by SIGTERM with clients in flight (a real server child process on 127.0.0.1): what
each gets within --shutdown-grace-s. A transcription still at work when the grace is about to end is answered with
OpenAI's 503 (server_shutting_down), not cut; a live stream is given the grace, and its utterance in progress is
finalised and sent before a close with 1012 (service restart)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from asr.audio import load_audio
from test_serve import CLIPS, running_server  # tests/ is on sys.path under pytest
from test_serve_limits import health
from test_serve_faults import wait_until

pytest.importorskip("fastapi")
websockets = pytest.importorskip("websockets")

from test_serve_stream import chunks, local_text, pcm  # noqa: E402

SERVICE_RESTART = 1012  # WebSocket close code (RFC 6455's registry)


def post_clip(url: str, source: str, stream: bool) -> tuple[httpx.Response, float]:
    """(answer, time.monotonic() when it came) of one request for the shortest clip."""
    clip = CLIPS[2]
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60) as http:
        r = http.post(f"{url}/v1/audio/transcriptions", files={"file": (clip.name, clip.read_bytes())},
                      data={"model": "asr-an4", **({"stream": "true"} if stream else {})})
    return r, time.monotonic()


def test_a_transcription_still_at_work_when_the_grace_ends_gets_a_503_within_it(tmp_path):
    """Batches wait 30 s for company, so two requests (one plain, one stream=true) are still in flight when the
    grace of 4 s ends: each is answered within it with OpenAI's 503 and Connection: close (it was uvicorn's own
    500 "Internal Server Error" once the grace had passed, and a CancelledError traceback in the log)."""
    grace = 4.0
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "30000",
                        "--shutdown-grace-s", str(grace)) as (url, proc):
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(post_clip, url, "127.0.0.1", False), pool.submit(post_clip, url, "127.0.4.1", True)]
            wait_until(lambda: health(url)["in_flight"] == 2, 20, "two requests in flight")
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            answers = [h.result(timeout=60) for h in held]
        assert proc.wait(40) == -signal.SIGTERM
        exited = time.monotonic() - signalled
    log = (tmp_path / "server.log").read_text()
    for r, when in answers:
        assert r.status_code == 503 and r.headers["content-type"] == "application/json", (r.status_code, r.text)
        error = r.json()["error"]
        assert (error["type"], error["param"], error["code"]) == ("server_error", None, "server_shutting_down"), error
        assert "shutting down" in error["message"] and r.headers["connection"] == "close", (error, r.headers)
        assert 1.0 < when - signalled < grace, when - signalled  # given the grace, answered within it
    assert exited < grace + 10, exited
    assert "Traceback" not in log and "CancelledError" not in log, log


async def speak_through_sigterm(url: str, messages: list[bytes], sigterm) -> tuple[list[dict], int, float]:
    """Send the messages one by one (each answer read) until a partial has words, then call `sigterm()` and send
    the rest; then read until the server closes: (answers, close code, time.monotonic() of the close)."""
    answers, signalled = [], False
    async with websockets.connect(url) as ws:
        try:
            for message in messages:
                await ws.send(message)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
                if not signalled and answers[-1].get("partial"):
                    sigterm()
                    signalled = True
            while len(answers) < 10_000:
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        except websockets.ConnectionClosed:
            pass
        assert signalled, answers
        return answers, ws.close_code, time.monotonic()


async def stay_quiet(url: str, opened: asyncio.Event) -> tuple[list[dict], int, float]:
    """A stream that sends 0.1 s of silence, then nothing: (answers, close code, time.monotonic() of the close)."""
    answers = []
    async with websockets.connect(url) as ws:
        try:
            await ws.send(bytes(3200))
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            opened.set()
            while len(answers) < 10_000:
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        except websockets.ConnectionClosed:
            pass
        return answers, ws.close_code, time.monotonic()


def test_sigterm_gives_a_live_stream_the_grace_and_its_utterance_a_final_result_before_1012(tmp_path,
                                                                                            stream_model):
    """Two streams when SIGTERM comes (grace 8 s): one mid-utterance is answered on (the rest of its clip, in 0.1 s
    messages), and its utterance ends with a result, all of the clip's words, then a close with 1012 within the
    grace; a quiet one gets its (empty) result and 1012 at once, not held for the grace. Both used to get 1012
    within 0.1 s of SIGTERM, with no result."""
    grace, x = 8.0, load_audio(CLIPS[0])
    with running_server(tmp_path / "server.log", "--shutdown-grace-s", str(grace), "--no-access-log") as (url, proc):
        ws_url, times = url.replace("http://", "ws://") + "/v1/stream", {}

        def sigterm():
            proc.send_signal(signal.SIGTERM)
            times["signalled"] = time.monotonic()

        async def both():
            opened = asyncio.Event()
            quiet = asyncio.ensure_future(stay_quiet(ws_url, opened))
            await asyncio.wait_for(opened.wait(), 30)
            speaking = await speak_through_sigterm(ws_url, chunks(pcm(x), 3200), sigterm)
            return speaking, await quiet

        (answers, code, closed), (quiet, quiet_code, quiet_closed) = asyncio.run(both())
        assert proc.wait(40) == -signal.SIGTERM
        exited = time.monotonic() - times["signalled"]
    log = (tmp_path / "server.log").read_text()
    results = [a for a in answers if "text" in a]
    assert code == SERVICE_RESTART and "text" in answers[-1] and "result" in answers[-1], (code, answers[-3:])
    assert " ".join(a["text"] for a in results if a["text"]) == local_text(stream_model, x), results
    assert closed - times["signalled"] < grace, closed - times["signalled"]
    assert quiet_code == SERVICE_RESTART and quiet[-1] == {"result": [], "text": ""}, (quiet_code, quiet)
    assert quiet_closed - times["signalled"] < 3.0, quiet_closed - times["signalled"]
    assert exited < grace + 10 and "Traceback" not in log, (exited, log)
