"""python -m asr.serve against clients that misbehave at the connection level (issue 20's attacks, short and
bounded): a real server child process on 127.0.0.1 with short deadlines; each test asserts what the other clients
(or the log) see. Clients that need their own address bind one in 127.0.0.0/8 (all of it is loopback)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from asr.serve.config import LIMITS, flag
from test_serve import CLIPS, TEXTS, running_server  # tests/ is on sys.path under pytest

pytest.importorskip("fastapi")

BODY_START = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\n'
              b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF')


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def open_upload(url: str, length: int = 1_000_000, body: bytes = BODY_START, source: str = "127.0.0.1") -> socket.socket:
    """A socket that has sent a transcription request's headers (Content-Length `length`) and `body`."""
    s = socket.create_connection(("127.0.0.1", port_of(url)), timeout=10, source_address=(source, 0))
    s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; "
              b"boundary=b\r\nContent-Length: %d\r\n\r\n%s" % (length, body))
    return s


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


class Log:
    """The server's log from a point on."""

    def __init__(self, path: Path):
        self.path, self.start = path, path.stat().st_size

    def new(self) -> str:
        return self.path.read_bytes()[self.start :].decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    log = tmp_path_factory.mktemp("faults") / "server.log"
    with running_server(log, "--stream-model", "none", "--header-timeout-s", "1", "--body-timeout-s", "1",
                        "--min-body-kb-s", "20", "--max-peer-connections", "20") as (url, proc):
        yield url, log, proc


def answer_of(s: socket.socket) -> bytes:
    """What the server sends until it closes (or 10 s pass)."""
    s.settimeout(10)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def transcribe_clip(url: str, source: str = "127.0.0.1") -> tuple[int, str, float]:
    """(status, text or error code, seconds) of one request for the shortest clip."""
    clip, start = CLIPS[2], time.monotonic()
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60) as http:
        r = http.post(f"{url}/v1/audio/transcriptions", files={"file": (clip.name, clip.read_bytes())},
                      data={"model": "asr-an4"})
    said = r.json().get("text") if r.status_code == 200 else r.json()["error"]["code"]
    return r.status_code, said, time.monotonic() - start


def test_every_limit_is_printed_at_start_up(server):
    text = server[1].read_text()
    assert all(f"{flag(name)} " in text for name in LIMITS) and "--header-timeout-s 1 " in text, text


def test_a_client_that_leaves_mid_upload_is_one_quiet_access_line(server):
    url, path, _ = server
    log = Log(path)
    for _ in range(3):
        open_upload(url).close()  # headers and the start of the body, then gone
    wait_until(lambda: log.new().count(" 499") == 3, 20, f"three 499 lines in:\n{log.new()}")
    time.sleep(0.3)
    lines = log.new().splitlines()
    assert len(lines) == 3 and all('"POST /v1/audio/transcriptions HTTP/1.1" 499' in line for line in lines), lines


def written_bytes(pid: int) -> int:
    """What the process has written so far (write calls, files and sockets alike: /proc/PID/io wchar)."""
    return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/io").read_text().splitlines()
                if line.startswith("wchar:"))


def test_an_upload_is_written_to_disk_once(server):
    url, _, proc = server
    size = 5_000_000
    data = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVEfmt " + bytes(size - 16)  # refused once read
    before = written_bytes(proc.pid)
    r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("big.wav", data)}, data={"model": "asr-an4"},
                   timeout=60)
    assert r.status_code == 400, r.text
    assert size <= written_bytes(proc.pid) - before < 1.2 * size  # once: not spooled, then copied


def test_headers_that_never_end_get_408_and_a_closed_connection(server):
    url = server[0]
    s = socket.create_connection(("127.0.0.1", port_of(url)), timeout=10)
    s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\n")  # and no more
    start = time.monotonic()
    said = answer_of(s)
    assert said.startswith(b"HTTP/1.1 408") and 0.8 < time.monotonic() - start < 5, said
    assert error_of(said) == ("request_timeout", "invalid_request_error"), said
    s.close()


def error_of(said: bytes) -> tuple[str, str]:
    """(code, type) of a raw HTTP answer's OpenAI-shaped JSON error, its Content-Length the body's."""
    head, body = said.split(b"\r\n\r\n", 1)
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))
    assert len(body) == length and b"application/json" in head.lower(), said
    error = json.loads(body)["error"]
    return error["code"], error["type"]


def test_slow_uploads_are_dropped_while_a_normal_request_is_answered_at_once(server):
    """60 uploads from 4 addresses that send a byte every 0.3 s (never a pause of --body-timeout-s, far under
    --min-body-kb-s): each gets 408 soon after the grace; a normal request meanwhile takes as long as alone;
    the log holds at most two lines per slow client."""
    url, path, _ = server
    alone = transcribe_clip(url)
    log = Log(path)
    slow = [open_upload(url, source=f"127.0.1.{k % 4 + 1}") for k in range(60)]
    with ThreadPoolExecutor(1) as pool:
        normal = pool.submit(transcribe_clip, url)
        for _ in range(15):  # 4.5 s of trickling
            for s in slow:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            time.sleep(0.3)
        status, text, seconds = normal.result(timeout=60)
    answers = [answer_of(s) for s in slow]
    assert (status, text) == (200, TEXTS[CLIPS[2].stem]) and seconds < alone[2] + 1.0, (alone, seconds)
    assert all(a.startswith(b"HTTP/1.1 408") and b"--min-body-kb-s" in a for a in answers), answers[0]
    assert len(log.new().splitlines()) <= 2 * len(slow) + 2, log.new()


def test_a_body_that_pauses_gets_408(server):
    s, start = open_upload(server[0]), time.monotonic()
    said = answer_of(s)  # after 1 s without a byte (or, as soon, under 20 KB/s since the body began)
    assert said.startswith(b"HTTP/1.1 408") and b"request_timeout" in said and time.monotonic() - start < 4, said


def test_connections_past_the_per_address_limit_are_refused_at_once(server):
    url = server[0]
    held = [socket.create_connection(("127.0.0.1", port_of(url)), source_address=("127.0.2.1", 0))
            for _ in range(20)]
    time.sleep(0.3)
    extra = [socket.create_connection(("127.0.0.1", port_of(url)), source_address=("127.0.2.1", 0))
             for _ in range(3)]
    refused = [answer_of(s) for s in extra]
    other = transcribe_clip(url, source="127.0.2.2")  # another address is served
    for s in held + extra:
        s.close()
    assert all(r.startswith(b"HTTP/1.1 503") and error_of(r) == ("server_busy", "server_error") for r in refused), refused
    assert other[:2] == (200, TEXTS[CLIPS[2].stem])
