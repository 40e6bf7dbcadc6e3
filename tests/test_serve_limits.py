"""python -m asr.serve's limits on requests (issue 20, short and bounded, against real server child processes):
requests at once in all and per client address, the request deadline, the work of a client that went away
cancelled at once, the queued audio bounded per server, and SIGTERM with a stalled upload."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from test_serve import CLIPS, TEXTS, clips_joined, running_server  # tests/ is on sys.path under pytest
from test_serve_faults import answer_of, open_upload, transcribe_clip, wait_until

pytest.importorskip("fastapi")


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory) -> Path:
    """The five clips 12 times over with half a second of silence between (about 190 s: cut into segments)."""
    return clips_joined(tmp_path_factory.mktemp("long") / "long.flac", 12, 0.5)


def test_requests_past_the_limits_are_refused_and_one_past_its_deadline_is_cut(tmp_path):
    """Batches wait 30 s for company, so requests stay in flight: two from one address fill its limit (the third
    gets 429 at once), one from another fills the server's (a fourth address gets 503 at once); the three in
    flight pass --max-request-s 6 and get 504, and their segments leave the queue unrun."""
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "30000",
                        "--max-request-s", "6", "--max-requests", "3", "--max-peer-requests", "2") as (url, _):
        with ThreadPoolExecutor(3) as pool:
            held = [pool.submit(transcribe_clip, url, source) for source in ("127.0.0.1", "127.0.0.1", "127.0.3.1")]
            wait_until(lambda: health(url)["in_flight"] == 3, 20, "three requests in flight")
            peer, server = transcribe_clip(url), transcribe_clip(url, "127.0.3.2")
            cut = [h.result(timeout=60) for h in held]
        wait_until(lambda: health(url)["dropped"] == 3, 20, "the three requests' segments dropped")
        after = health(url)
    assert peer[:2] == (429, "too_many_requests") and server[:2] == (503, "server_busy")
    assert peer[2] < 4 and server[2] < 4  # at once, not after the 6 s the requests in flight are given
    assert [c[:2] for c in cut] == [(504, "request_timeout")] * 3 and all(c[2] < 20 for c in cut), cut
    assert (after["in_flight"], after["segments"], after["dropped"]) == (0, 0, 3), after


def test_a_streamed_transcription_holds_its_slot_and_keeps_the_deadline(tmp_path):
    """stream=true (server-sent events) counts as a request in flight until its end, so it fills --max-requests 1
    (another address gets 503), and passes --max-request-s like any other (504); its slot is given back."""

    def stream_clip(url: str) -> tuple[int, str]:
        clip = CLIPS[2]
        r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (clip.name, clip.read_bytes())},
                       data={"model": "asr-an4", "stream": "true"}, timeout=30)
        return r.status_code, (r.json()["error"]["code"] if r.status_code != 200 else r.text)

    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "30000",
                        "--max-request-s", "6", "--max-requests", "1") as (url, _):
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(stream_clip, url)
            wait_until(lambda: health(url)["in_flight"] == 1, 20, "the stream in flight")
            other = transcribe_clip(url, "127.0.3.2")
            cut = held.result(timeout=60)
        wait_until(lambda: health(url)["dropped"] == 1, 20, "its segment dropped")
        after = health(url)
    assert other[:2] == (503, "server_busy") and cut == (504, "request_timeout")
    assert (after["in_flight"], after["segments"], after["dropped"]) == (0, 0, 1), after


def test_a_client_that_goes_away_stops_its_work_and_a_short_request_behind_it_is_quick(tmp_path, long_audio):
    with running_server(tmp_path / "server.log", "--stream-model", "none") as (url, _):
        alone = transcribe_clip(url)
        data = long_audio.read_bytes()
        body = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\nContent-Disposition: '
                b'form-data; name="file"; filename="long.flac"\r\n\r\n' + data + b"\r\n--b--\r\n")
        s = open_upload(url, len(body), body)
        wait_until(lambda: health(url)["segments"] > 2, 60, "the long request being decoded")
        s.close()  # gone: its remaining segments and its reading stop
        gone = time.monotonic()
        status, text, seconds = transcribe_clip(url)
        wait_until(lambda: health(url)["in_flight"] == 0, 10, "the request ended")
        time.sleep(1.0)  # the batch running when it went away ends
        before = health(url)["segments"]
        time.sleep(1.5)
        after = health(url)
        log = (tmp_path / "server.log").read_text()
    assert (status, text) == (200, TEXTS[CLIPS[2].stem]) and seconds < alone[2] + 1.5, (alone, seconds)
    assert after["segments"] == before and after["dropped"] > 0, after  # nothing more of it runs
    assert time.monotonic() - gone < 10 and '"POST /v1/audio/transcriptions HTTP/1.1" 499' in log


def test_a_streamed_transcription_whose_client_goes_before_its_first_event_is_cancelled(tmp_path):
    """stream=true: a client gone while its first segment waits for the model (batches wait 15 s for company)
    gives its slot back at once and its segment leaves the queue unrun, as a plain request does."""
    clip = CLIPS[2]
    body = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\nContent-Disposition: '
            b'form-data; name="stream"\r\n\r\ntrue\r\n--b\r\nContent-Disposition: form-data; name="file"; '
            b'filename="' + clip.name.encode() + b'"\r\n\r\n' + clip.read_bytes() + b"\r\n--b--\r\n")
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "15000") as (url, _):
        s = open_upload(url, len(body), body)
        wait_until(lambda: health(url)["queued_segments"] == 1, 20, "its segment queued for the model")
        s.close()
        gone = time.monotonic()
        wait_until(lambda: health(url)["in_flight"] == 0, 10, "the slot given back")
        freed = time.monotonic() - gone
        wait_until(lambda: health(url)["dropped"] == 1, 20, "its segment dropped")
        after = health(url)
    assert freed < 2.0 and (after["segments"], after["queued_segments"]) == (0, 0), (freed, after)


def test_the_audio_waiting_for_the_model_is_bounded_per_server(tmp_path, long_audio):
    """Three long uploads at once, with --max-queued-audio-s 30: /health never sees more queued, and each
    transcript is the one it has alone."""
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-queued-audio-s", "30") as (url, _):
        def one(_):
            with open(long_audio, "rb") as f:
                r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("long.flac", f)},
                               data={"model": "asr-an4"}, timeout=300)
            return r.status_code, r.json().get("text")

        with ThreadPoolExecutor(3) as pool:
            uploads = [pool.submit(one, k) for k in range(3)]
            seen = []
            while len(seen) < 6000 and not all(u.done() for u in uploads):  # at most 6000 x 50 ms
                seen.append(health(url)["queued_audio_s"])
                time.sleep(0.05)
            answers = [u.result(timeout=300) for u in uploads]
        alone = one(None)
    assert alone[0] == 200 and answers == [alone] * 3
    assert 0 < max(seen) <= 30, max(seen)


def test_sigterm_with_a_stalled_upload_finishes_the_request_in_flight_and_exits_within_the_grace(tmp_path):
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "1500",
                        "--shutdown-grace-s", "30") as (url, proc):
        stalled = open_upload(url)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(transcribe_clip, url)
            wait_until(lambda: health(url)["in_flight"] == 1, 20, "a request in flight")
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            said = answer_of(stalled)
            assert proc.wait(40) == -signal.SIGTERM
            exited = time.monotonic() - signalled
            status, text, _ = in_flight.result(timeout=40)
    assert (status, text) == (200, TEXTS[CLIPS[2].stem])
    assert said.startswith(b"HTTP/1.1 503") and b"server_shutting_down" in said, said
    assert exited < 20, exited  # not held for the whole grace by the stalled upload


def test_a_stream_past_its_deadline_after_its_first_event_ends_with_an_error_event(tmp_path, long_audio):
    """stream=true whose --max-request-s (5) passes mid-stream (each segment waits 1 s for company, one at a time:
    --pool-seconds 1): the events so far, then OpenAI's error event (504's request_timeout), and the chunked answer
    ends properly (a connection cut there is an error to the client, and the openai client uploads again)."""
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "1000",
                        "--pool-seconds", "1", "--max-request-s", "5") as (url, _):
        with open(long_audio, "rb") as f, httpx.stream(
                "POST", f"{url}/v1/audio/transcriptions", files={"file": ("long.flac", f)},
                data={"model": "asr-an4", "stream": "true"}, timeout=60) as r:
            events = [json.loads(line[len("data: "):]) for line in r.iter_lines() if line.startswith("data: ")]
        after = health(url)
    assert r.status_code == 200 and events[0]["type"] == "transcript.text.delta", events[:1]
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "request_timeout", events[-1]
    assert "--max-request-s" in events[-1]["error"]["message"] and after["in_flight"] == 0, (events[-1], after)


def test_a_streamed_transcription_whose_client_goes_after_its_first_event_is_one_499_line(tmp_path):
    """stream=true: a client gone once the events flow has its work cancelled and its slot given back, and its
    access line (one) says 499, as before the first event, not the 200 its answer began with."""
    audio = clips_joined(tmp_path / "long.flac", 3, 1.0).read_bytes()
    body = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\nContent-Disposition: '
            b'form-data; name="stream"\r\n\r\ntrue\r\n--b\r\nContent-Disposition: form-data; name="file"; '
            b'filename="long.flac"\r\n\r\n' + audio + b"\r\n--b--\r\n")
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "1000",
                        "--pool-seconds", "1") as (url, _):
        s = open_upload(url, len(body), body)
        s.settimeout(30)
        said = b""
        while b"transcript.text.delta" not in said and len(said) < 100_000:  # a closed socket gives b"": an error
            said += s.recv(65536) or b"!" * 100_000
        s.close()
        wait_until(lambda: health(url)["in_flight"] == 0, 10, "the slot given back")
        time.sleep(0.5)  # (a line the server would write after the 499)
        log = (tmp_path / "server.log").read_text()
    lines = [line for line in log.splitlines() if "POST /v1/audio/transcriptions" in line]
    assert said.startswith(b"HTTP/1.1 200") and b"transcript.text.delta" in said, said[:300]
    assert len(lines) == 1 and '"POST /v1/audio/transcriptions HTTP/1.1" 499' in lines[0], lines
    assert "Task was destroyed" not in log and "Traceback" not in log, log
