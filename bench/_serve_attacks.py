"""bench/serve_faults.py's HTTP attacks, one function each: attack(args, folder, start) -> [(figure, value, target)],
where start(*flags) is a context manager giving (process, URL, log path) of a fresh server. The streams' attacks
are in _stream_attacks.py; ATTACKS names them all, in the order they run."""

from __future__ import annotations

import io
import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from _stream_attacks import idle_slots, key_in_log, speech, stream_beside_uploads, stream_fairness
from serve_load import peak_rss_mb

BOUNDARY = b"bench"


def form(name: str, data: bytes) -> bytes:
    """A multipart body with model=asr-an4 and `data` as the file `name`."""
    b = b"--" + BOUNDARY
    return (b + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n' + b +
            b'\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n\r\n' + data +
            b"\r\n" + b + b"--\r\n")


def open_upload(url: str, body: bytes, length: int | None = None, source: str = "127.0.0.1") -> socket.socket:
    """A socket that has sent a transcription request's headers (Content-Length `length`) and `body`."""
    s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30, source_address=(source, 0))
    s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; "
              b"boundary=%s\r\nContent-Length: %d\r\n\r\n%s" % (BOUNDARY, length or len(body), body))
    return s


def post(url: str, name: str, data: bytes, timeout: float = 600) -> tuple[int, dict, float]:
    """(status, JSON answer, seconds) of one request."""
    start = time.monotonic()
    r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (name, data)}, data={"model": "asr-an4"},
                   timeout=timeout)
    return r.status_code, r.json(), time.monotonic() - start


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=30).json()


def short_clip(args) -> bytes:
    """The first clip of the manifest, as a file's bytes."""
    first = json.loads(Path(args.manifest).read_text().splitlines()[0])
    audio = Path(first["audio"])
    return (audio if audio.is_absolute() else Path(args.manifest).parent / audio).read_bytes()


def lines(log: Path, since: int) -> int:
    return len(log.read_bytes()[since:].splitlines())


def slow_uploads(args, folder: Path, start) -> list:
    clip = short_clip(args)
    with start() as (_, url, log):
        alone = post(url, "clip.flac", clip)[2]
        since = log.stat().st_size
        slow = [open_upload(url, b"--bench\r\n", 10**6, f"127.0.1.{k % 50 + 1}") for k in range(1000)]
        status, _, seconds = post(url, "clip.flac", clip)  # while all 1000 are open
        for s in slow:
            s.settimeout(30)
        dropped = sum(s.recv(64).startswith(b"HTTP/1.1 408") for s in slow)  # at --body-timeout-s (10 s)
        for s in slow:
            s.close()
        time.sleep(1.0)
        per_client = lines(log, since) / len(slow)
    return [("slow_uploads_normal_request_s", seconds, f"target <= 1 s; alone {alone:.2f} s; status {status}"),
            ("slow_uploads_dropped", dropped, "of 1000, each answered 408"),
            ("slow_uploads_log_lines_per_client", per_client, "target <= 10")]


def disconnects(args, folder: Path, start) -> list:
    with start() as (_, url, log):
        since = log.stat().st_size
        for k in range(300):  # from 10 addresses: one address's 300 at once would pass --max-peer-connections
            open_upload(url, b"--bench\r\n", 10**6, f"127.0.6.{k % 10 + 1}").close()
        for _ in range(200):  # 20 s at most
            if log.read_bytes()[since:].count(b" 499") >= 300:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        per_client, gone = lines(log, since) / 300, log.read_bytes()[since:].count(b" 499")
    return [("disconnects_log_lines_per_client", per_client, f"target <= 10; was 118; {gone} of them 499 lines")]


def sigterm(args, folder: Path, start) -> list:
    clip = short_clip(args)
    with start("--max-wait-ms", "1500") as (proc, url, _):
        stalled = open_upload(url, b"--bench\r\n", 10**6)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(post, url, "clip.flac", clip)
            for _ in range(200):
                if health(url)["in_flight"]:
                    break
                time.sleep(0.05)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            exited = time.monotonic() - signalled
            status = in_flight.result(timeout=60)[0]
        stalled.close()
    return [("sigterm_exit_s", exited, "target <= the grace, 10 s"),
            ("sigterm_request_in_flight_status", status, "target 200")]


def poison(args, folder: Path, start) -> list:
    clip = short_clip(args)
    buf = io.BytesIO()
    sf.write(buf, np.full(16000, 3e38, np.float32), 16000, format="WAV", subtype="FLOAT")
    with start("--max-wait-ms", "200") as (_, url, _):
        before = health(url)["reruns"]
        files = [("poison.wav", buf.getvalue())] + [("clip.flac", clip)] * 15
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda f: post(url, *f), files))
        reruns = health(url)["reruns"] - before
    status, body, _ = answers[0]
    good = sum(a[0] == 200 for a in answers[1:])
    return [("poison_answer", f"{status} {body.get('error', {}).get('code')}", "target 400 corrupt_audio"),
            ("poison_good_answered", good, "of 15, target 15"), ("poison_reruns", reruns, "target 0")]


def give_up(url: str, body: bytes, after_s: float) -> float:
    """Send the whole upload, wait `after_s`, go away; the time it went."""
    s = open_upload(url, body)
    time.sleep(after_s)
    s.close()
    return time.monotonic()


def abandoned(args, folder: Path, start) -> list:
    path = folder / "hour.opus"
    sf.write(path, speech(args.manifest, 3600.0), 16000, format="OGG", subtype="OPUS", compression_level=0.97)
    body, clip = form("hour.opus", path.read_bytes()), short_clip(args)
    with start() as (_, url, _):
        gone = give_up(url, body, 3.0)
        last, seen = gone, None
        while time.monotonic() - gone < 30:  # its work: segments decoded, its file being read
            now = health(url)
            if (now["segments"], now["reading"]) != seen or now["reading"]:
                last, seen = time.monotonic(), (now["segments"], now["reading"])
            time.sleep(0.05)
        stopped = max(0.0, last - gone)
        give_up(url, body, 3.0)
        behind = post(url, "clip.flac", clip)[2]
    return [("abandoned_upload_mb", round(path.stat().st_size / 1e6, 1), "60 minutes of Opus"),
            ("abandoned_work_stops_s", stopped, "target <= 1 s after the disconnect"),
            ("abandoned_short_request_behind_s", behind, "target <= 0.5 s")]


def memory(args, folder: Path, start) -> list:
    path = folder / "ten.flac"
    sf.write(path, speech(args.manifest, 600.0), 16000)
    data = path.read_bytes()
    with start("--no-access-log") as (proc, url, _):
        before = peak_rss_mb(proc.pid)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: post(url, "ten.flac", data, 1800)[0], range(8)))
        peak = peak_rss_mb(proc.pid)
    return [("memory_peak_rss_mb", peak, f"target <= 800 MB; {before:.0f} MB before the uploads; statuses "
                                         f"{sorted(set(answers))}")]


ATTACKS = {"stream_fairness": stream_fairness, "stream_beside_uploads": stream_beside_uploads, "slow_uploads": slow_uploads, "disconnects": disconnects,
           "sigterm": sigterm, "poison": poison, "abandoned": abandoned, "memory": memory,
           "idle_slots": idle_slots, "key_in_log": key_in_log}
