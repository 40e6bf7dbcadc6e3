"""GET /v1/stream (WebSocket): live recognition in Vosk's protocol, so Vosk clients work unchanged.

    client: {"config": {"sample_rate": 8000}}   (optional, before the audio; default 16000; any rate is resampled;
            also words, max_alternatives, phrase_list, hotwords: asr.serve.stream_config)
    client: binary messages of 16-bit little-endian mono PCM, any size
    server: one answer per message: {"partial": "..."}, or at an endpoint (a pause) the utterance's
            {"result": [{"word", "start", "end", "conf"}, ...], "text": "..."}
    client: {"reset": 1}                          (any time: the utterance so far ends now, the stream goes on)
    server: its result
    client: {"eof": 1}
    server: the last result, then it closes (1000, reason "end of stream: ...")

A malformed message gets {"error": "..."} and a close whose reason repeats it (cut to 123 bytes), with code 1007
(invalid data; 1009 for a message of more than MAX_MESSAGE_SECONDS of audio, 1008 for a wrong API key or a client
silent for ServeConfig.stream_idle_s, 1013 when the server holds max_streams already, 1011 for a failure of the
server's own); the other streams go on. Every stream's audio goes through one Batcher: the chunks of the streams
that are ready together run through the model in one batch. One answer per message: two utterances ended by one
message are merged into one result.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.audio import PcmDecoder
from asr.decoding import Decoder
from asr.recognizer import Recognizer
from asr.serve.batcher import Batcher
from asr.serve.stream_config import ConfigError, StreamSettings, read_config, vosk_answer
from asr.streaming import Transcriber, step_streams

MAX_MESSAGE_SECONDS = 5.0  # audio in one binary message at most: more would hold every stream's model step
INVALID, TOO_BIG, TRY_LATER, POLICY, FAILED = 1007, 1009, 1013, 1008, 1011  # WebSocket close codes (RFC 6455)
MAX_REASON_BYTES = 123  # UTF-8 bytes of reason text a close frame holds (RFC 6455: 125 bytes less the code)
END_OF_STREAM = "end of stream: eof received and answered"  # the reason of a normal close (1000)
log = logging.getLogger("asr.serve")


class StreamError(Exception):
    def __init__(self, message: str, code: int = INVALID):
        super().__init__(message)
        self.code = code


def run_steps(items: list[tuple[Transcriber, object, bool]]) -> list:
    """The Batcher's work: each (stream, samples, final) queues its audio, then every stream's ready windows run
    in one batch -> the events of each, or the exception that broke that stream. It never raises: the Batcher
    would run each item again alone, and a stream's state cannot take its audio twice."""
    results: list = [None] * len(items)
    ready = []
    for k, (stream, samples, final) in enumerate(items):
        try:
            stream.accept_audio(samples)
            if final:
                stream.finish_audio()
            ready.append(k)
        except Exception as e:  # this stream only
            results[k] = e
    try:
        log_probs = step_streams([items[k][0].model for k in ready])
    except Exception as e:  # the batch's model step: every stream in it is broken
        return [e if r is None else r for r in results]
    for k, lp in zip(ready, log_probs):
        try:
            results[k] = items[k][0].take(lp)
        except Exception as e:
            results[k] = e
    return results


class StreamEndpoint:
    """The /v1/stream handler of one app: a streaming recogniser, its decoder and the batcher they share."""

    def __init__(self, rec: Recognizer | None, decoder: Decoder | None, max_streams: int, batcher: Batcher | None,
                 api_key: str | None = None, idle_s: float = 120.0):
        self.rec, self.decoder, self.max_streams, self.batcher = rec, decoder, max_streams, batcher
        self.api_key = api_key  # when set: "Authorization: Bearer KEY", or ?api_key=KEY (browsers send no headers)
        self.idle_s = idle_s  # a stream that sends nothing for this long is closed (it holds one of max_streams)
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
            await self.converse(ws)
        except StreamError as e:
            await close_with_error(ws, e)
        except WebSocketDisconnect:
            pass  # the client went away: its stream is dropped, the others go on
        except Exception as e:  # the server's own failure: said to this client, logged, the others go on
            log.exception("error serving /v1/stream")
            await close_with_error(ws, StreamError(f"the server failed on this stream ({type(e).__name__}: {e})",
                                                   FAILED))
        finally:
            self.open -= 1

    async def step(self, stream: Transcriber, samples, final: bool) -> list:
        """The stream's events once its samples have been through the batcher (its exception raised here)."""
        events, _ = await self.batcher.submit((stream, samples, final))
        if isinstance(events, Exception):
            raise events
        return events

    async def converse(self, ws: WebSocket) -> None:
        """The protocol of one stream: config, audio messages answered one by one, eof answered by the final."""
        settings, stream, pcm = StreamSettings(), None, PcmDecoder()
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), self.idle_s)
            except asyncio.TimeoutError:
                raise StreamError(f"no message for {self.idle_s:g} s: the stream is closed", POLICY) from None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            value = {} if message.get("bytes") is not None else parse_text(message.get("text") or "")
            if "config" in value:
                if stream is not None:
                    raise StreamError("config must come before the audio")
                settings = configure(value["config"], self.decoder)
                pcm = PcmDecoder(settings.sample_rate)
                continue
            if message.get("bytes") is None and "eof" not in value and "reset" not in value:
                raise StreamError(f"unknown message {sorted(value)[:5]}: send config, eof, reset or binary audio")
            stream = stream or Transcriber(self.rec, self.decoder, steering=settings.steering,
                                           alternatives=settings.alternatives)
            if message.get("bytes") is not None:
                check_audio(message["bytes"], pcm.rate)
                events = await self.step(stream, pcm.feed(message["bytes"]), False)
            elif "eof" in value:
                events = await self.step(stream, pcm.finish(), True)
            else:  # reset: the utterance ends where the model has heard to; the stream goes on
                events = stream.reset()
            await ws.send_json(vosk_answer(events, stream.shown, settings))
            if "eof" in value:
                return await ws.close(1000, END_OF_STREAM)


def configure(config, decoder: Decoder) -> StreamSettings:
    """The config message's settings; StreamError (1007) naming what is wrong."""
    try:
        return read_config(config, decoder)
    except ConfigError as e:
        raise StreamError(str(e)) from None


def key_matches(ws: WebSocket, key: str) -> bool:
    scheme, _, given = ws.headers.get("authorization", "").partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ws.query_params.get("api_key", "")
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())


def check_audio(data: bytes, rate: int) -> None:
    """StreamError unless `data` is whole 16-bit samples and at most MAX_MESSAGE_SECONDS of them at `rate`."""
    if len(data) > 2 * rate * MAX_MESSAGE_SECONDS:
        raise StreamError(f"a binary message of {len(data)} bytes is {len(data) / 2 / rate:.1f} s of audio at "
                          f"{rate} Hz: send at most {MAX_MESSAGE_SECONDS:g} s a message", TOO_BIG)
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


def close_reason(message: str) -> str:
    """`message` as a close frame's reason: whole if it fits in MAX_REASON_BYTES of UTF-8, else cut at a character
    and ended with "..."."""
    if len(message.encode()) <= MAX_REASON_BYTES:
        return message
    return message.encode()[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


async def close_with_error(ws: WebSocket, e: StreamError) -> None:
    """{"error": message}, then a close with the error's code and the message (cut to fit) as its reason."""
    try:
        await ws.send_json({"error": str(e)})
        await ws.close(e.code, close_reason(str(e)))
    except (WebSocketDisconnect, RuntimeError):  # the client is gone already
        pass
