"""POST /v1/audio/transcriptions with stream=true (server-sent events read by the real openai client), include[]=
logprobs, timestamp_granularities[]=segment, hotwords / keywords[] / phrase_list; bad steering refused with 400."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from test_serve import CLIPS, TEXTS, client_for, long_file, running_server, transcribe  # noqa: F401 (a fixture)

GMEF = next(c for c in CLIPS if c.stem == "an406-fcaw-b")  # said "rubout g m e f three nine", heard "... g n e f ..."
ABVJ = next(c for c in CLIPS if c.stem == "an437-mjgm-b")  # said "a b v j ninety four", heard "e d v j ..."
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh", "[unk]"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("serve") / "server.log", "--no-access-log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(server):
    return client_for(server)


def stream_events(client, path: Path, **kwargs) -> list:
    with open(path, "rb") as f:
        stream = client.audio.transcriptions.create(file=(path.name, f), model="asr-an4", stream=True, **kwargs)
        return list(stream)


@pytest.mark.parametrize("which", ["clip", "long"])
def test_the_openai_client_streams_deltas_that_join_to_the_answer(client, long_file, which):  # noqa: F811
    path = GMEF if which == "clip" else long_file
    events = stream_events(client, path)
    *deltas, done = events
    assert [e.type for e in deltas] == ["transcript.text.delta"] * len(deltas) and done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas) == done.text == transcribe(client, path).text
    assert len(deltas) == (1 if which == "clip" else len(transcribe(client, path, response_format="verbose_json").segments))
    assert done.usage.type == "tokens" and done.usage.input_tokens > 0 and done.usage.output_tokens == len(done.text)
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens


def test_logprobs_are_the_texts_tokens(client, long_file):  # noqa: F811
    got = transcribe(client, long_file, include=["logprobs"])
    assert "".join(p.token for p in got.logprobs) == got.text and all(p.logprob <= 0 for p in got.logprobs)
    assert all(bytes(map(int, p.bytes)).decode() == p.token for p in got.logprobs)  # the client types them float
    *deltas, done = stream_events(client, long_file, include=["logprobs"])
    assert ["".join(p.token for p in e.logprobs) for e in deltas] == [e.delta for e in deltas]
    assert [p.logprob for p in done.logprobs] == [p.logprob for p in got.logprobs]
    assert getattr(transcribe(client, GMEF), "logprobs", None) is None  # only when asked for


def test_segments_in_openais_shape(client):
    got = transcribe(client, GMEF, response_format="verbose_json", timestamp_granularities=["segment"])
    (seg,) = got.segments
    assert seg.text == got.text and seg.avg_logprob < 0 and seg.compression_ratio > 0 and seg.no_speech_prob == 0
    assert len(seg.tokens) == len(seg.text) and all(isinstance(t, int) for t in seg.tokens)


def test_hotwords_keywords_and_a_phrase_list_steer_one_request_each(client):
    plain = transcribe(client, ABVJ).text
    assert plain == TEXTS[ABVJ.stem] == "e d v j ninety four"
    assert transcribe(client, ABVJ, extra_body={"hotwords": "stop:2, b:2"}).text == "e b v j ninety four"
    assert transcribe(client, ABVJ, keywords=["b v j"]).text == "e b v j ninety four"
    grammar = transcribe(client, ABVJ, extra_body={"phrase_list": json.dumps(DIGITS)}).text
    assert grammar == "[unk] [unk] [unk] [unk] [unk] four"
    *_, done = stream_events(client, ABVJ, extra_body={"hotwords": "b:2"})
    assert done.text == "e b v j ninety four"
    assert transcribe(client, ABVJ).text == plain  # nothing of the requests before is left


def test_a_phrase_list_given_as_a_list_steers_as_its_json_text_does(client):
    """The openai client sends a list in extra_body as one `phrase_list[]` field a phrase (as it sends
    keywords[]): the grammar Vosk's clients give as a list, not a field to ignore."""
    grammar = ["four", "[unk]"]
    as_json = transcribe(client, ABVJ, extra_body={"phrase_list": json.dumps(grammar)}).text
    assert as_json == "[unk] [unk] [unk] [unk] [unk] four"
    assert transcribe(client, ABVJ, extra_body={"phrase_list": grammar}).text == as_json
    assert transcribe(client, ABVJ, extra_body={"phrase_list": ["four"]}).text == "four"


BAD = {  # form fields -> (param, what the message must say)
    "empty hotwords": ({"hotwords": " , "}, "hotwords", "an empty list"),
    "unspellable": ({"hotwords": "café!"}, "hotwords", "cannot spell: '!'"),
    "absurd score": ({"hotwords": "stop:1e9"}, "hotwords", "a score of 1e+09"),
    "10^5 phrases": ({"hotwords": ",".join(["ab"] * 100_000)}, "hotwords", "100000 phrases (at most 10000)"),
    "empty keyword": ({"keywords[]": ""}, "hotwords", "an empty phrase"),
    "grammar not json": ({"phrase_list": "yes, no"}, "phrase_list", "not JSON"),
    "grammar nested too deep": ({"phrase_list": "[" * 5000}, "phrase_list", "not JSON (nested too deeply)"),
    "grammar number too long": ({"phrase_list": "[" + "9" * 5000 + "]"}, "phrase_list",
                                "not JSON (Exceeds the limit (4300 digits)"),
    "empty grammar": ({"phrase_list": "[]"}, "phrase_list", "an empty list of phrases"),
    "grammar digit": ({"phrase_list": '["one", "2"]'}, "phrase_list", "cannot spell"),
    "stream not a boolean": ({"stream": "yes"}, "stream", "stream must be true or false"),
    "include other": ({"include[]": "everything"}, "include[]", "include[] takes logprobs"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_steering_is_a_400_naming_the_field(server, case):
    fields, param, says = BAD[case]
    with open(GMEF, "rb") as f:
        r = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": (GMEF.name, f)},
                       data={"model": "asr-an4", **fields}, timeout=120)
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == param and says in error["message"], error


def test_a_stream_of_unreadable_audio_is_a_400_before_any_event(server):
    r = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("bad.wav", b"RIFF not really a wav file")},
                   data={"model": "asr-an4", "stream": "true"}, timeout=120)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    assert httpx.get(f"{server}/health").json()["in_flight"] == 0


def test_a_stream_whose_client_stops_reading_is_cut_at_its_deadline():
    """stream=true's answer ends by the request's deadline however slowly the client reads: its sending stops, and
    the events' generator is closed at once (its cleanup gives the request's slot back)."""
    import asyncio
    import time

    from asr.serve.events import BoundedResponse

    closed = []

    async def events():
        try:
            while True:
                yield "data: {}\n\n"
        finally:
            closed.append(time.monotonic())

    async def main() -> tuple[float, int]:
        sent = []

        async def send(message):  # the client reads the headers and one event, then nothing
            sent.append(message)
            if len(sent) > 2:
                await asyncio.Event().wait()

        async def receive():
            await asyncio.Event().wait()

        start = time.monotonic()
        response = BoundedResponse(events(), deadline=start + 0.5)
        await asyncio.wait_for(response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send), 10)
        return time.monotonic() - start, len(closed)  # closed by the response, not when the loop ends

    took, closed_by_then = asyncio.run(main())
    assert 0.4 < took < 2.0 and closed_by_then == 1, (took, closed)


def test_a_stream_whose_events_fail_still_has_its_access_line(caplog):
    """uvicorn's access line of a stream=true answer is left out for the one written as it ends; where its events
    raised, none was written at all (a review): now one, 500."""
    import asyncio
    import logging

    from asr.serve.events import BoundedResponse

    async def events():
        yield "data: {}\n\n"
        raise RuntimeError("a fault inside the events")

    async def main() -> None:
        async def send(message):
            pass

        async def receive():
            await asyncio.Event().wait()

        scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "path": "/v1/audio/transcriptions",
                 "client": ("127.0.0.1", 5000)}
        response = BoundedResponse(events(), deadline=asyncio.get_running_loop().time() + 100)
        await response(scope, receive, send)

    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        with pytest.raises(RuntimeError, match="a fault inside the events"):
            asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert lines == ['127.0.0.1:5000 - "POST /v1/audio/transcriptions HTTP/1.1" 500'], lines
