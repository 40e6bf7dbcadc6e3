"""python -m asr.serve against one client that misbehaves (issue 20's attacks, short and bounded): each is a real
server child process on 127.0.0.1, and each test asserts what the others (or the log) see."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from test_serve import running_server  # tests/ is on sys.path under pytest

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
    with running_server(log, "--stream-model", "none") as (url, proc):
        yield url, log, proc


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
