"""An OpenAI-compatible transcription server: `python -m asr.serve` (installed: `asr-serve`). It needs the
`.[serve]` extra (fastapi, uvicorn, python-multipart), which only this package imports.

    from asr.serve import ServeConfig, create_app
    app = create_app(ServeConfig(), rec, decoder)        # a FastAPI app; uvicorn.run(app) serves it

    POST /v1/audio/transcriptions   OpenAI's transcription API: json, text, srt, vtt, verbose_json
    GET  /v1/models, GET /health, GET / (static/index.html)

config.py    ServeConfig: the server's flags as one frozen dataclass; the served model's name
errors.py    APIError and OpenAI's error shape {"error": {"message", "type", "param", "code"}}
upload.py    the multipart form, read as it arrives: size limit, fields, the file written to disk once
batcher.py   Batcher: segments of requests that arrive together -> one model call, in a worker thread
jobs.py      one uploaded file -> segments -> the batcher -> a FileResult, as the CLI makes it
formats.py   a FileResult -> json, text, srt, vtt or verbose_json
app.py       create_app: the routes, error handlers, the batching thread's life
__main__.py  the flags -> ServeConfig -> the model, loaded once -> uvicorn
"""

from asr.serve.config import ServeConfig
from asr.serve.errors import APIError

__all__ = ["APIError", "ServeConfig", "create_app"]


def create_app(cfg, rec, decoder):
    """asr.serve.app.create_app, imported when called (so that `import asr.serve` needs no fastapi)."""
    from asr.serve.app import create_app as create

    return create(cfg, rec, decoder)
