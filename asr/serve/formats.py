"""A FileResult -> the response bodies of OpenAI's transcription API: json, text, srt, vtt, verbose_json.

    json          {"text": "..."}
    text          the transcript and a newline
    srt, vtt      subtitles, exactly as `python -m asr.transcribe --format srt|vtt` writes them
    verbose_json  {"task", "language", "duration", "text", "segments": [{"id", "seek", "start", "end", "text",
                  "temperature"}], "words": [{"word", "start", "end", "confidence"}] (with word timestamps)}

Times are seconds in the file, rounded to the millisecond as the CLI's json rounds them.
"""

from __future__ import annotations

from asr.longform import FileResult, make_cues, to_srt, to_vtt

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain; charset=utf-8",
               "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
GRANULARITIES = ("segment", "word")
LANGUAGE = "english"  # what verbose_json reports (OpenAI gives the language's name, not its code)


def render(result: FileResult, fmt: str, words: bool = False) -> dict | str:
    """The body for response format `fmt` (one of FORMATS): a dict for the JSON ones, text for the others.
    `words`: verbose_json lists the words with their times (timestamp_granularities[]=word)."""
    if fmt == "json":
        return {"text": result.text}
    if fmt == "text":
        return result.text + "\n"
    if fmt == "srt":
        return to_srt(make_cues(result.words))
    if fmt == "vtt":
        return to_vtt(make_cues(result.words))
    if fmt == "verbose_json":
        return verbose_json(result, words)
    raise ValueError(f"response format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def verbose_json(result: FileResult, words: bool) -> dict:
    segments = [{"id": i, "seek": round(s.start * 100), "start": round(s.start, 3), "end": round(s.end, 3),
                 "text": s.text, "temperature": 0.0} for i, s in enumerate(result.segments)]
    doc = {"task": "transcribe", "language": LANGUAGE, "duration": round(result.duration, 3), "text": result.text,
           "segments": segments}
    if words:
        doc["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                         "confidence": round(w.confidence, 3)} for w in result.words]
    return doc
