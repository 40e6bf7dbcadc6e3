"""Serve a model over OpenAI's transcription API (by default, the AN4 model that ships in the package).

    python -m asr.serve                              # http://127.0.0.1:8000/v1/audio/transcriptions
    python -m asr.serve --host 0.0.0.0 --port 9000 --api-key SECRET --max-seconds 3600
    ws://127.0.0.1:8000/v1/stream                    # live, in Vosk's WebSocket protocol (asr.serve.stream)

    curl -F file=@clip.flac -F model=asr-an4 http://127.0.0.1:8000/v1/audio/transcriptions
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-").audio.transcriptions.create(file=f, model="whisper-1")

The model and its decoder (the decoding its metadata recommends, as `python -m asr.transcribe` uses) are loaded
once. Requests that arrive together are batched into one model call. Every limit the server puts on its clients
(connections, deadlines, requests and streams at once, in all and per client address, queued audio) is a flag
with a default that is safe on a public port, printed at start-up. SIGTERM or Ctrl-C: new connections are
refused, uploads still arriving are dropped, requests in flight finish within --shutdown-grace-s, then the
server exits. Needs the serve extra: pip install -e ".[serve]".
"""

from __future__ import annotations

import argparse
import logging
import resource
import socket
import sys
from dataclasses import fields, replace

from asr import __version__
from asr.cli import (FEW_CORES, Formatter, apply_threads, default_threads, non_negative_float, positive_float,
                     positive_int, thread_count)
from asr.serve.config import BACKENDS, LIMITS, ServeConfig, flag, limits_report

SPARE_FILES = 64  # open files kept for the model, logs and the like, beside the connections' own


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
    p.add_argument("--max-seconds", type=positive_float, help="longest audio accepted, seconds (default: any)")
    p.add_argument("--threads", type=thread_count, metavar="N",
                   help=f"CPU threads for torch (default: as transcribe's, from the usable cores: 1 on {FEW_CORES} or "
                        f"fewer, where a second fights the server's other work, else what torch picks; here "
                        f"{default_threads()})")
    p.add_argument("--max-batch", type=positive_int, default=d.max_batch,
                   help="segments per model call at most (1: one at a time)")
    p.add_argument("--max-wait-ms", type=non_negative_float, default=d.max_wait_ms,
                   help="how long a batch's first segment waits for others")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request")
    p.add_argument("--stream-model", default=d.stream_model,
                   help="streaming (LC-BLSTM) checkpoint for /v1/stream; 'none': no streaming")
    limits = p.add_argument_group("limits (each printed at start-up)")
    for name, what in LIMITS.items():
        kind = positive_int if isinstance(getattr(d, name), int) else positive_float
        limits.add_argument(flag(name), type=non_negative_float if name == "min_body_kb_s" else kind,
                            default=getattr(d, name), metavar="N", help=what)
    a = vars(p.parse_args(argv))
    a["threads"] = a["threads"] or default_threads()
    stream_model = a.pop("stream_model")
    try:
        return ServeConfig(**{f.name: a[f.name] for f in fields(ServeConfig) if f.name in a},
                           stream_model=None if stream_model.lower() == "none" else stream_model)
    except ValueError as e:  # a value the flag's type lets through that no server can use
        p.error(str(e))


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


def connections_allowed(cfg: ServeConfig) -> int:
    """max_connections, or fewer where the process may not open enough files: each connection may hold its socket
    and an upload's file, each stream its socket. The soft limit is raised towards the hard one first."""
    want = 2 * cfg.max_connections + cfg.max_streams + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return cfg.max_connections
    return max(1, min(cfg.max_connections, (soft - cfg.max_streams - SPARE_FILES) // 2))


def cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (a name that does not resolve, an address this machine does
    not have, a port another process holds), in words naming the flags; None where a trial bind succeeds."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        return f"--host {host}: not an address of this machine, nor a name it can resolve ({e})"
    with socket.socket(family, kind, proto) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            trial.bind(address)
        except OSError as e:
            return f"--host {host} --port {port}: cannot listen there ({(e.strerror or str(e)).lower()})"
    return None


def serve(cfg: ServeConfig, app) -> None:
    """Run the app under uvicorn with the guard's protocol (asr.serve.guard) and the limits; returns after shutdown."""
    import uvicorn

    from asr.serve.guard import graceful_websockets, guarded_protocol

    guard = app.state.guard
    guard.max_connections = connections_allowed(cfg)
    note = "" if guard.max_connections == cfg.max_connections else (
        f"\n  (--max-connections lowered to {guard.max_connections}: the process may open only so many files)")
    print(f"asr.serve: {cfg.threads} torch thread(s) (--threads); limits (each a flag):\n{limits_report(cfg)}{note}",
          file=sys.stderr, flush=True)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            guard.stop()  # uploads still arriving are dropped at once; requests in flight get the grace
            await super().shutdown(sockets)

    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, access_log=cfg.access_log, http=guarded_protocol(guard),
                            ws=graceful_websockets(), timeout_keep_alive=min(5.0, cfg.header_timeout_s / 2),
                            timeout_graceful_shutdown=cfg.shutdown_grace_s)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logging.getLogger("asr.serve").addHandler(handler)  # its notices (asr.serve.guard), beside uvicorn's lines
    Server(config).run()


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        import uvicorn  # noqa: F401

        from asr.serve.app import create_app
    except ImportError as e:
        print(f"error: python -m asr.serve needs the serve extra ({e.name} is missing): pip install -e '.[serve]'",
              file=sys.stderr)
        return 2
    from asr.checkpoint import CheckpointError
    from asr.lm import LMError

    if problem := cannot_listen(cfg.host, cfg.port):  # said at once, not by uvicorn once the models have loaded
        print(f"error: {problem}", file=sys.stderr)
        return 2
    apply_threads(cfg.threads)
    try:
        rec, decoder = load(cfg)
        stream = load_stream(cfg)
    except (CheckpointError, LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if stream is not None and cfg.model != ServeConfig.model and cfg.stream_model == ServeConfig.stream_model:
        print(f"note: live streams (/v1/stream, the page's Live mode) use the shipped AN4 streaming model, not "
              f"{cfg.model}: --stream-model names yours (a streaming one), none turns them off", file=sys.stderr)
    serve(cfg, create_app(cfg, rec, decoder, stream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
