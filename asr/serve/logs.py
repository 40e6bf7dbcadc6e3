"""What the server writes to its log: never a secret (RedactSecrets), a bounded number of lines however many
clients misbehave (asr.serve.guard's notices), and one access line per request, which says 499 for a client that
went away before its answer was whole (access_line; LaterAccessLines for answers that write theirs at their end)."""

from __future__ import annotations

import contextvars
import logging
import re
from contextlib import contextmanager
from typing import Callable, Iterator

# A query parameter whose name says it holds a secret (api_key=, token=, ...): its value is never logged.
SECRET_PARAM = re.compile(r"(?i)([?&][^=&\s\"]*(?:key|token|secret|password|auth)[^=&\s\"]*=)[^&\s\"]*")
LOGGERS = ("uvicorn.access", "uvicorn.error", "asr.serve")  # where request lines (URLs) are written
GONE = 499  # nginx's status for a client that closed the connection before its answer (never sent)
access_log = logging.getLogger("uvicorn.access")  # uvicorn's access log: off with --no-access-log
_later = contextvars.ContextVar("asr_serve_access_later", default=False)  # set while an answer's line is put off


def redact(text: str) -> str:
    """`text` with the values of secret-looking query parameters replaced by ***."""
    return SECRET_PARAM.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """A logging filter: URLs in a record's arguments (uvicorn's access lines) lose their secret parameters' values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_logs() -> None:
    """Install RedactSecrets on the loggers that write URLs (once: again is a no-op)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


class ClientFrameErrors(logging.Filter):
    """On uvicorn's error logger: its record of a client's WebSocket text frame that is not UTF-8 (an error with a
    traceback, one per frame, whoever sends them) becomes one of the server's notices (`note(kind, message)`:
    asr.serve.guard's Notices, at most one line each 10 s, counting the others). The client gets 1007 either way."""

    def __init__(self, note: Callable[[str, str], None]):
        super().__init__()
        self.note = note

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            self.note("frames", "closed a stream (1007) whose client sent a text frame that is not UTF-8")
            return False
        return True


class LaterAccessLines(logging.Filter):
    """On uvicorn's access logger: drops the line uvicorn writes as an answer begins, for the answers that write
    their own once they end (access_later): a stream of events can still lose its client after its 200 began."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _later.get()


@contextmanager
def access_later() -> Iterator[None]:
    """Around the send of an answer's start: uvicorn's access line for it is not written (LaterAccessLines)."""
    token = _later.set(True)
    try:
        yield
    finally:
        _later.reset(token)


def access_line(scope: dict, status: int) -> None:
    """An access line as uvicorn writes it, for the request of ASGI `scope`, with `status` (GONE: the client left)."""
    client = "%s:%d" % tuple(scope["client"]) if scope.get("client") else "-"
    access_log.info('%s - "%s %s HTTP/%s" %d', client, scope.get("method", "-"), scope.get("path", "-"),
                    scope.get("http_version", "1.1"), status)
