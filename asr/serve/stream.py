"""GET /v1/stream (WebSocket): live recognition in Vosk's protocol, so Vosk clients work unchanged.

    client: {"config": {"sample_rate": 8000}}   (optional, before the audio; default 16000; any rate is resampled)
    client: binary messages of 16-bit little-endian mono PCM, any size
    server: one answer per message: {"partial": "..."}, or at an endpoint (a pause) the utterance's
            {"result": [{"word", "start", "end", "conf"}, ...], "text": "..."}
    client: {"eof": 1}
    server: the last result, then it closes (1000)

A malformed message gets {"error": "..."} and a close with code 1007 (invalid data; 1009 for a message too big,
1013 when the server holds max_streams already); the other streams go on. Every stream's audio goes through
one Batcher: the chunks of the streams that are ready together run through the model in one batch.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.decoding import Decoder
from asr.recognizer import Recognizer
from asr.serve.batcher import Batcher
from asr.streaming import Final, Transcriber, step_streams
from asr.streaming.pcm import MAX_RATE, PcmDecoder

MAX_MESSAGE_BYTES = 1 << 20  # one binary message at most (1 MiB: 33 s of 16 kHz audio)
INVALID, TOO_BIG, TRY_LATER, POLICY = 1007, 1009, 1013, 1008  # WebSocket close codes (RFC 6455)
log = logging.getLogger("asr.serve")


class StreamError(Exception):
    def __init__(self, message: str, code: int = INVALID):
        super().__init__(message)
        self.code = code


def run_steps(items: list[tuple[Transcriber, object, bool]]) -> list[list]:
    """The Batcher's work: each (stream, samples, final) queues its audio, then every stream's ready windows run
    in one batch -> the events of each."""
    for stream, samples, final in items:
        stream.accept_audio(samples)
        if final:
            stream.finish_audio()
    log_probs = step_streams([stream.model for stream, _, _ in items])
    return [stream.take(lp) for (stream, _, _), lp in zip(items, log_probs)]


def answers(events: list, stream: Transcriber) -> list[dict]:
    """Vosk's answer to one message: its results, else the partial hypothesis (unchanged ones too)."""
    finals = [e.to_dict() for e in events if isinstance(e, Final)]
    return finals or [{"partial": stream.shown}]


def sample_rate(config) -> int:
    """The sample rate of a {"config": {...}} message's value; StreamError where it is not 1..MAX_RATE Hz."""
    if not isinstance(config, dict):
        raise StreamError(f"config must be an object, got {json.dumps(config)[:80]}")
    rate = config.get("sample_rate", 16000)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= MAX_RATE or rate != int(rate):
        raise StreamError(f"config.sample_rate must be a whole number of Hz in 1..{MAX_RATE}, got {json.dumps(rate)}")
    return int(rate)


class StreamEndpoint:
    """The /v1/stream handler of one app: a streaming recogniser, its decoder and the batcher they share."""

    def __init__(self, rec: Recognizer | None, decoder: Decoder | None, max_streams: int, batcher: Batcher | None,
                 api_key: str | None = None):
        self.rec, self.decoder, self.max_streams, self.batcher = rec, decoder, max_streams, batcher
        self.api_key = api_key  # when set: "Authorization: Bearer KEY", or ?api_key=KEY (browsers send no headers)
        self.open = 0  # streams being served

    async def __call__(self, ws: WebSocket) -> None:
        await ws.accept()
        if self.api_key is not None and not key_matches(ws, self.api_key):
            return await close_with_error(ws, StreamError("a missing or incorrect API key: send 'Authorization: "
                                                          "Bearer KEY' or ?api_key=KEY", POLICY))
        if self.rec is None:
            return await close_with_error(ws, StreamError("this server has no streaming model (python -m "
                                                          "asr.serve --stream-model PATH)", POLICY))
        if self.open >= self.max_streams:
            return await close_with_error(ws, StreamError(f"the server holds {self.max_streams} streams already; "
                                                          "try again later", TRY_LATER))
        self.open += 1
        try:
            await self.converse(ws, Transcriber(self.rec, self.decoder))
        except StreamError as e:
            await close_with_error(ws, e)
        except WebSocketDisconnect:
            pass  # the client went away: its stream is dropped, the others go on
        finally:
            self.open -= 1

    async def converse(self, ws: WebSocket, stream: Transcriber) -> None:
        pcm, heard = None, False
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                data = message["bytes"]
                check_audio(data)
                pcm, heard = pcm or PcmDecoder(), True
                events, _ = await self.batcher.submit((stream, pcm.feed(data), False))
                for answer in answers(events, stream):
                    await ws.send_json(answer)
                continue
            value = parse_text(message.get("text") or "")
            if "config" in value:
                if heard:
                    raise StreamError("config must come before the audio")
                pcm = PcmDecoder(sample_rate(value["config"]))
            elif "eof" in value:
                events, _ = await self.batcher.submit((stream, (pcm or PcmDecoder()).finish(), True))
                for event in events:
                    if isinstance(event, Final):
                        await ws.send_json(event.to_dict())
                return await ws.close(1000)
            else:
                raise StreamError(f"unknown message {sorted(value)[:5]}: send config, eof or binary audio")


def key_matches(ws: WebSocket, key: str) -> bool:
    scheme, _, given = ws.headers.get("authorization", "").partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ws.query_params.get("api_key", "")
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())


def check_audio(data: bytes) -> None:
    if len(data) > MAX_MESSAGE_BYTES:
        raise StreamError(f"a binary message of {len(data)} bytes: at most {MAX_MESSAGE_BYTES}", TOO_BIG)
    if len(data) % 2:
        raise StreamError(f"a binary message of {len(data)} bytes: 16-bit PCM comes in whole samples (even counts)")


def parse_text(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise StreamError(f"a text message that is not JSON ({e.msg} at character {e.pos}): {text[:60]!r}") from None
    if not isinstance(value, dict):
        raise StreamError(f"a text message must be a JSON object, got {text[:60]!r}")
    return value


async def close_with_error(ws: WebSocket, e: StreamError) -> None:
    try:
        await ws.send_json({"error": str(e)})
        await ws.close(e.code)
    except (WebSocketDisconnect, RuntimeError):  # the client is gone already
        pass
