"""An OpenAI-compatible transcription server: `python -m asr.serve` (installed: `asr-serve`). It needs the
`.[serve]` extra (fastapi, uvicorn, python-multipart), which only this package imports.

    from asr.serve import ServeConfig, create_app
    app = create_app(ServeConfig(), rec, decoder)        # a FastAPI app; uvicorn.run(app) serves it

    POST /v1/audio/transcriptions   OpenAI's transcription API: json, text, srt, vtt, verbose_json
    GET  /v1/models, GET /health, GET / (static/index.html)

config.py    ServeConfig: the server's flags as one frozen dataclass; LIMITS, what each limit bounds
errors.py    APIError and OpenAI's error shape {"error": {"message", "type", "param", "code"}}
guard.py     the connections' limits and header deadline (uvicorn's h11 protocol); notices that stay few
upload.py    the multipart form, read as it arrives: size limit, deadlines, fields, the file written to disk once
fields.py    the form's fields, checked: model, formats, stream, include[], hotwords, phrase_list
limits.py    requests and streams at once (in all, per client address); the audio waiting for the model
worker.py    ModelWorker: the one thread that runs the model for transcriptions and streams, in turn
batcher.py   Batcher: segments of requests that arrive together -> one model call, requests taken in turn
rounds.py    StreamRounds: the streams' windows, one of each stream a round, each answered when its own are done
jobs.py      one uploaded file -> segments -> the batcher -> a FileResult, as the CLI makes it
formats.py   a FileResult -> json, text, srt, vtt or verbose_json; the events of stream=true
events.py    stream=true: server-sent events, a segment at a time
stream.py    WS /v1/stream: Vosk's protocol, the key, the stream's deadlines
stream_config.py  a stream's config message (rate, words, max_alternatives, phrase_list, hotwords); Vosk's answers
logs.py      no secret in a log line (query values of api_key= and the like)
app.py       create_app: the routes, error handlers, the model thread's life
__main__.py  the flags -> ServeConfig -> the model, loaded once -> uvicorn with the guard
"""

from asr.serve.config import ServeConfig
from asr.serve.errors import APIError

__all__ = ["APIError", "ServeConfig", "create_app"]


def create_app(cfg, rec, decoder, stream=None):
    """asr.serve.app.create_app, imported when called (so that `import asr.serve` needs no fastapi)."""
    from asr.serve.app import create_app as create

    return create(cfg, rec, decoder, stream)
