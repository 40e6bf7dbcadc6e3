"""WS /v1/stream's config as Vosk's server takes it (words, max_alternatives, phrase_list) and hotwords, and the
reset message, over a real server and the real `websockets` client; a bad config is one error line and 1007."""

from __future__ import annotations

import asyncio
import json
from argparse import Namespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("websockets")

from asr.audio import load_audio  # noqa: E402
from asr.checkpoint import load_model  # noqa: E402
from asr.decoding import Decoder, decoding_config  # noqa: E402
from asr.serve.stream_config import StreamSettings, vosk_answer  # noqa: E402
from asr.streaming import Final, Transcriber  # noqa: E402
from test_serve import CLIPS, running_server  # noqa: E402
from test_serve_stream import EOF_MESSAGE, chunks, converse, pcm  # noqa: E402

GMEF = next(c for c in CLIPS if c.stem == "an406-fcaw-b")
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh", "[unk]"]


@pytest.fixture(scope="module")
def server(stream_model, tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("log") / "server.log", "--stream-model", str(stream_model),
                        "--no-access-log") as (url, _):
        yield url.replace("http://", "ws://") + "/v1/stream"


@pytest.fixture(scope="module")
def local(stream_model):
    """The stream model and its decoder here in the test: what a stream of the whole clip gives, steered or not."""
    rec = load_model(stream_model)
    decoder = Decoder(decoding_config(Namespace(), rec.metadata, stream_model), rec.vocab)

    def finals(**steer) -> list[Final]:
        events = Transcriber(rec, decoder, steering=decoder.steer(**steer)).events([load_audio(str(GMEF))])
        return [e for e in events if isinstance(e, Final) and e.text]

    return finals


def stream(url: str, config: dict | None, *extra: str) -> tuple[list[dict], int]:
    return asyncio.run(converse(url, [*chunks(pcm(load_audio(str(GMEF)))), *extra, EOF_MESSAGE], config))


def test_alternatives_come_sorted_with_confidences(server, local):
    answers, code = stream(server, {"max_alternatives": 3})
    results = [a for a in answers if "alternatives" in a]
    assert code == 1000 and results and not any("result" in a for a in answers)
    final = results[-1]["alternatives"]
    texts, confidences = [a["text"] for a in final], [a["confidence"] for a in final]
    assert 1 < len(final) <= 3 and len(set(texts)) == len(final) and confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= 1 for c in confidences) and all([w["word"] for w in a["result"]] == a["text"].split()
                                                         for a in final)
    assert " ".join(a["alternatives"][0]["text"] for a in results) == " ".join(f.text for f in local())


def test_words_false_leaves_the_word_list_out(server, local):
    answers, code = stream(server, {"words": False})
    results = [a for a in answers if "text" in a]
    assert code == 1000 and all(set(a) == {"text"} for a in results)
    assert " ".join(a["text"] for a in results if a["text"]) == " ".join(f.text for f in local())


@pytest.mark.parametrize("config, steer", [({"phrase_list": DIGITS}, {"phrase_list": DIGITS}),
                                           ({"phrase_list": json.dumps(DIGITS)}, {"phrase_list": DIGITS}),
                                           ({"hotwords": ["f:3", "rubout"]}, {"hotwords": [("f", 3.0), ("rubout", None)]}),
                                           # one text, items on lines as the HTTP field's (before: one phrase)
                                           ({"hotwords": "rubout\nm:3"}, {"hotwords": [("m", 3.0), ("rubout", None)]})])
def test_a_stream_is_steered_by_its_config_as_here(server, local, config, steer):
    answers, code = stream(server, config)
    text = " ".join(a["text"] for a in answers if a.get("text"))
    assert code == 1000 and text == " ".join(f.text for f in local(**steer))
    if "phrase_list" in config:
        assert text.split() and all(w in DIGITS for w in text.split()) and "[unk]" in text


def test_reset_ends_the_utterance_and_the_stream_goes_on(server):
    data = chunks(pcm(load_audio(str(GMEF))))
    half = len(data) // 2
    answers, code = asyncio.run(converse(server, [*data[:half], '{"reset": 1}', *data[half:], EOF_MESSAGE]))
    reset = answers[half]
    assert code == 1000 and set(reset) == {"result", "text"} and reset["text"]
    assert len(answers) == len(data) + 2 and answers[-1]["text"] and "text" in answers[-1]
    said = " ".join(a["text"] for a in answers if a.get("text")).split()
    assert said[0] == "rubout" and said[-1] == "nine"


BAD = {  # config -> what the error must say
    "empty phrase_list": ({"phrase_list": []}, "an empty list of phrases"),
    "unspellable phrase": ({"phrase_list": ["one", "2"]}, "cannot spell"),
    "10^5 phrases": ({"phrase_list": ["ab"] * 100_000}, "100000 phrases"),
    "phrase_list not a list": ({"phrase_list": 3}, "expected a list of phrases"),
    "unspellable hotword": ({"hotwords": ["x!"]}, "cannot spell"),
    "absurd score": ({"hotwords": ["stop:1e9"]}, "a score of 1e+09"),
    "hotwords not strings": ({"hotwords": [1, 2]}, "config.hotwords must be a list"),
    "negative alternatives": ({"max_alternatives": -1}, "config.max_alternatives"),
    "too many alternatives": ({"max_alternatives": 1000}, "0..20"),
    "words not a boolean": ({"words": "yes"}, "config.words must be true or false"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_config_is_one_error_and_1007(server, case):
    config, says = BAD[case]
    answers, code = asyncio.run(converse(server, [pcm(load_audio(str(GMEF))[:3200])], config))
    assert code == 1007 and len(answers) == 1 and says in answers[0]["error"], answers


def test_results_merged_in_one_answer_keep_alternatives():
    from asr.longform import Alternative
    from asr.longform.timestamps import Word

    a, b = Word("a", 0.1, 0.2, 0.9), Word("b", 0.5, 0.6, 0.8)
    first = Final("a", [a], 1.0, [Alternative("a", 0.7, [a]), Alternative("e", 0.3, [])])
    last = Final("b", [b], 2.0, [Alternative("b", 0.6, [b]), Alternative("d", 0.4, [])])
    merged = vosk_answer([first, last], "", StreamSettings(alternatives=2))["alternatives"]
    assert [(x["text"], x["confidence"]) for x in merged] == [("a b", 0.6), ("a d", 0.4)]
    assert [w["word"] for w in merged[0]["result"]] == ["a", "b"]
    assert vosk_answer([last], "", StreamSettings(words=False, alternatives=2))["alternatives"][0] == {
        "confidence": 0.6, "text": "b"}
