"""Serve a model over OpenAI's transcription API (by default, the AN4 model that ships in the package).

    python -m asr.serve                              # http://127.0.0.1:8000/v1/audio/transcriptions
    python -m asr.serve --host 0.0.0.0 --port 9000 --api-key SECRET --max-seconds 3600
    ws://127.0.0.1:8000/v1/stream                    # live, in Vosk's WebSocket protocol (asr.serve.stream)

    curl -F file=@clip.flac -F model=asr-an4 http://127.0.0.1:8000/v1/audio/transcriptions
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-").audio.transcriptions.create(file=f, model="whisper-1")

The model and its decoder (the decoding its metadata recommends, as `python -m asr.transcribe` uses) are loaded
once. Requests that arrive together are batched into one model call. SIGTERM or Ctrl-C: requests in flight
finish, new connections are refused, then the server exits. Needs the serve extra: pip install -e ".[serve]".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from asr import __version__
from asr.cli import Formatter, apply_threads, non_negative_float, positive_float, positive_int
from asr.serve.config import BACKENDS, ServeConfig


def parse_args(argv: list[str] | None) -> ServeConfig:
    d = ServeConfig()
    p = argparse.ArgumentParser(prog="python -m asr.serve", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("--host", default=d.host, help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=positive_int, default=d.port, help="TCP port")
    p.add_argument("--model", default=d.model, help="checkpoint (default: the shipped AN4 model)")
    p.add_argument("--backend", choices=BACKENDS, default=d.backend, help="what runs the acoustic model")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1/* (default: no key)")
    p.add_argument("--max-upload-mb", type=positive_float, default=d.max_upload_mb,
                   help="largest request body in MB (10^6 bytes); larger ones get 413")
    p.add_argument("--max-seconds", type=positive_float, help="longest audio accepted, seconds (default: any)")
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--max-batch", type=positive_int, default=d.max_batch,
                   help="segments per model call at most (1: one at a time)")
    p.add_argument("--batch-seconds", type=positive_float, default=d.batch_seconds, metavar="SECONDS",
                   help="padded audio per model call at most (segments x the longest of them)")
    p.add_argument("--max-wait-ms", type=non_negative_float, default=d.max_wait_ms,
                   help="how long a batch's first segment waits for others")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request")
    p.add_argument("--stream-model", default=d.stream_model,
                   help="streaming (LC-BLSTM) checkpoint for /v1/stream; 'none': no streaming")
    p.add_argument("--max-streams", type=positive_int, default=d.max_streams, help="WebSocket streams at once")
    p.add_argument("--stream-idle-s", type=positive_float, default=d.stream_idle_s, metavar="SECONDS",
                   help="a WebSocket stream that sends no audio for this long is closed (1008)")
    a = p.parse_args(argv)
    stream_model = None if a.stream_model.lower() == "none" else a.stream_model
    return ServeConfig(a.host, a.port, a.model, a.backend, a.api_key, a.max_upload_mb, a.max_seconds, a.threads,
                       a.max_batch, a.max_wait_ms, a.batch_seconds, access_log=a.access_log, stream_model=stream_model,
                       max_streams=a.max_streams, stream_idle_s=a.stream_idle_s)


def load(cfg: ServeConfig):
    """The recogniser and its recommended decoder; raises CheckpointError, LMError or ValueError."""
    from argparse import Namespace

    from asr.checkpoint import load_recognizer
    from asr.decoding import Decoder, decoding_config

    rec = load_recognizer(cfg.model, cfg.backend)
    return rec, Decoder(decoding_config(Namespace(), rec.metadata, cfg.model), rec.vocab)


def load_stream(cfg: ServeConfig):
    """(streaming recogniser, its recommended decoder) for /v1/stream, or None without cfg.stream_model;
    raises CheckpointError, LMError or ValueError (a full-context model)."""
    if cfg.stream_model is None:
        return None
    rec, decoder = load(replace(cfg, model=cfg.stream_model, backend="torch"))
    if not rec.model.cfg.chunk_frames:
        raise ValueError(f"--stream-model {cfg.stream_model}: a full-context model; /v1/stream needs a streaming one")
    return rec, decoder


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        import uvicorn

        from asr.serve.app import create_app
    except ImportError as e:
        print(f"error: python -m asr.serve needs the serve extra ({e.name} is missing): pip install -e '.[serve]'",
              file=sys.stderr)
        return 2
    from asr.checkpoint import CheckpointError
    from asr.lm import LMError

    apply_threads(cfg.threads)
    try:
        rec, decoder = load(cfg)
        stream = load_stream(cfg)
    except (CheckpointError, LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = create_app(cfg, rec, decoder, stream)
    uvicorn.run(app, host=cfg.host, port=cfg.port, access_log=cfg.access_log, timeout_graceful_shutdown=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
