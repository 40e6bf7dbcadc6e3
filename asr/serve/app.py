"""The routes: create_app(cfg, rec, decoder) -> a FastAPI app that serves one model, loaded once.

    POST /v1/audio/transcriptions   OpenAI's transcription API (multipart), any format and length asr reads
    GET  /v1/models                 the served model, in OpenAI's list format
    GET  /v1/models/{id}            the served model (or whisper-1, its alias) as OpenAI gives one; else 404
    GET  /health                    {"status": "ok", "model", "in_flight", "batches", "segments", ...}
    GET  /                          static/index.html, where there is one
    WS   /v1/stream                 live recognition in Vosk's protocol (asr.serve.stream), with the streaming model

Every error is OpenAI's shape, {"error": {"message", "type", "param", "code"}}, with its HTTP status. A
response to a transcription says in `X-ASR-Batch-Size` the largest batch its audio went through the model in.
A request's hotwords / keywords[] and phrase_list steer the decoding of its own segments only (they travel with
each segment through the batcher); stream=true answers with server-sent events (events.py).
"""

from __future__ import annotations

import hmac
import logging
import shutil
import tempfile
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from asr.decoding import Decoder, Steering, SteeringError
from asr.longform import decode_alternatives
from asr.recognizer import Recognizer
from asr.serve.batcher import Batcher
from asr.serve.config import DEFAULT_ALIASES, ServeConfig
from asr.serve.errors import APIError, error_body, status_kind
from asr.serve.formats import MEDIA_TYPES, render
from asr.serve.jobs import transcribe_file
from asr.serve.stream import StreamEndpoint, run_steps
from asr.serve.events import stream_response
from asr.serve.upload import Fields, read_fields, read_form, spool, upload_name

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("asr.serve")
access_log = logging.getLogger("uvicorn.access")  # uvicorn's access log: off with --no-access-log
GONE = 499  # nginx's status for a client that closed the connection before its answer (never sent)


def decode_steered(rec: Recognizer, decoder: Decoder, batch_seconds: float, items: list) -> list:
    """The batcher's work: (segment, its request's steering) pairs -> each segment's alternatives (the best)."""
    return decode_alternatives(rec, [seg for seg, _ in items], decoder, batch_seconds,
                               steering=[steering for _, steering in items])


def request_steering(decoder: Decoder, fields: Fields) -> Steering | None:
    """The request's hotwords and grammar, checked: APIError 400 naming the field that is wrong."""
    try:
        return decoder.steer(fields.hotwords, fields.phrase_list)
    except SteeringError as e:
        raise APIError(400, str(e), "invalid_hotwords" if e.what == "hotwords" else "invalid_grammar", e.what) from e


class _State:
    def __init__(self, cfg: ServeConfig, rec: Recognizer, decoder: Decoder, stream: tuple | None):
        self.cfg, self.started, self.decoder = cfg, int(time.time()), decoder
        self.frame_s = rec.frontend.cfg.hop_length / rec.frontend.cfg.sample_rate  # s per feature frame: an audio token
        self.batcher = Batcher(lambda items: decode_steered(rec, decoder, cfg.batch_seconds, items),
                               cfg.max_batch, cfg.max_wait_ms / 1000)
        self.in_flight = 0  # transcription requests being served
        self.stream_batcher = Batcher(run_steps, cfg.max_batch, cfg.max_wait_ms / 1000) if stream else None
        self.stream = StreamEndpoint(*(stream or (None, None)), cfg.max_streams, self.stream_batcher, cfg.api_key,
                                     cfg.stream_idle_s)


def create_app(cfg: ServeConfig, rec: Recognizer, decoder: Decoder, stream: tuple | None = None) -> FastAPI:
    """The app; its batching threads start with the server and stop after the last request is answered.
    stream: (streaming recogniser, its decoder) for /v1/stream, or None (the endpoint then says it has none)."""
    state = _State(cfg, rec, decoder, stream)
    batchers = [b for b in (state.batcher, state.stream_batcher) if b is not None]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for batcher in batchers:
            batcher.start()
        yield
        for batcher in batchers:
            batcher.stop()  # uvicorn has let every request in flight finish

    app = FastAPI(title="asr", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handlers(app, cfg)
    add_routes(app, state)
    return app


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
        state.in_flight += 1
        try:
            fields = read_fields(await read_form(request, cfg), cfg)
            steering = request_steering(state.decoder, fields)
            if fields.stream:
                return await stream_transcription(state, fields, steering)
            name = upload_name(fields.upload)
            with tempfile.TemporaryDirectory(prefix="asr-serve-") as folder:
                path = await spool(fields.upload, Path(folder))
                await fields.upload.close()
                result, batch = await transcribe_file(str(path), name, state.batcher, cfg.max_seconds,
                                                      cfg.pool_seconds, steering)
        finally:
            state.in_flight -= 1
        body = render(result, fields.response_format, fields.words, fields.logprobs)
        headers = {"X-ASR-Batch-Size": str(batch)}
        if isinstance(body, dict):
            return JSONResponse(body, headers=headers)
        return Response(body, media_type=MEDIA_TYPES[fields.response_format], headers=headers)

    add_model_routes(app, state)

    @app.get("/health")
    async def health() -> dict:
        streaming = {"streams": state.stream.open}
        if state.stream_batcher is not None:  # chunk steps of the streams, and how many streams each batched
            streaming.update({f"stream_{k}": v for k, v in state.stream_batcher.stats.to_dict().items()})
        return {"status": "ok", "model": cfg.model_id, "in_flight": state.in_flight, **state.batcher.stats.to_dict(),
                **streaming}

    app.add_api_websocket_route("/v1/stream", state.stream)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        if not (STATIC / "index.html").is_file():
            raise APIError(404, "no page here: the API is under /v1", "not_found")
        return FileResponse(STATIC / "index.html", media_type="text/html")


def add_model_routes(app: FastAPI, state: _State) -> None:
    """GET /v1/models (the served model, listed) and /v1/models/{id} (it, or its alias whisper-1; else 404)."""
    cfg = state.cfg

    def model(name: str) -> dict:
        return {"id": name, "object": "model", "created": state.started, "owned_by": "asr"}

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        check_key(request, cfg)
        return {"object": "list", "data": [model(cfg.model_id)]}

    @app.get("/v1/models/{name:path}")
    async def one_model(request: Request, name: str) -> dict:
        check_key(request, cfg)
        if name not in (cfg.model_id, *DEFAULT_ALIASES):
            raise APIError(404, f"the model {name!r} does not exist here; this server has {cfg.model_id!r}",
                           "model_not_found", "model")
        return model(name)


async def stream_transcription(state: _State, fields: Fields, steering: Steering | None) -> Response:
    """stream=true: the upload spooled, then its segments as server-sent events (asr.serve.events) as they are
    decoded; the spool folder lives until the last event. Counted in in_flight until then."""
    folder = tempfile.mkdtemp(prefix="asr-serve-")
    state.in_flight += 1

    def cleanup() -> None:
        state.in_flight -= 1
        shutil.rmtree(folder, ignore_errors=True)

    try:
        path = await spool(fields.upload, Path(folder))
        await fields.upload.close()
    except BaseException:
        cleanup()
        raise
    cfg = state.cfg
    job = partial(transcribe_file, str(path), upload_name(fields.upload), state.batcher, cfg.max_seconds,
                  cfg.pool_seconds, steering)
    return await stream_response(lambda emit: job(on_segment=emit), fields.logprobs, state.frame_s, cleanup)


def add_error_handlers(app: FastAPI, cfg: ServeConfig) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        message = (f"unknown request URL: {request.method} {request.url.path}" if e.status_code == 404
                   else f"{request.method} {request.url.path}: {e.detail}")
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(e.status_code)
        return JSONResponse(error_body(message, status_kind(e.status_code), code=code),
                            status_code=e.status_code, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(f"invalid request: {e.errors()}"), status_code=400)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, e: ClientDisconnect) -> Response:
        """A client that went away before its answer: one access-log line with status 499, no traceback."""
        client = "%s:%d" % tuple(request.scope["client"]) if request.scope.get("client") else "-"
        access_log.info('%s - "%s %s HTTP/%s" %d', client, request.method, request.url.path,
                        request.scope.get("http_version", "1.1"), GONE)
        return Response(status_code=GONE)

    @app.exception_handler(Exception)
    async def server_error(request: Request, e: Exception) -> JSONResponse:
        log.exception("error serving %s %s", request.method, request.url.path)
        return JSONResponse(error_body(f"the server failed on this request ({type(e).__name__}: {e})",
                                       "server_error"), status_code=500)
