"""WS /v1/stream's limits against a real server (issue 20, short and bounded): streams at once in all and per
client address, and the longest a stream may last."""

from __future__ import annotations

import asyncio
import json

import pytest

from test_serve import running_server  # tests/ is on sys.path under pytest

pytest.importorskip("fastapi")
websockets = pytest.importorskip("websockets")


async def opened(url: str, source: str):
    """A stream from address `source`, and what the server said at once (an error, or None within 0.5 s)."""
    ws = await websockets.connect(url, local_addr=(source, 0))
    try:
        return ws, json.loads(await asyncio.wait_for(ws.recv(), 0.5))
    except asyncio.TimeoutError:
        return ws, None
    except websockets.ConnectionClosed:
        return ws, None


def test_streams_past_the_limits_are_closed_and_a_long_one_is_ended(stream_model, tmp_path):
    with running_server(tmp_path / "server.log", "--stream-model", str(stream_model), "--max-streams", "3",
                        "--max-peer-streams", "2", "--max-stream-s", "2", "--no-access-log") as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def main():
            a, b = [await opened(ws_url, "127.0.0.1") for _ in range(2)]
            peer = await opened(ws_url, "127.0.0.1")
            other = await opened(ws_url, "127.0.4.1")
            server = await opened(ws_url, "127.0.4.2")
            said = []
            for _ in range(40):  # 40 x 0.1 s of audio at most: the stream is ended after 2 s
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
    assert 2 <= len(said) < 40, said
    assert codes == [1013, 1013, 1008]
