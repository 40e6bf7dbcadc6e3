"""The multipart form of POST /v1/audio/transcriptions, read as it arrives: its size limit, its deadlines, its
fields, and the file written to disk once, into the request's own folder.

The body is counted as it arrives: past the limit the request is refused with 413 at once (a Content-Length over
the limit before a byte is read). It must keep coming: a pause of more than body_timeout_s, an average rate under
min_body_kb_s once body_timeout_s have passed, or a body not in by the request's deadline (max_request_s) is
dropped with 408 and the connection closed; a server that begins to stop drops the bodies still arriving (503). Any
answer sent before the body's end closes the connection (unread_body).
Text fields are held in memory (MAX_FIELD_BYTES each, MAX_TEXT_BYTES in all, MAX_FIELDS of them); the file goes to disk as its parts
arrive (never held in memory, never copied), so any length is served in bounded memory.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from asr.serve.config import ServeConfig
from asr.serve.errors import CLOSE, APIError, shutting_down
from asr.serve.fields import Fields, read_fields, upload_name

MAX_FIELDS = 50  # text fields in one form at most
MAX_FIELD_BYTES = 1024 * 1024  # one text field at most (Starlette's own limit: 10,000 hotwords fit)
MAX_TEXT_BYTES = 2 * 1024 * 1024  # all text fields of a form at most
READ = "asr.body_read"  # in a request's ASGI scope once its whole body has been read


class _Invalid(Exception):
    """A body that is not the form this route takes; the message says why."""


class _Form:
    """python_multipart's callbacks -> the text fields (name -> values) and at most one file, written to `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.fields: dict[str, list[str]] = {}
        self.files: dict[str, tuple[str, Path]] = {}  # field name -> (file name as sent, path)
        self.file: BinaryIO | None = None  # the file part being written
        self.size = 0  # its bytes
        self.text_bytes = 0  # the text fields' bytes so far
        self.header, self.value, self.disposition = b"", b"", b""
        self.part: tuple[str, bytearray | None] = ("", None)  # (field name, a text field's bytes; None: the file)
        self.ended = False  # the closing boundary ("--BOUNDARY--") came

    def callbacks(self) -> dict:
        return {"on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data, "on_part_end": self.on_part_end, "on_end": self.on_end}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition = self.value
        self.header, self.value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.disposition = b""
        if b"name" not in options:
            raise _Invalid('a part without a name (its Content-Disposition needs name="...")')
        name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            if sum(map(len, self.fields.values())) >= MAX_FIELDS:
                raise _Invalid(f"more than {MAX_FIELDS} fields")
            self.part = (name, bytearray())
            return
        if self.files:
            raise _Invalid("more than one file: send one audio file a request")
        filename = options[b"filename"].decode("utf-8", "replace")
        path = self.folder / spool_name(upload_name(filename))
        self.files[name] = (filename, path)
        self.file, self.part = open(path, "wb"), (name, None)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        name, text = self.part
        if text is None:
            self.file.write(data[start:end])  # the page cache takes it at once: no need for a thread
            self.size += end - start
        elif len(text) + end - start > MAX_FIELD_BYTES:
            raise _Invalid(f"the field {name!r} is longer than {MAX_FIELD_BYTES // 1024} KB")
        elif self.text_bytes + end - start > MAX_TEXT_BYTES:
            raise _Invalid(f"the text fields are longer than {MAX_TEXT_BYTES // 1024} KB in all")
        else:
            text.extend(data[start:end])
            self.text_bytes += end - start

    def on_part_end(self) -> None:
        name, text = self.part
        if text is None:
            self.close()
        else:
            self.fields.setdefault(name, []).append(text.decode("utf-8", "replace"))

    def on_end(self) -> None:
        self.ended = True

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def too_large(cfg: ServeConfig) -> APIError:
    return APIError(413, f"the request is larger than this server's limit of {cfg.max_upload_mb:g} MB "
                         "(--max-upload-mb)", "file_too_large", "file")


def boundary_of(request: Request, cfg: ServeConfig) -> bytes:
    """The multipart boundary; APIError 415 for another content type, 413 for a Content-Length past the limit,
    400 without a boundary."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind.lower() != b"multipart/form-data":
        raise APIError(415, f"expected a multipart/form-data body (as OpenAI's API takes), got content type "
                            f"{content_type or 'none'!r}", "unsupported_content_type")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cfg.max_upload_bytes:
        raise too_large(cfg)
    if not params.get(b"boundary"):
        raise APIError(400, "the body is not valid multipart/form-data (no boundary in its Content-Type)",
                       "invalid_multipart")
    return params[b"boundary"]


def patience(start: float, seen: int, cfg: ServeConfig, deadline: float) -> tuple[float, str]:
    """(seconds the next piece of a body that began at `start` and has sent `seen` bytes may take, why if it does
    not come in time)."""
    now = time.monotonic()
    waits = [(cfg.body_timeout_s, f"no byte for {cfg.body_timeout_s:g} s (--body-timeout-s)"),
             (deadline - now, f"not all in after {cfg.max_request_s:g} s (--max-request-s)")]
    if cfg.min_body_kb_s > 0:
        rate = seen / max(now - start, 1e-9) / 1000
        waits.append((start + cfg.body_timeout_s + seen / (cfg.min_body_kb_s * 1000) - now,
                      f"{rate:.2g} KB/s on average, under {cfg.min_body_kb_s:g} KB/s (--min-body-kb-s)"))
    return min(waits)


async def receive(request: Request, seconds: float, why: str, stopping: asyncio.Event) -> dict:
    """The request's next ASGI message within `seconds`: APIError 408 (saying `why`) if none comes, 503 if the
    server begins to stop meanwhile."""
    if seconds > 0:
        message, stop = asyncio.ensure_future(request.receive()), asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait({message, stop}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if message in done:
            return message.result()
        message.cancel()
    if stopping.is_set():
        raise shutting_down()
    raise APIError(408, f"the request's body came too slowly: {why}", "request_timeout", headers=CLOSE)


async def body(request: Request, cfg: ServeConfig, stopping: asyncio.Event, deadline: float) -> AsyncIterator[bytes]:
    """The request's body as it arrives, counted and timed (module docstring): APIError 413 past the size limit,
    408 too slow, 503 if the server stops; ClientDisconnect if the client goes."""
    start, seen = time.monotonic(), 0
    while True:
        message = await receive(request, *patience(start, seen, cfg, deadline), stopping)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > cfg.max_upload_bytes:
            raise too_large(cfg)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            request.scope[READ] = True
            return


async def read_upload(request: Request, cfg: ServeConfig, folder: Path, stopping: asyncio.Event,
                      deadline: float) -> Fields:
    """The request's form, its file written to `folder`, checked (read_fields); APIError for what is wrong."""
    form, boundary = _Form(folder), boundary_of(request, cfg)
    try:
        parser = python_multipart.MultipartParser(boundary, form.callbacks())  # FormParserError: a boundary too long
        async for chunk in body(request, cfg, stopping, deadline):
            parser.write(chunk)
        parser.finalize()
        if not form.ended:  # the parser takes a body cut short, its last part with it, as whole
            raise _Invalid(f"it ends before its closing boundary (--{boundary.decode(errors='replace')}--)")
    except (_Invalid, FormParserError) as e:
        raise APIError(400, f"the body is not valid multipart/form-data ({e})", "invalid_multipart") from e
    finally:
        form.close()
    return read_fields(form, cfg)


def unread_body(request: Request) -> bool:
    """Whether the request has a body not read to its end: an answer now must close the connection (CLOSE), as
    RFC 9110 10.1.1 asks, or the rest of the body (or the next request of a client that never sent it, after
    Expect: 100-continue) would be read as a request."""
    if request.scope.get(READ):
        return False
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    return chunked or request.headers.get("content-length", "0").strip() not in ("", "0")


def spool_name(name: str) -> str:
    """The name the upload is written under: its own (so that a command in an error names the client's file), or
    where that cannot be a file name here, "audio" and its plain suffix (suffixes name formats that need ffmpeg)."""
    if name not in (".", "..") and "\0" not in name and len(name.encode("utf-8", "surrogateescape")) <= 200:
        return name
    suffix = Path(name).suffix.lower()
    return "audio" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else "")
