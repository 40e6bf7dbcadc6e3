"""bench/serve_faults.py's attacks on WS /v1/stream (see _serve_attacks.py for the calling convention), and the
speech they send: the manifest's clips joined with pauses."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from pathlib import Path

import numpy as np

PAUSE_S = 0.5  # silence between two clips


def speech(manifest: str, seconds: float) -> np.ndarray:
    """(N,) float32 at 16 kHz: the manifest's clips with PAUSE_S between, repeated to `seconds`."""
    from asr.audio import load_audio
    from asr.data import read_manifest

    pause = np.zeros(int(PAUSE_S * 16000), np.float32)
    once = np.concatenate([x for u in read_manifest(manifest) for x in (load_audio(u.audio), pause)])
    return np.tile(once, int(seconds * 16000 // len(once)) + 1)[: int(seconds * 16000)]


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()


async def realtime(url: str, audio: bytes, messages: int = 100) -> list[float]:
    """Seconds from each 0.1 s message of a real-time stream to its answer (sent at real-time pace)."""
    import websockets

    waits = []
    async with websockets.connect(url) as ws:
        for k in range(messages):
            start = time.perf_counter()
            await ws.send(audio[k * 3200 : (k + 1) * 3200])
            await asyncio.wait_for(ws.recv(), 60)
            waits.append(time.perf_counter() - start)
            await asyncio.sleep(max(0.0, 0.1 - waits[-1]))
        await ws.send('{"eof": 1}')
    return waits


async def flood(url: str, audio: bytes, until: asyncio.Event) -> int:
    """A stream that sends 5 s messages back to back (each once the last is answered) until told to stop."""
    import websockets

    sent = 0
    async with websockets.connect(url) as ws:
        while not until.is_set() and sent < 1000:
            await ws.send(audio[(sent % 4) * 160000 : (sent % 4 + 1) * 160000])
            await asyncio.wait_for(ws.recv(), 120)
            sent += 1
    return sent


async def beside_floods(url: str, audio: bytes) -> tuple[list[float], int]:
    stop = asyncio.Event()
    floods = [asyncio.ensure_future(flood(url, audio, stop)) for _ in range(2)]
    await asyncio.sleep(2.0)
    waits = await realtime(url, audio)
    stop.set()
    return waits, sum([await f for f in floods])


def stream_fairness(args, folder: Path, start) -> list:
    audio = pcm(speech(args.manifest, 30.0))
    with start("--no-access-log") as (_, url, _):
        ws = url.replace("http://", "ws://") + "/v1/stream"
        alone = asyncio.run(realtime(ws, audio))
        beside, flooded = asyncio.run(beside_floods(ws, audio))
    p95 = [1000 * float(np.percentile(w, 95)) for w in (alone, beside)]
    return [("stream_p95_alone_ms", p95[0], "a real-time stream, 0.1 s messages"),
            ("stream_p95_beside_2_floods_ms", p95[1], f"2 streams sent {flooded} 5 s messages meanwhile"),
            ("stream_p95_ratio", p95[1] / p95[0], "target <= 2")]


def uploads(url: str, wav: bytes, clients: int, until: threading.Event) -> tuple[list[tuple], list]:
    """`clients` threads (started, returned) each posting `wav` again and again until told to stop, and the list
    they fill with (sent, answered) monotonic times of each answer."""
    import httpx

    took: list[tuple[float, float]] = []

    def client() -> None:
        while not until.is_set() and len(took) < 1000:
            start = time.monotonic()
            r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("long.wav", wav)},
                           data={"model": "asr-an4"}, timeout=600)
            if r.status_code == 200:
                took.append((start, time.monotonic()))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    return took, threads


def stream_beside_uploads(args, folder: Path, start) -> list:
    """A real-time stream's answers alone and beside 4 clients uploading 60 s files back to back (one model thread
    serves both: each stream round waits for at most one transcription model call)."""
    import io

    from asr.audio import write_wav

    audio = speech(args.manifest, 60.0)
    wav = io.BytesIO()
    write_wav(wav, audio)
    with start("--no-access-log") as (_, url, _):
        ws = url.replace("http://", "ws://") + "/v1/stream"
        alone = asyncio.run(realtime(ws, pcm(audio)))
        stop = threading.Event()
        took, threads = uploads(url, wav.getvalue(), 4, stop)
        time.sleep(3.0)
        began = time.monotonic()
        beside = asyncio.run(realtime(ws, pcm(audio)))
        ended = time.monotonic()
        time.sleep(ended - began)  # as long again without the stream
        stop.set()
        for t in threads:
            t.join(600)
    p95 = [1000 * float(np.percentile(w, 95)) for w in (alone, beside)]
    rates = [len(audio) / 16000 * sum(a <= end <= b for _, end in took) / (b - a)  # audio s answered per s
             for a, b in ((began, ended), (ended, 2 * ended - began))]
    return [("stream_p95_alone_ms", p95[0], "a real-time stream, 0.1 s messages"),
            ("stream_p95_beside_uploads_ms", p95[1], f"4 clients uploading 60 s files ({ended - began:.0f} s)"),
            ("stream_p95_ratio_uploads", p95[1] / p95[0], "no target (streams and uploads share one model thread)"),
            ("uploads_audio_s_per_s_with_stream", rates[0], "the uploads' throughput while the stream is open"),
            ("uploads_audio_s_per_s_without", rates[1], "the same just after, no stream")]


async def empty_messages(url: str, source: str, every_s: float, rounds: int) -> int | None:
    """A stream that sends an empty message every `every_s`; its close code (None: still open after `rounds`)."""
    import websockets

    async with websockets.connect(url, local_addr=(source, 0)) as ws:
        for _ in range(rounds):
            try:
                await ws.send(b"")
                await asyncio.wait_for(ws.recv(), 30)
            except websockets.ConnectionClosed:
                return ws.close_code
            await asyncio.sleep(every_s)
        return None


def idle_slots(args, folder: Path, start) -> list:
    with start("--no-access-log", "--stream-idle-s", "5") as (_, url, _):
        ws = url.replace("http://", "ws://") + "/v1/stream"

        async def all_of_them():
            return await asyncio.gather(*(empty_messages(ws, f"127.0.5.{k % 8 + 1}", 2.0, 4) for k in range(64)))

        codes = asyncio.run(all_of_them())  # 4 x 2 s: 8 s
    held = sum(code is None for code in codes)
    closes = sorted(set(codes), key=str)
    return [("idle_slots_held", held, f"of 64 after 8 s with --stream-idle-s 5, target 0; close codes {closes}")]


def key_in_log(args, folder: Path, start) -> list:
    import websockets

    key = "bench-secret-key"

    async def both(ws: str) -> None:
        protocols = ["asr", "asr.bearer." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")]
        async with websockets.connect(ws, subprotocols=protocols) as c:
            await c.send('{"eof": 1}')
            json.loads(await asyncio.wait_for(c.recv(), 30))
        async with websockets.connect(f"{ws}?api_key={key}") as c:
            await asyncio.wait_for(c.recv(), 30)

    with start("--api-key", key) as (_, url, log):
        asyncio.run(both(url.replace("http://", "ws://") + "/v1/stream"))
        time.sleep(0.5)
        text = log.read_text()
    return [("key_in_log", text.count(key), "target 0 (access log on)")]
