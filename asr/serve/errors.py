"""Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}, with the HTTP status they go with."""

from __future__ import annotations

CLOSE = {"Connection": "close"}  # an answer after which the connection is not kept (nor the rest of a body read)


class APIError(Exception):
    """A request that cannot be served; `status` is its HTTP status, the rest is OpenAI's error body."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 kind: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.kind = kind or status_kind(status)
        self.headers = headers or {}  # sent with the answer (Retry-After, Connection: close)

    def body(self) -> dict:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def status_kind(status: int) -> str:
    """OpenAI's error type for an HTTP status."""
    if status == 401:
        return "authentication_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def audio_error(message: str) -> APIError:
    """A file that asr.audio could not read (its AudioError's message) -> 400, told apart by what went wrong."""
    damaged = any(word in message for word in ("truncated", "corrupt", "NaN", "samples reach"))
    return APIError(400, message, "corrupt_audio" if damaged else "invalid_file_format", "file")


def shutting_down() -> APIError:
    """A request the server will not serve because it is stopping (SIGTERM): 503, and the connection is closed."""
    return APIError(503, "the server is shutting down: send the request again later", "server_shutting_down",
                    headers=CLOSE)
