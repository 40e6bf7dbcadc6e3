"""python -m asr.serve stopped by SIGTERM with clients in flight (a real server child process on 127.0.0.1): what
each gets within --shutdown-grace-s. A transcription still at work when the grace is about to end is answered with
OpenAI's 503 (server_shutting_down), not cut."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from test_serve import CLIPS, running_server  # tests/ is on sys.path under pytest
from test_serve_limits import health
from test_serve_faults import wait_until

pytest.importorskip("fastapi")


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
