"""WS /v1/stream's limits and fairness against a real server (issue 20, short and bounded): streams at once in
all and per client address, the longest a stream may last, and a real-time stream beside streams that flood."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from asr.audio import load_audio

from test_serve import running_server  # tests/ is on sys.path under pytest
from test_serve_stream import EOF_MESSAGE, pcm

pytest.importorskip("fastapi")
websockets = pytest.importorskip("websockets")


async def opened(url: str, source: str, wait_s: float = 0.5):
    """A stream from address `source`, and what the server said at once (an error, or None within wait_s)."""
    ws = await websockets.connect(url, local_addr=(source, 0))
    try:
        return ws, json.loads(await asyncio.wait_for(ws.recv(), wait_s))
    except asyncio.TimeoutError:
        return ws, None
    except websockets.ConnectionClosed:
        return ws, None


def test_streams_past_the_limits_are_closed_and_a_long_one_is_ended(stream_model, tmp_path):
    with running_server(tmp_path / "server.log", "--stream-model", str(stream_model), "--max-streams", "3",
                        "--max-peer-streams", "2", "--max-stream-s", "8", "--no-access-log") as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def main():
            a, b = [await opened(ws_url, "127.0.0.1") for _ in range(2)]
            peer = await opened(ws_url, "127.0.0.1", wait_s=10)  # refused: its error comes at once
            other = await opened(ws_url, "127.0.4.1")
            server = await opened(ws_url, "127.0.4.2", wait_s=10)
            said = []
            for _ in range(120):  # 120 x 0.1 s of audio, 12 s at least: the stream is ended 8 s after it began
                try:
                    await a[0].send(bytes(3200))
                except websockets.ConnectionClosed:
                    pass
                try:
                    said.append(json.loads(await asyncio.wait_for(a[0].recv(), 10)))
                except websockets.ConnectionClosed:
                    break
                await asyncio.sleep(0.1)
            codes = [peer[0].close_code, server[0].close_code, a[0].close_code]
            for ws, _ in (a, b, peer, other, server):
                await ws.close()
            return peer[1], other[1], server[1], said, codes

        peer, other, server, said, codes = asyncio.run(asyncio.wait_for(main(), 60))
    assert "--max-peer-streams 2" in peer["error"] and other is None and "--max-streams 3" in server["error"]
    assert "--max-stream-s" in said[-1].get("error", ""), said
    assert 2 <= len(said) < 120, said
    assert codes == [1013, 1013, 1008]


async def realtime(url: str, audio: bytes, messages: int = 30) -> list[float]:
    """Seconds from each 0.1 s message of a real-time stream to its answer (messages sent at real-time pace)."""
    waits = []
    async with websockets.connect(url) as ws:
        for k in range(messages):
            start = time.perf_counter()
            await ws.send(audio[k * 3200 : (k + 1) * 3200])
            json.loads(await asyncio.wait_for(ws.recv(), 30))
            waits.append(time.perf_counter() - start)
            await asyncio.sleep(max(0.0, 0.1 - waits[-1]))
        await ws.send(EOF_MESSAGE)
    return waits


async def flood(url: str, audio: bytes, until: asyncio.Event) -> list[float]:
    """Seconds to each answer of a stream that sends 5 s messages back to back, until told to stop."""
    waits = []
    async with websockets.connect(url) as ws:
        while not until.is_set() and len(waits) < 100:
            start = time.perf_counter()
            await ws.send(audio[:160000])
            json.loads(await asyncio.wait_for(ws.recv(), 60))
            waits.append(time.perf_counter() - start)
    return waits


def test_a_real_time_stream_beside_two_floods_waits_for_its_own_windows(stream_model, clips, tmp_path):
    """Each flooding message is 15 windows, taken one a round: the real-time stream's answers come after its own
    window, not after theirs (median far below a flood message's), and near its time alone."""
    audio = pcm(np.concatenate([load_audio(c.audio) for c in clips] * 2))  # 25 s
    with running_server(tmp_path / "server.log", "--stream-model", str(stream_model), "--no-access-log") as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def beside_floods():
            stop = asyncio.Event()
            floods = [asyncio.ensure_future(flood(ws_url, audio, stop)) for _ in range(2)]
            await asyncio.sleep(1.0)
            waits = await realtime(ws_url, audio)
            stop.set()
            return waits, [w for f in floods for w in await f]

        alone = asyncio.run(asyncio.wait_for(realtime(ws_url, audio), 120))
        waits, flooded = asyncio.run(asyncio.wait_for(beside_floods(), 300))
    p95 = [float(np.percentile(w, 95)) for w in (alone, waits)]
    assert np.median(waits) < np.median(flooded) / 4, (np.median(waits), np.median(flooded))
    assert p95[1] <= 3 * p95[0] + 0.3, p95
