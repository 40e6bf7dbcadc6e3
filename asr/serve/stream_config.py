"""The {"config": {...}} message of /v1/stream, as Vosk's server takes it, checked, and what a stream's answers hold.

    {"config": {"sample_rate": 8000, "words": false, "max_alternatives": 3,
                "phrase_list": ["yes", "no", "[unk]"], "hotwords": ["rubout:2", "new york"]}}

sample_rate: the PCM's rate (default 16000). words: results list their words with times (default true).
max_alternatives: N > 0 gives each result as Vosk does with alternatives, {"alternatives": [{"confidence",
"result", "text"}, ...]}, the N best (default 0: none). phrase_list: a grammar (a list, or the JSON text of
one). hotwords: PHRASE[:SCORE] items (a list, or one text of them separated by commas or new lines, as the
HTTP field's). Other keys are ignored, as Vosk does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from asr.audio import MAX_RATE, MIN_RATE
from asr.decoding import Decoder, Steering, SteeringError, parse_hotword, read_grammar, split_hotwords
from asr.streaming import Final

MAX_ALTERNATIVES = 20  # a stream's results list at most this many alternatives


class ConfigError(ValueError):
    """A config the stream cannot take; the message says which key and why."""


@dataclass(frozen=True)
class StreamSettings:
    sample_rate: int = 16000  # Hz of the PCM the client sends
    words: bool = True  # results list their words (Vosk's "result")
    alternatives: int = 0  # N > 0: results as the N best alternatives
    steering: Steering | None = field(default=None, compare=False)  # this stream's hotwords and grammar


def sample_rate(config: dict) -> int:
    rate = config.get("sample_rate", 16000)
    number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
    if not number or not MIN_RATE <= rate <= MAX_RATE or rate != int(rate):
        raise ConfigError(f"config.sample_rate must be a whole number of Hz in {MIN_RATE}..{MAX_RATE}, "
                          f"got {json.dumps(rate)}")
    return int(rate)


def alternatives(config: dict) -> int:
    n = config.get("max_alternatives", 0)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_ALTERNATIVES:
        raise ConfigError(f"config.max_alternatives must be a whole number in 0..{MAX_ALTERNATIVES}, "
                          f"got {json.dumps(n)[:40]}")
    return n


def words(config: dict) -> bool:
    value = config.get("words", True)
    if value not in (True, False, 0, 1):
        raise ConfigError(f"config.words must be true or false, got {json.dumps(value)[:40]}")
    return bool(value)


def steering(config: dict, decoder: Decoder) -> Steering | None:
    """The stream's hotwords and phrase_list, checked against the decoder's vocabulary."""
    hot, grammar = config.get("hotwords"), config.get("phrase_list")
    if hot is not None and not isinstance(hot, str) and (not isinstance(hot, list)
                                                         or not all(isinstance(h, str) for h in hot)):
        raise ConfigError(f"config.hotwords must be a list of PHRASE[:SCORE] strings, got {json.dumps(hot)[:60]}")
    hotwords = split_hotwords(hot) if isinstance(hot, str) else hot and [parse_hotword(h) for h in hot]
    try:
        if isinstance(grammar, str):
            grammar = read_grammar(grammar, "config.phrase_list")
        if grammar is not None and (not isinstance(grammar, list) or not all(isinstance(p, str) for p in grammar)):
            raise SteeringError("config.phrase_list", f"expected a list of phrases, got {json.dumps(grammar)[:60]}")
        return decoder.steer(hotwords, grammar, names=("config.hotwords", "config.phrase_list"))
    except SteeringError as e:
        raise ConfigError(str(e)) from e


def read_config(config, decoder: Decoder) -> StreamSettings:
    """A {"config": ...} message's value -> StreamSettings; ConfigError naming the key that is wrong."""
    if not isinstance(config, dict):
        raise ConfigError(f"config must be an object, got {json.dumps(config)[:80]}")
    return StreamSettings(sample_rate(config), words(config), alternatives(config), steering(config, decoder))


def vosk_answer(events: list, partial: str, settings: StreamSettings) -> dict:
    """Vosk's answer to one message: its result (the results it ended, merged into one: with alternatives, the
    last one's, the earlier ones' best texts before each), else the partial hypothesis (unchanged ones too)."""
    finals = [e for e in events if isinstance(e, Final)]
    if not finals:
        return {"partial": partial}
    docs = [f.to_dict(settings.words) for f in finals]
    if not settings.alternatives:
        text = " ".join(d["text"] for d in docs if d["text"])
        return {**({"result": [w for d in docs for w in d["result"]]} if settings.words else {}), "text": text}
    lists = [d.get("alternatives") or [{"confidence": 1.0, **d}] for d in docs]  # an empty result: one, empty
    before = [alts[0] for alts in lists[:-1]]
    return {"alternatives": [_joined(before, a, settings.words) for a in lists[-1]]}


def _joined(before: list[dict], last: dict, words: bool) -> dict:
    """An alternative of the last result, after the best of the results before it in the same answer."""
    text = " ".join(a["text"] for a in [*before, last] if a["text"])
    result = {"result": [w for a in [*before, last] for w in a["result"]]} if words else {}
    return {"confidence": last["confidence"], **result, "text": text}
