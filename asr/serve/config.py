"""ServeConfig: what `python -m asr.serve` is told by its flags, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL

BACKENDS = ("torch", "onnx")
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
    threads: int | None = None  # torch's CPU threads; None: what torch picks
    max_batch: int = 32  # segments per model call at most (1: one at a time, no batching)
    max_wait_ms: float = 5.0  # how long the first segment of a batch waits for others to join it
    batch_seconds: float = 200.0  # padded audio per model call: segments x the longest of them
    pool_seconds: float = 600.0  # audio of one request queued for the model at a time (bounds memory)
    access_log: bool = True  # one line per request on stdout (uvicorn's access log)
    stream_model: str | None = str(DEFAULT_STREAM_MODEL)  # streaming checkpoint for /v1/stream; None: no streaming
    max_streams: int = 64  # WebSocket streams served at once; more are closed with 1013 (try again later)
    stream_idle_s: float = 120.0  # s; a WebSocket stream that sends no audio this long is closed (1008)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if not self.stream_idle_s > 0:
            raise ValueError(f"stream_idle_s must be > 0, got {self.stream_idle_s}")

    @property
    def model_id(self) -> str:
        """The served model's name in the API: "asr-" and the checkpoint's file name, e.g. "asr-an4"."""
        return f"asr-{Path(self.model).stem}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)
