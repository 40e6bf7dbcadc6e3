"""The fields of a transcription request's form, checked (asr.serve.upload reads the form as it arrives): model,
response_format, language, timestamp_granularities[], file, stream, include[], and the steering fields hotwords /
keywords[] and phrase_list / phrase_list[]. A field that is wrong is an APIError 400 (404 for another model) naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from asr.decoding import SteeringError, read_grammar, split_hotwords
from asr.serve.config import DEFAULT_ALIASES, ServeConfig
from asr.serve.errors import APIError
from asr.serve.formats import FORMATS, GRANULARITIES

LANGUAGES = ("en", "english")  # what the `language` field may say (the models asr trains are English)


class Form(Protocol):
    """A parsed form (asr.serve.upload._Form)."""

    fields: dict[str, list[str]]  # text fields: name -> values
    files: dict[str, tuple[str, Path]]  # file fields: name -> (file name as sent, where it was written)

    def getlist(self, name: str) -> list[str]: ...


@dataclass(frozen=True)
class Fields:
    path: Path  # the uploaded file, on disk (under asr.serve.upload.spool_name(name))
    name: str  # its file name as results and errors give it (the last part: never a path of this machine)
    response_format: str  # one of formats.FORMATS
    words: bool  # timestamp_granularities[] includes "word"
    stream: bool = False  # stream=true: server-sent events (transcript.text.delta, transcript.text.done)
    logprobs: bool = False  # include[]=logprobs
    hotwords: list[tuple[str, float | None]] | None = None  # hotwords (PHRASE[:SCORE], ...) and keywords[]
    phrase_list: list[str] | None = None  # a grammar: a JSON list of phrases, "[unk]" for any other word


def _one(form: Form, name: str, default: str | None = None) -> str | None:
    if name in form.files:
        raise APIError(400, f"{name} must be a text field, not a file", "invalid_value", name)
    return form.fields.get(name, [default])[0]


def read_fields(form: Form, cfg: ServeConfig) -> Fields:
    """The form's fields, checked: model, response_format, language, timestamp_granularities[], file, stream,
    include[], hotwords / keywords[] and phrase_list (read here, checked against the vocabulary by the route).
    prompt is accepted and ignored, and temperature too once it is a number in [0, 1], as OpenAI's API has it."""
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
    read_temperature(form)
    granularities = [g for key in ("timestamp_granularities[]", "timestamp_granularities")
                     for g in form.fields.get(key, [])]
    if bad := [g for g in granularities if g not in GRANULARITIES]:
        raise APIError(400, f"timestamp_granularities[] takes {' and '.join(GRANULARITIES)}, got {bad[0]!r}",
                       "invalid_value", "timestamp_granularities[]")
    if "file" in form.fields:
        raise APIError(400, "file must be an uploaded file (a multipart part with a filename), not a text field",
                       "invalid_file_format", "file")
    if "file" not in form.files:
        raise APIError(400, "you must provide a file: the audio, as the multipart field 'file'", "missing_file", "file")
    filename, path = form.files["file"]
    name = upload_name(filename)
    if path.stat().st_size == 0:
        raise APIError(400, f"{name}: the file is empty (0 bytes)", "empty_file", "file")
    return Fields(path, name, fmt, "word" in granularities, read_stream(form), read_include(form),
                  *read_steering(form))


def read_temperature(form: Form) -> None:
    """temperature, where given, is a number in [0, 1] (greedy and beam search sample nothing: it changes nothing)."""
    text = (_one(form, "temperature") or "").strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise APIError(400, f"temperature must be a number from 0 to 1, got {text[:40]!r}", "invalid_value",
                       "temperature")


def read_stream(form: Form) -> bool:
    """stream: true (1) or false (0, or left out)."""
    value = (_one(form, "stream") or "false").strip().lower()
    if value not in ("true", "1", "false", "0"):
        raise APIError(400, f"stream must be true or false, got {value!r}", "invalid_value", "stream")
    return value in ("true", "1")


def read_include(form: Form) -> bool:
    """include[]: "logprobs" (with response_format json, or a stream) is the one thing it may ask for."""
    include = form.getlist("include[]") + form.getlist("include")
    if bad := [v for v in include if v != "logprobs"]:
        raise APIError(400, f"include[] takes logprobs, got {bad[0]!r}", "invalid_value", "include[]")
    return bool(include)


def read_steering(form: Form) -> tuple[list | None, list[str] | None]:
    """(hotwords, phrase_list) as sent, not yet checked: `hotwords` fields hold PHRASE[:SCORE] items separated by
    commas or new lines, each `keywords[]` one phrase (OpenAI's name); a `phrase_list` field is a JSON list
    (Vosk's), each `phrase_list[]` one phrase (how the openai client sends a list), all of them one grammar."""
    if any(key in form.files for key in ("hotwords", "hotwords[]", "keywords[]", "keywords")):
        raise APIError(400, "hotwords and keywords[] must be text fields, not files", "invalid_value", "hotwords")
    if any(key in form.files for key in ("phrase_list", "phrase_list[]")):
        raise APIError(400, "phrase_list must be a text field, not a file", "invalid_value", "phrase_list")
    texts = form.getlist("hotwords") + form.getlist("hotwords[]")
    keywords = form.getlist("keywords[]") + form.getlist("keywords")
    hotwords = [hotword for text in texts for hotword in split_hotwords(text)] + [(k, None) for k in keywords]
    lists, phrases = form.getlist("phrase_list"), form.getlist("phrase_list[]")
    try:
        grammar = [p for text in lists for p in read_grammar(text, "phrase_list")] + phrases
    except SteeringError as e:
        raise APIError(400, str(e), "invalid_grammar", "phrase_list") from e
    return (hotwords if texts or keywords else None), (grammar if lists or phrases else None)


def upload_name(filename: str) -> str:
    """The upload's file name as errors and results give it (its last part: never a path of this machine)."""
    return Path(filename.replace("\\", "/")).name or "upload"
