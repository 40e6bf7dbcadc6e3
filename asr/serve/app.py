"""The routes: create_app(cfg, rec, decoder) -> a FastAPI app that serves one model, loaded once.

    POST /v1/audio/transcriptions   OpenAI's transcription API (multipart), any format and length asr reads
    GET  /v1/models                 the served model, in OpenAI's list format
    GET  /v1/models/{id}            the served model (or whisper-1, its alias) as OpenAI gives one; else 404
    GET  /health                    {"status": "ok", "model", "in_flight", "queued_segments", "batches", ...}
    GET  /                          static/index.html, where there is one   (HEAD too, wherever GET: RFC 9110 9.1)
    WS   /v1/stream                 live recognition in Vosk's protocol (asr.serve.stream); plain GET: 426

Every error is OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with its HTTP status. A
response to a transcription says in `X-ASR-Batch-Size` the largest batch its audio went through the model in.
A transcription holds one of max_requests slots (max_peer_requests for one client address) from the end of its
upload to its answer, has max_request_s in all, and is cancelled as soon as its client goes away: its queued
segments leave the queue and its file is read no further (asr.serve.endings; one still at work as the server's
shutdown grace ends is answered 503 within it). A request's hotwords / keywords[] and phrase_list
steer the decoding of its own segments only (they travel with each segment through the batcher); stream=true
answers with server-sent events (events.py), holding its slot until the last event.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import shutil
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from asr.audio import SAMPLE_RATE
from asr.decoding import Decoder, Steering, SteeringError
from asr.recognizer import Recognizer
from asr.serve.batcher import Batcher
from asr.serve.config import DEFAULT_ALIASES, ServeConfig
from asr.serve.endings import disconnected, until_answered
from asr.serve.errors import CLOSE, APIError, error_body, status_kind
from asr.serve.events import stream_response
from asr.serve.formats import MEDIA_TYPES, render
from asr.serve.guard import Guard
from asr.serve.jobs import files_reading, model_batches, transcribe_file
from asr.serve.limits import AudioBudget, Full, Slots
from asr.serve.logs import GONE, ClientFrameErrors, LaterAccessLines, access_line, redact_logs
from asr.serve.rounds import StreamRounds
from asr.serve.stream import StreamEndpoint
from asr.serve.fields import Fields
from asr.serve.upload import read_upload, unread_body
from asr.serve.worker import ModelWorker

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("asr.serve")


class _State:
    def __init__(self, cfg: ServeConfig, rec: Recognizer, decoder: Decoder, stream: tuple | None):
        self.cfg, self.started, self.decoder = cfg, int(time.time()), decoder
        self.frame_s = rec.frontend.cfg.hop_length / rec.frontend.cfg.sample_rate  # s per feature frame: an audio token
        self.guard = Guard(cfg)  # the connections' limits (uvicorn's protocol, asr.serve.guard) and shutdown notice
        self.worker = ModelWorker()  # one thread runs the model for transcriptions and streams alike
        self.batcher = Batcher(model_batches(rec, decoder, cfg.batch_seconds), cfg.max_batch, cfg.max_wait_ms / 1000,
                               self.worker, size=lambda item: len(item[0].samples), budget=self.call_budget)
        self.requests = Slots("transcription requests", cfg.max_requests, cfg.max_peer_requests,
                              ("--max-requests", "--max-peer-requests"))
        self.budget = AudioBudget(int(cfg.max_queued_audio_s * SAMPLE_RATE))
        self.uploading = 0  # request bodies arriving
        self.stream_rounds = StreamRounds(cfg.max_batch, self.worker) if stream else None
        self.stream = StreamEndpoint(*(stream or (None, None)), self.stream_rounds, cfg, self.guard)

    def call_budget(self) -> float:
        """Padded samples per transcription model call: fewer while a live stream is open, whose every round waits
        for the call under way (the one model thread serves both)."""
        live = self.stream_rounds is not None and self.stream.slots.open > 0
        return min(self.cfg.batch_seconds, self.cfg.stream_batch_seconds if live else math.inf) * SAMPLE_RATE


def create_app(cfg: ServeConfig, rec: Recognizer, decoder: Decoder, stream: tuple | None = None) -> FastAPI:
    """The app; its model thread starts with the server and stops after the last request is answered.
    stream: (streaming recogniser, its decoder) for /v1/stream, or None (the endpoint then says it has none)."""
    state = _State(cfg, rec, decoder, stream)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        redact_logs()  # after uvicorn has set its loggers up
        frames, later = ClientFrameErrors(state.guard.notices.note), LaterAccessLines()
        logging.getLogger("uvicorn.error").addFilter(frames)
        logging.getLogger("uvicorn.access").addFilter(later)
        state.worker.start()
        yield
        state.worker.stop(timeout=1.0)  # uvicorn has let the requests finish (or cut them after the grace)
        logging.getLogger("uvicorn.error").removeFilter(frames)
        logging.getLogger("uvicorn.access").removeFilter(later)

    app = FastAPI(title="asr", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.guard = state.guard  # for the server (asr.serve.__main__) to build uvicorn's protocol with
    add_error_handlers(app, cfg)
    add_routes(app, state)
    return app


def peer_of(request: Request) -> str:
    return request.client.host if request.client else "-"


def request_steering(decoder: Decoder, fields: Fields) -> Steering | None:
    """The request's hotwords and grammar, checked: APIError 400 naming the field that is wrong."""
    try:
        return decoder.steer(fields.hotwords, fields.phrase_list)
    except SteeringError as e:
        raise APIError(400, str(e), "invalid_hotwords" if e.what == "hotwords" else "invalid_grammar", e.what) from e


def check_key(request: Request, cfg: ServeConfig) -> None:
    """APIError 401 unless the request carries `Authorization: Bearer <api key>` (when the server has one)."""
    if cfg.api_key is None:
        return
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "you did not provide an API key: send the header 'Authorization: Bearer KEY'",
                       "missing_api_key", kind="authentication_error")
    if not hmac.compare_digest(key.strip().encode(), cfg.api_key.encode()):
        raise APIError(401, "incorrect API key provided", "invalid_api_key", kind="authentication_error")


def add_routes(app: FastAPI, state: _State) -> None:
    cfg = state.cfg

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        check_key(request, cfg)
        deadline, peer = time.monotonic() + cfg.max_request_s, peer_of(request)
        folder, streaming = tempfile.mkdtemp(prefix="asr-serve-"), False
        try:
            state.requests.check(peer)  # a busy server says so before the upload, not after it
            state.uploading += 1
            try:
                fields = await read_upload(request, cfg, Path(folder), state.guard.stopping, deadline)
            finally:
                state.uploading -= 1
            steering = await asyncio.to_thread(request_steering, state.decoder, fields)  # 10,000 hotwords: 0.4 s
            if fields.stream:
                response = await stream_transcription(state, request, fields, steering, peer, folder, deadline)
                streaming = True  # the folder is the stream's now
                return response
            with state.requests.slot(peer):
                work = transcribe_file(str(fields.path), fields.name, state.batcher, cfg.max_seconds,
                                       cfg.pool_seconds, state.budget, steering)
                result, batch = await until_answered(work, deadline, cfg, state.guard.cut, request)
        finally:
            if not streaming:
                shutil.rmtree(folder, ignore_errors=True)
        body = render(result, fields.response_format, fields.words, fields.logprobs)
        headers = {"X-ASR-Batch-Size": str(batch)}
        if isinstance(body, dict):
            return JSONResponse(body, headers=headers)
        return Response(body, media_type=MEDIA_TYPES[fields.response_format], headers=headers)

    add_model_routes(app, state)

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health() -> dict:
        return health_of(state)

    state.stream.mount(app, "/v1/stream")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> Response:
        if not (STATIC / "index.html").is_file():
            raise APIError(404, "no page here: the API is under /v1", "not_found")
        return FileResponse(STATIC / "index.html", media_type="text/html")


def health_of(state: _State) -> dict:
    """GET /health: what the server holds now (requests, uploads, queued audio, connections, files being read,
    streams) and its model calls so far."""
    streaming = {"streams": state.stream.open}
    if state.stream_rounds is not None:  # the rounds' model calls, their windows and how many streams each batched
        streaming.update({f"stream_{k}": v for k, v in state.stream_rounds.stats.to_dict().items()})
    return {"status": "ok", "model": state.cfg.model_id, "in_flight": state.requests.open,
            "uploading": state.uploading, "queued_audio_s": round(state.budget.held / SAMPLE_RATE, 1),
            "connections": state.guard.open, "reading": files_reading(), "queued_segments": state.batcher.waiting(),
            **state.batcher.stats.to_dict(), **streaming}


def add_model_routes(app: FastAPI, state: _State) -> None:
    """GET /v1/models (the served model, listed) and /v1/models/{id} (it, or its alias whisper-1; else 404)."""
    cfg = state.cfg

    def model(name: str) -> dict:
        return {"id": name, "object": "model", "created": state.started, "owned_by": "asr"}

    @app.api_route("/v1/models", methods=["GET", "HEAD"])
    async def models(request: Request) -> dict:
        check_key(request, cfg)
        return {"object": "list", "data": [model(cfg.model_id)]}

    @app.api_route("/v1/models/{name:path}", methods=["GET", "HEAD"])
    async def one_model(request: Request, name: str) -> dict:
        check_key(request, cfg)
        if name not in (cfg.model_id, *DEFAULT_ALIASES):
            raise APIError(404, f"the model {name!r} does not exist here; this server has {cfg.model_id!r}",
                           "model_not_found", "model")
        return model(name)


async def stream_transcription(state: _State, request: Request, fields: Fields, steering: Steering | None, peer: str,
                               folder: str, deadline: float) -> Response:
    """stream=true: the upload's segments as server-sent events (asr.serve.events) as they are decoded. The request
    holds its slot and its folder until the last event; past the deadline the stream ends with a 504 error event."""
    cfg = state.cfg
    state.requests.take(peer)

    def cleanup() -> None:
        state.requests.give(peer)
        shutil.rmtree(folder, ignore_errors=True)

    async def job(emit):
        work = transcribe_file(str(fields.path), fields.name, state.batcher, cfg.max_seconds, cfg.pool_seconds,
                               state.budget, steering, on_segment=emit)
        return await until_answered(work, deadline, cfg, state.guard.cut)  # its client is watched by the events

    return await stream_response(job, fields.logprobs, state.frame_s, cleanup, disconnected(request), deadline)


def add_error_handlers(app: FastAPI, cfg: ServeConfig) -> None:
    """Every error in OpenAI's shape; one sent before the request's body was read closes the connection."""

    def answer(request: Request, body: dict, status: int, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=(headers or {}) | (CLOSE if unread_body(request) else {}))

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
        return answer(request, e.body(), e.status, headers | e.headers)

    @app.exception_handler(Full)
    async def full(request: Request, e: Full) -> JSONResponse:
        status, code = (429, "too_many_requests") if e.peer else (503, "server_busy")
        return answer(request, error_body(str(e), status_kind(status), code=code), status, {"Retry-After": "1"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = (f"unknown request URL: {request.method} {request.url.path}" if e.status_code == 404
                   else f"{request.method} {request.url.path}: {e.detail}")
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(e.status_code)
        return answer(request, error_body(message, status_kind(e.status_code), code=code), e.status_code,
                      dict(e.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        return answer(request, error_body(f"invalid request: {e.errors()}"), 400)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, e: ClientDisconnect) -> Response:
        """A client that went away before its answer: one access-log line with status 499, no traceback."""
        access_line(request.scope, GONE)
        return Response(status_code=GONE)

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception) -> JSONResponse:
        log.exception("error serving %s %s", request.method, request.url.path)
        return answer(request, error_body(f"the server failed on this request ({type(e).__name__}: {e})",
                                          "server_error"), 500)
