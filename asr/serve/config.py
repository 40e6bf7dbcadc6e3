"""ServeConfig: what `python -m asr.serve` is told by its flags, as one frozen dataclass, and LIMITS: every bound
the server puts on its clients (each a flag, --max-requests for max_requests, with a default that is safe on a
public port; the server prints them all at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL

BACKENDS = ("torch", "onnx")
MAX_WAIT_MS = 60_000.0  # a batch's first segment waits at most a minute for company (the model thread's timer)
LONGEST_S = 1e7  # s (about 4 months): the longest any limit in seconds may be, within the clocks' range
DEFAULT_ALIASES = ("whisper-1",)  # model names OpenAI clients send by default; they get the served model


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"  # address to listen on (0.0.0.0: every interface)
    port: int = 8000  # TCP port
    model: str = str(DEFAULT_MODEL)  # checkpoint to serve (default: the shipped AN4 model)
    backend: str = "torch"  # "torch" or "onnx": what runs the acoustic model
    api_key: str | None = None  # if set, /v1/* requests need "Authorization: Bearer <api_key>"
    max_upload_mb: float = 100.0  # largest request body, MB (10**6 bytes); larger ones get 413
    max_seconds: float | None = None  # longest audio accepted, seconds; None: any length
    threads: int | None = None  # torch's CPU threads; None: what torch picks (python -m asr.serve: asr.cli's default)
    max_batch: int = 32  # segments per model call at most (1: one at a time, no batching)
    max_wait_ms: float = 5.0  # how long the first segment of a batch waits for others to join it
    batch_seconds: float = 40.0  # s; padded audio per model call (segments x the longest): bounds one call's time
    stream_batch_seconds: float = 16.0  # s; batch_seconds while a live stream is open: what each of its rounds waits for
    pool_seconds: float = 120.0  # s; audio of one request queued for the model at a time
    access_log: bool = True  # one line per request on stdout (uvicorn's access log)
    stream_model: str | None = str(DEFAULT_STREAM_MODEL)  # streaming checkpoint for /v1/stream; None: no streaming
    # Limits (LIMITS says what each bounds): connections, then requests, then streams, then the server's end.
    max_connections: int = 2000  # HTTP connections open at once
    max_peer_connections: int = 64  # HTTP connections open at once from one client address
    header_timeout_s: float = 10.0  # s; for a request's headers to arrive
    body_timeout_s: float = 10.0  # s; a body may pause this long, and is held to min_body_kb_s after it
    min_body_kb_s: float = 8.0  # KB/s (10**3 bytes); a body's slowest average rate
    max_request_s: float = 600.0  # s; one transcription request, from its headers to its answer
    max_requests: int = 64  # transcription requests served at once
    max_peer_requests: int = 32  # transcription requests served at once for one client address
    max_queued_audio_s: float = 300.0  # s; audio of all requests waiting for the model at once (bounds memory)
    max_streams: int = 64  # WebSocket streams served at once
    max_peer_streams: int = 8  # WebSocket streams served at once for one client address
    stream_idle_s: float = 120.0  # s; a stream that sends no audio this long is closed (1008)
    max_stream_s: float = 3600.0  # s; one stream at most
    shutdown_grace_s: float = 10.0  # s; after SIGTERM, for the requests in flight to finish

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for name in ("max_batch", "max_connections", "max_peer_connections", "max_requests", "max_peer_requests",
                     "max_streams", "max_peer_streams"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_seconds", "stream_batch_seconds", "pool_seconds", "header_timeout_s", "body_timeout_s",
                     "max_request_s", "max_queued_audio_s", "stream_idle_s", "max_stream_s", "shutdown_grace_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.min_body_kb_s >= 0:
            raise ValueError(f"min_body_kb_s must be >= 0, got {self.min_body_kb_s}")
        self.check_bounds()

    def check_bounds(self) -> None:
        """ValueError naming the flag whose value no server can use: past what the clocks and timers take (a wait of
        1e300 s ended the model thread and left every request waiting), a port past 65535, or an API key that no
        HTTP header carries as it is (empty, spaces, other than printable ASCII)."""
        if not 1 <= self.port <= 65535:
            raise ValueError(f"--port must be 1-65535, got {self.port}")
        if not self.max_wait_ms <= MAX_WAIT_MS:
            raise ValueError(f"--max-wait-ms must be at most {MAX_WAIT_MS:g}, got {self.max_wait_ms:g}")
        for name in ("header_timeout_s", "body_timeout_s", "max_request_s", "stream_idle_s", "max_stream_s",
                     "shutdown_grace_s"):
            if not (value := getattr(self, name)) <= LONGEST_S:
                raise ValueError(f"--{name.replace('_', '-')} must be at most {LONGEST_S:g}, got {value:g}")
        key = self.api_key
        if key is not None and not (key and all("!" <= c <= "~" for c in key)):
            raise ValueError("--api-key must be printable ASCII without spaces (it travels in an HTTP header as it "
                             "is), got " + ("an empty one" if not key else "other characters"))

    @property
    def model_id(self) -> str:
        """The served model's name in the API: "asr-" and the checkpoint's file name, e.g. "asr-an4"."""
        return f"asr-{Path(self.model).stem}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


LIMITS = {  # ServeConfig field -> what it bounds; its flag is --field-name (--max-requests for max_requests)
    "max_upload_mb": "largest request body, MB; larger ones get 413",
    "max_connections": "HTTP connections open at once; more are answered 503 and closed at once",
    "max_peer_connections": "HTTP connections open at once from one client address; more: 503 and closed",
    "header_timeout_s": "seconds for a request's headers to arrive (from the connection or its last answer)",
    "body_timeout_s": "seconds a request body may send nothing; longer: 408, and the connection closed",
    "min_body_kb_s": "slowest average body rate, KB/s, held after --body-timeout-s; slower: 408 (0: none)",
    "max_request_s": "seconds for one transcription request, from its headers to its answer; longer: 504",
    "max_requests": "transcription requests served at once; more get 503 (try again later)",
    "max_peer_requests": "transcription requests served at once for one client address; more get 429",
    "max_queued_audio_s": "seconds of audio of all requests waiting for the model; a request's reading waits",
    "pool_seconds": "seconds of audio of one request waiting for the model at once",
    "batch_seconds": "padded audio per model call, seconds (segments x the longest): one call's time",
    "stream_batch_seconds": "the same while a live stream is open: a stream's round waits for one such call",
    "max_streams": "WebSocket streams served at once; more are closed with 1013 (try again later)",
    "max_peer_streams": "WebSocket streams served at once for one client address; more: 1013",
    "stream_idle_s": "seconds a stream may send no audio; longer: closed with 1008",
    "max_stream_s": "seconds one stream may last; longer: closed with 1008",
    "shutdown_grace_s": "seconds after SIGTERM for requests in flight to finish; then they are answered 503",
}


def flag(name: str) -> str:
    """The command-line flag of a ServeConfig field: max_requests -> --max-requests."""
    return "--" + name.replace("_", "-")


def limits_report(cfg: ServeConfig) -> str:
    """The server's limits, one a line, as printed at start-up: `  --max-requests 64   transcription ...`."""
    return "\n".join(f"  {flag(name) + ' ' + format(getattr(cfg, name), 'g'):32} {what}"
                     for name, what in LIMITS.items())
