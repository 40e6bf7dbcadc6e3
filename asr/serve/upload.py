"""The multipart form of POST /v1/audio/transcriptions: its size limit, its fields, and the file spooled to disk.

The body is counted as it arrives: past the limit the request is refused with 413 at once (a Content-Length over
the limit before a byte is read). The form parser keeps at most 1 MB of the upload in memory (the rest is on
disk), and the file is then copied to a temporary folder of its own, so any length is served in bounded memory.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from asr.decoding import SteeringError, parse_hotword, read_grammar
from asr.serve.config import DEFAULT_ALIASES, ServeConfig
from asr.serve.errors import APIError
from asr.serve.formats import FORMATS, GRANULARITIES

LANGUAGES = ("en", "english")  # what the `language` field may say (the models asr trains are English)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Fields:
    upload: UploadFile  # the `file` field
    response_format: str  # one of formats.FORMATS
    words: bool  # timestamp_granularities[] includes "word"
    stream: bool = False  # stream=true: server-sent events (transcript.text.delta, transcript.text.done)
    logprobs: bool = False  # include[]=logprobs
    hotwords: list[tuple[str, float | None]] | None = None  # hotwords (PHRASE[:SCORE], ...) and keywords[]
    phrase_list: list[str] | None = None  # a grammar: a JSON list of phrases, "[unk]" for any other word


def too_large(cfg: ServeConfig) -> APIError:
    return APIError(413, f"the request is larger than this server's limit of {cfg.max_upload_mb:g} MB "
                         "(--max-upload-mb)", "file_too_large", "file")


async def read_form(request: Request, cfg: ServeConfig) -> FormData:
    """The request's multipart form; APIError 415 for another content type, 413 past the size limit, 400 if the
    body is not valid multipart."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise APIError(415, f"expected a multipart/form-data body (as OpenAI's API takes), got content type "
                            f"{content_type or 'none'!r}", "unsupported_content_type")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cfg.max_upload_bytes:
        raise too_large(cfg)
    seen = 0

    async def receive():  # the body as it arrives, counted
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > cfg.max_upload_bytes:
            raise _TooLarge
        return message

    try:
        return await Request(request.scope, receive).form(max_files=1, max_fields=50)
    except _TooLarge:
        raise too_large(cfg) from None
    except (HTTPException, ValueError, KeyError, AssertionError) as e:
        why = getattr(e, "detail", None) or str(e) or type(e).__name__
        raise APIError(400, f"the body is not valid multipart/form-data ({why})", "invalid_multipart") from e


def _one(form: FormData, name: str, default: str | None = None) -> str | None:
    value = form.get(name, default)
    if value is not None and not isinstance(value, str):
        raise APIError(400, f"{name} must be a text field, not a file", "invalid_value", name)
    return value


def read_fields(form: FormData, cfg: ServeConfig) -> Fields:
    """The form's fields, checked: model, response_format, language, timestamp_granularities[], file, stream,
    include[], hotwords / keywords[] and phrase_list (read here, checked against the vocabulary by the route).
    prompt and temperature are accepted and ignored."""
    model = _one(form, "model")
    if model is None:
        raise APIError(400, f"you must provide a model (this server has {cfg.model_id!r})", "missing_model", "model")
    if model not in (cfg.model_id, *DEFAULT_ALIASES):
        raise APIError(404, f"the model {model!r} does not exist here; this server has {cfg.model_id!r} "
                            f"({' and '.join(map(repr, DEFAULT_ALIASES))} too, as an alias of it)", "model_not_found",
                       "model")
    fmt = _one(form, "response_format", "json")
    if fmt not in FORMATS:
        raise APIError(400, f"response_format must be one of {', '.join(FORMATS)}, got {fmt!r}", "invalid_value",
                       "response_format")
    language = _one(form, "language")
    if language and language.lower() not in LANGUAGES:
        raise APIError(400, f"language {language!r} is not supported: this server's model transcribes English "
                            "only (give 'en' or leave it out)", "unsupported_language", "language")
    granularities = [g for key in ("timestamp_granularities[]", "timestamp_granularities") for g in form.getlist(key)]
    if bad := [g for g in granularities if g not in GRANULARITIES]:
        raise APIError(400, f"timestamp_granularities[] takes {' and '.join(GRANULARITIES)}, got {bad[0]!r}",
                       "invalid_value", "timestamp_granularities[]")
    upload = form.get("file")
    if upload is None:
        raise APIError(400, "you must provide a file: the audio, as the multipart field 'file'", "missing_file", "file")
    if not isinstance(upload, UploadFile):
        raise APIError(400, "file must be an uploaded file (a multipart part with a filename), not a text field",
                       "invalid_file_format", "file")
    return Fields(upload, fmt, "word" in granularities, read_stream(form), read_include(form),
                  *read_steering(form))


def read_stream(form: FormData) -> bool:
    """stream: true (1) or false (0, or left out)."""
    value = (_one(form, "stream") or "false").strip().lower()
    if value not in ("true", "1", "false", "0"):
        raise APIError(400, f"stream must be true or false, got {value!r}", "invalid_value", "stream")
    return value in ("true", "1")


def read_include(form: FormData) -> bool:
    """include[]: "logprobs" (with response_format json, or a stream) is the one thing it may ask for."""
    include = [v for key in ("include[]", "include") for v in form.getlist(key)]
    if bad := [v for v in include if v != "logprobs"]:
        raise APIError(400, f"include[] takes logprobs, got {bad[0]!r}", "invalid_value", "include[]")
    return bool(include)


def read_steering(form: FormData) -> tuple[list | None, list[str] | None]:
    """(hotwords, phrase_list) as sent, not yet checked: `hotwords` fields hold PHRASE[:SCORE] items separated by
    commas or new lines, each `keywords[]` one phrase (OpenAI's name); phrase_list is a JSON list (Vosk's)."""
    texts = [v for key in ("hotwords", "hotwords[]") for v in form.getlist(key)]
    keywords = [v for key in ("keywords[]", "keywords") for v in form.getlist(key)]
    if any(not isinstance(v, str) for v in texts + keywords):
        raise APIError(400, "hotwords and keywords[] must be text fields, not files", "invalid_value", "hotwords")
    items = [item for text in texts for item in re.split(r"[,\n]", text) if item.strip()]
    hotwords = [parse_hotword(item) for item in items] + [(k, None) for k in keywords]
    grammar = _one(form, "phrase_list")
    try:
        phrase_list = read_grammar(grammar, "phrase_list") if grammar is not None else None
    except SteeringError as e:
        raise APIError(400, str(e), "invalid_grammar", "phrase_list") from e
    return (hotwords if texts or keywords else None), phrase_list


def upload_name(upload: UploadFile) -> str:
    """The upload's file name as errors and results give it (its last part: never a path of this machine)."""
    return Path(upload.filename or "").name or "upload"


def spool_name(name: str) -> str:
    """The name the upload is spooled under: its own (so that a command in an error names the client's file), or
    where that cannot be a file name here, "audio" and its plain suffix (suffixes name formats that need ffmpeg)."""
    if name not in (".", "..") and "\0" not in name and len(name.encode("utf-8", "surrogateescape")) <= 200:
        return name
    suffix = Path(name).suffix.lower()
    return "audio" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else "")


async def spool(upload: UploadFile, folder: Path) -> Path:
    """Copy the upload to `folder` under spool_name(its name). APIError 400 if it is empty."""
    path = folder / spool_name(upload_name(upload))

    def copy() -> int:
        upload.file.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
            return out.tell()

    if await asyncio.to_thread(copy) == 0:
        raise APIError(400, f"{upload_name(upload)}: the file is empty (0 bytes)", "empty_file", "file")
    return path
