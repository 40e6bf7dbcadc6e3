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
    server: (when it stops: SIGTERM) the utterance's result, then it closes (1012, service restart)

With an API key, a stream sends it as `Authorization: Bearer KEY` or, from a browser (which cannot set headers on
a WebSocket), as the subprotocol `asr.bearer.<KEY in base64url>` beside `asr` (the one the server picks): never
in the URL, which access logs print (a key there is refused).

A malformed message gets {"error": "..."} and a close whose reason repeats it (cut to 123 bytes), with code 1007
(invalid data; 1009 for a message of more than MAX_MESSAGE_SECONDS of audio; 1008 for a wrong API key, a client
that sends no audio for stream_idle_s or a stream past max_stream_s; 1013 when the server holds max_streams
already, or the client max_peer_streams; 1011 for a failure of the server's own); the other streams go on. Every
stream's audio goes through the model in rounds shared by all streams (asr.serve.rounds: one window of each a
round, in one batch; each stream answered as soon as its own message is done). One answer per message: two
utterances ended by one message are merged into one result.

When the server stops, a stream has the shutdown grace: one with an utterance in progress (a partial with words)
goes on until that utterance ends (its result), or, as the grace is about to end (asr.serve.guard's cut), is
ended there, as by eof (its result, all it has heard); any other ends at once, with the result of what it has
heard since its last one (empty where nothing). Then the server closes it with 1012: connect again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time

from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.audio import PcmDecoder
from asr.decoding import Decoder
from asr.manifest import json_object
from asr.recognizer import Recognizer
from asr.serve.config import ServeConfig
from asr.serve.errors import APIError
from asr.serve.guard import Guard
from asr.serve.limits import Full, Slots
from asr.serve.rounds import StreamRounds
from asr.serve.stream_config import ConfigError, StreamSettings, read_config, vosk_answer
from asr.streaming import Transcriber

MAX_MESSAGE_SECONDS = 5.0  # audio in one binary message at most: more would hold every stream's model step
SUBPROTOCOL = "asr"  # offered beside the key's subprotocol; the server accepts with this one
KEY_PREFIX = "asr.bearer."  # subprotocol that carries the API key, base64url-encoded (browsers' way to send it)
INVALID, TOO_BIG, TRY_LATER, POLICY, FAILED, RESTART = 1007, 1009, 1013, 1008, 1011, 1012  # close codes (RFC 6455)
MAX_REASON_BYTES = 123  # UTF-8 bytes of reason text a close frame holds (RFC 6455: 125 bytes less the code)
END_OF_STREAM = "end of stream: eof received and answered"  # the reason of a normal close (1000)
STOPPING = "service restart: the server is stopping; connect again"  # the reason of a close at shutdown (1012)
log = logging.getLogger("asr.serve")


class StreamError(Exception):
    def __init__(self, message: str, code: int = INVALID):
        super().__init__(message)
        self.code = code


class StreamEndpoint:
    """The /v1/stream handler of one app: a streaming recogniser, its decoder and the rounds its streams share."""

    def __init__(self, rec: Recognizer | None, decoder: Decoder | None, rounds: StreamRounds | None, cfg: ServeConfig,
                 guard: Guard):
        self.rec, self.decoder, self.rounds, self.cfg = rec, decoder, rounds, cfg
        self.guard = guard  # its stopping and cut: when streams end at shutdown
        self.api_key = cfg.api_key  # when set: "Authorization: Bearer KEY", or the subprotocol KEY_PREFIX + base64url
        self.idle_s = cfg.stream_idle_s  # a stream that sends no audio this long is closed (it holds a slot)
        self.slots = Slots("streams", cfg.max_streams, cfg.max_peer_streams, ("--max-streams", "--max-peer-streams"))

    @property
    def open(self) -> int:
        """Streams being served."""
        return self.slots.open

    def mount(self, app, path: str) -> None:
        """Serve streams at `path` of the FastAPI `app`; a plain HTTP GET or HEAD there (no Upgrade) gets a 426."""
        app.add_api_websocket_route(path, self)
        app.add_api_route(path, self.not_upgraded, methods=["GET", "HEAD"], include_in_schema=False)

    async def not_upgraded(self, request: Request) -> None:
        raise APIError(426, f"{request.url.path} is a WebSocket endpoint (Vosk's protocol): connect with ws://, "
                            "sending 'Upgrade: websocket'", "upgrade_required", headers={"Upgrade": "websocket"})

    async def __call__(self, ws: WebSocket) -> None:
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", ()) else None)
        if self.api_key is not None and (why := key_problem(ws, self.api_key)):
            return await close_with_error(ws, StreamError(why, POLICY))
        if self.rec is None:
            return await close_with_error(ws, StreamError("this server has no streaming model (python -m "
                                                          "asr.serve --stream-model PATH)", POLICY))
        try:
            with self.slots.slot(ws.client.host if ws.client else "-"):
                await self.converse(ws)
        except Full as e:
            await close_with_error(ws, StreamError(str(e), TRY_LATER))
        except StreamError as e:
            await close_with_error(ws, e)
        except WebSocketDisconnect:
            pass  # the client went away: its stream is dropped, the others go on
        except Exception as e:  # the server's own failure: said to this client, logged, the others go on
            log.exception("error serving /v1/stream")
            await close_with_error(ws, StreamError(f"the server failed on this stream ({type(e).__name__}: {e})",
                                                   FAILED))

    async def receive(self, ws: WebSocket, last_audio: float, ends_at: float, stop: asyncio.Event) -> dict | None:
        """The stream's next message, or None once `stop` is set (the server is stopping); StreamError (1008) when
        no audio has come for idle_s or the stream has lasted max_stream_s. Only audio counts: other messages (an
        empty one every minute) do not keep a stream."""
        idle_at = last_audio + self.idle_s
        left = min(idle_at, ends_at) - time.monotonic()
        if left > 0 and not stop.is_set():
            message, stopped = asyncio.ensure_future(ws.receive()), asyncio.ensure_future(stop.wait())
            await asyncio.wait({message, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if message.done():  # (also when it came with the stop: it is answered first)
                return message.result()
            message.cancel()
        if stop.is_set():
            return None
        if idle_at <= ends_at:
            raise StreamError(f"no audio for {self.idle_s:g} s: the stream is closed", POLICY)
        raise StreamError(f"the stream reached this server's limit of {self.cfg.max_stream_s:g} s "
                          "(--max-stream-s): open a new one", POLICY)

    async def step(self, stream: Transcriber, samples, final: bool) -> list:
        """The stream's events once its samples have been through the model (its exception raised here)."""
        return await self.rounds.submit(stream, samples, final)

    async def converse(self, ws: WebSocket) -> None:
        """The protocol of one stream: config, audio messages answered one by one, eof answered by the final."""
        settings, stream, pcm = StreamSettings(), None, PcmDecoder()
        last_audio = time.monotonic()
        ends_at = last_audio + self.cfg.max_stream_s
        while True:
            speaking = stream is not None and bool(stream.shown)  # at shutdown, its utterance may end by the cut
            message = await self.receive(ws, last_audio, ends_at, self.guard.cut if speaking else self.guard.stopping)
            if message is None:
                return await self.stopped(ws, stream, pcm, settings)
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            value = {} if message.get("bytes") is not None else parse_text(message.get("text") or "")
            if "config" in value:
                if stream is not None:
                    raise StreamError("config must come before the audio")
                settings = await asyncio.to_thread(configure, value["config"], self.decoder)  # hotwords: up to 0.4 s
                pcm = PcmDecoder(settings.sample_rate)
                if "eof" not in value and "reset" not in value:
                    continue  # (a config with eof in the same message is answered as the eof)
            if message.get("bytes") is None and "eof" not in value and "reset" not in value:
                raise StreamError(f"unknown message {sorted(value)[:5]}: send config, eof, reset or binary audio")
            stream = stream or Transcriber(self.rec, self.decoder, steering=settings.steering,
                                           alternatives=settings.alternatives)
            if message.get("bytes") is not None:
                check_audio(message["bytes"], pcm.rate)
                events = await self.step(stream, pcm.feed(message["bytes"]), False)
                last_audio = time.monotonic() if message["bytes"] else last_audio  # the server's time is not idle
            elif "eof" in value:
                events = await self.step(stream, pcm.finish(), True)
            else:  # reset: the utterance ends where the model has heard to; the stream goes on
                events = stream.reset()
            answer = vosk_answer(events, stream.shown, settings)
            await ws.send_json(answer)
            if "eof" in value:
                return await ws.close(1000, END_OF_STREAM)
            if self.guard.stopping.is_set() and "partial" not in answer:  # its utterance ended at shutdown
                return await ws.close(RESTART, STOPPING)

    async def stopped(self, ws: WebSocket, stream: Transcriber | None, pcm: PcmDecoder,
                      settings: StreamSettings) -> None:
        """The server is stopping: the stream's utterance ends now, as by eof (its result: what the stream has
        heard since its last one), then the stream is closed with 1012."""
        if stream is not None:
            events = await self.step(stream, pcm.finish(), True)
            await ws.send_json(vosk_answer(events, stream.shown, settings))
        await ws.close(RESTART, STOPPING)


def configure(config, decoder: Decoder) -> StreamSettings:
    """The config message's settings; StreamError (1007) naming what is wrong."""
    try:
        return read_config(config, decoder)
    except ConfigError as e:
        raise StreamError(str(e)) from None


def key_problem(ws: WebSocket, key: str) -> str | None:
    """Why the stream's API key is not accepted (None: it is): missing, wrong, or sent in the URL."""
    if "api_key" in ws.query_params:
        return ("an API key in the URL is refused (access logs print URLs): send 'Authorization: Bearer KEY' or the "
                f"subprotocol {KEY_PREFIX}<KEY in base64url>")
    scheme, _, given = ws.headers.get("authorization", "").partition(" ")
    given = given.strip() if scheme.lower() == "bearer" else ""
    for offered in ws.scope.get("subprotocols", ()):
        if offered.startswith(KEY_PREFIX) and not given:
            encoded = offered[len(KEY_PREFIX) :]
            try:
                given = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return f"the subprotocol {KEY_PREFIX}... must carry the key in base64url"
    if not given:
        return f"a missing API key: send 'Authorization: Bearer KEY' or the subprotocol {KEY_PREFIX}<KEY in base64url>"
    return None if hmac.compare_digest(given.encode(), key.encode()) else "an incorrect API key"


def check_audio(data: bytes, rate: int) -> None:
    """StreamError unless `data` is whole 16-bit samples and at most MAX_MESSAGE_SECONDS of them at `rate`."""
    if len(data) > 2 * rate * MAX_MESSAGE_SECONDS:
        raise StreamError(f"a binary message of {len(data)} bytes is {len(data) / 2 / rate:.1f} s of audio at "
                          f"{rate} Hz: send at most {MAX_MESSAGE_SECONDS:g} s a message", TOO_BIG)
    if len(data) % 2:
        raise StreamError(f"a binary message of {len(data)} bytes: 16-bit PCM comes in whole samples (even counts)")


def parse_text(text: str) -> dict:
    try:
        return json_object(text, "a text message")
    except ValueError as e:
        raise StreamError(str(e)) from None


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
