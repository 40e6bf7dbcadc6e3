"""A FileResult -> the response bodies of OpenAI's transcription API: json, text, srt, vtt, verbose_json.

    json          {"text": "..."}
    text          the transcript and a newline
    srt, vtt      subtitles, exactly as `python -m asr.transcribe --format srt|vtt` writes them
    verbose_json  {"task", "language", "duration", "text", "segments": [{"id", "seek", "start", "end", "text",
                  "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"}],
                  "words": [{"word", "start", "end", "confidence"}] (with word timestamps)}
    stream=true   server-sent events: transcript.text.delta per segment, then transcript.text.done (text_delta,
                  text_done), with "logprobs" [{"token", "logprob", "bytes"}] where include[]=logprobs

Times are seconds in the file, rounded to the millisecond as the CLI's json rounds them.
"""

from __future__ import annotations

import zlib

from asr.longform import FileResult, SegmentResult, make_cues, to_srt, to_vtt

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/plain; charset=utf-8",
               "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}
GRANULARITIES = ("segment", "word")
LANGUAGE = "english"  # what verbose_json reports (OpenAI gives the language's name, not its code)


def render(result: FileResult, fmt: str, words: bool = False, logprobs: bool = False) -> dict | str:
    """The body for response format `fmt` (one of FORMATS): a dict for the JSON ones, text for the others.
    `words`: verbose_json lists the words with their times (timestamp_granularities[]=word); `logprobs`: json
    lists the text's tokens with their log-probs (include[]=logprobs)."""
    if fmt == "json":
        return {"text": result.text, **({"logprobs": token_logprobs(result.logprobs)} if logprobs else {})}
    if fmt == "text":
        return result.text + "\n"
    if fmt == "srt":
        return to_srt(make_cues(result.words, end_s=result.duration))
    if fmt == "vtt":
        return to_vtt(make_cues(result.words, end_s=result.duration))
    if fmt == "verbose_json":
        return verbose_json(result, words)
    raise ValueError(f"response format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def token_logprobs(pairs: list[tuple[str, float]]) -> list[dict]:
    """OpenAI's logprobs: [{"token", "logprob", "bytes"}] (natural log)."""
    return [{"token": token, "logprob": round(lp, 4), "bytes": list(token.encode())} for token, lp in pairs]


def segment(i: int, s: SegmentResult) -> dict:
    """A segment in OpenAI's verbose shape: its token ids (the model's vocabulary), mean token log-prob, and
    compression ratio (as Whisper computes it); no_speech_prob is 0 (the segmenter keeps speech only)."""
    data = s.text.encode()
    mean = sum(lp for _, lp in s.logprobs) / len(s.logprobs) if s.logprobs else 0.0
    return {"id": i, "seek": round(s.start * 100), "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
            "tokens": list(s.tokens), "temperature": 0.0, "avg_logprob": round(mean, 4),
            "compression_ratio": round(len(data) / len(zlib.compress(data)), 4) if data else 0.0,
            "no_speech_prob": 0.0}


def text_delta(text: str, pairs: list[tuple[str, float]] | None) -> dict:
    """OpenAI's transcript.text.delta event (logprobs with include[]=logprobs)."""
    return {"type": "transcript.text.delta", "delta": text,
            **({"logprobs": token_logprobs(pairs)} if pairs is not None else {})}


def text_done(result: FileResult, audio_tokens: int, logprobs: bool) -> dict:
    """OpenAI's transcript.text.done event: the whole text and the usage (audio tokens: the audio's 10 ms feature
    frames; output tokens: those of the text)."""
    out = len(result.logprobs)
    usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": out, "total_tokens": audio_tokens + out,
             "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0}}
    return {"type": "transcript.text.done", "text": result.text, "usage": usage,
            **({"logprobs": token_logprobs(result.logprobs)} if logprobs else {})}


def verbose_json(result: FileResult, words: bool) -> dict:
    segments = [segment(i, s) for i, s in enumerate(result.segments)]
    doc = {"task": "transcribe", "language": LANGUAGE, "duration": round(result.duration, 3), "text": result.text,
           "segments": segments}
    if words:
        doc["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                         "confidence": round(w.confidence, 3)} for w in result.words]
    return doc
