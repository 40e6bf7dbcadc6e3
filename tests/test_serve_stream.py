"""WS /v1/stream: Vosk's protocol over a real server (a child process) and the real `websockets` client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from argparse import Namespace
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
websockets = pytest.importorskip("websockets")

from asr.audio import load_audio, resample  # noqa: E402
from asr.checkpoint import load_model  # noqa: E402
from asr.decoding import Decoder, decoding_config  # noqa: E402
from asr.streaming import Final, Transcriber  # noqa: E402
from test_serve import running_server  # noqa: E402

EOF_MESSAGE = '{"eof": 1}'


@pytest.fixture(scope="module")
def server(stream_model, tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("log") / "server.log", "--stream-model", str(stream_model),
                        "--no-access-log", "--max-peer-streams", "16") as (url, _):
        yield url.replace("http://", "ws://") + "/v1/stream", url


def pcm(samples: np.ndarray) -> bytes:
    """float32 -> 16-bit PCM, exact for the clips (16-bit FLAC): the server hears what load_audio reads."""
    return np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2").tobytes()


async def converse(url: str, messages: list, config: dict | None = None, **connect) -> tuple[list[dict], int | None]:
    """Send `config` (not answered) if given, then each message, reading one answer to each, and after the last
    all that come until the server closes: (answers, close code). `connect`: websockets.connect's arguments."""
    answers = []
    async with websockets.connect(url, **connect) as ws:
        try:
            if config is not None:
                await ws.send(json.dumps({"config": config}))
            for message in messages:
                await ws.send(message)
                if message == EOF_MESSAGE:
                    break
                answers.append(json.loads(await ws.recv()))
            while True:  # what comes before the server closes (ConnectionClosed ends it)
                answers.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed:
            pass
        return answers, ws.close_code


def local_text(stream_model: Path, samples: np.ndarray) -> str:
    """What the model's recommended decoding makes of the samples streamed in one piece, here in the test."""
    rec = load_model(stream_model)
    decoder = Decoder(decoding_config(Namespace(), rec.metadata, stream_model), rec.vocab)
    events = list(Transcriber(rec, decoder).events([samples]))
    return " ".join(e.text for e in events if isinstance(e, Final) and e.text)


def chunks(data: bytes, size: int = 6400) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_stream_answers_every_message_and_ends_with_the_transcript(server, clips, stream_model):
    x = load_audio(clips[0].audio)
    answers, code = asyncio.run(converse(server[0], [*chunks(pcm(x)), EOF_MESSAGE]))
    n = len(chunks(pcm(x)))
    assert all(set(a) in ({"partial"}, {"result", "text"}) for a in answers)
    assert len(answers) >= n + 1 and code == 1000
    final = answers[-1]
    assert final["text"] == local_text(stream_model, x) and final["text"]
    assert [w["word"] for w in final["result"]] == final["text"].split()
    assert all(set(w) == {"word", "start", "end", "conf"} and w["start"] < w["end"] for w in final["result"])
    assert any(a.get("partial") for a in answers[:n]), "no partial hypothesis before the end"


@pytest.mark.parametrize("rate", [8000, 44100])
def test_any_sample_rate_is_resampled(server, clips, stream_model, rate):
    """Audio sent at `rate` is heard as the same samples resampled to 16 kHz in one piece (asr.audio.resample: the
    streaming resampler gives the same samples); at 44.1 kHz, where resampling loses nothing the model uses, that
    is what the model hears of the 16 kHz original."""
    x = load_audio(clips[4].audio)
    sent = pcm(resample(x, 16000, rate))
    answers, code = asyncio.run(converse(server[0], [*chunks(sent), EOF_MESSAGE], {"sample_rate": rate}))
    heard = resample(np.frombuffer(sent, "<i2").astype(np.float32) / 32768, rate, 16000)
    assert code == 1000 and answers[-1]["text"] == local_text(stream_model, heard) != ""
    if rate > 16000:
        assert answers[-1]["text"] == local_text(stream_model, x)


@pytest.mark.parametrize("message,code,said", [
    ("not json", 1007, "not JSON"),
    ("[" * 100_000, 1007, "not JSON (nested too deeply)"),
    ('{"config": {"sample_rate": ' + "9" * 5000 + "}}", 1007, "not JSON (Exceeds the limit (4300 digits)"),
    ('{"config": {"phrase_list": "' + "[" * 5000 + '"}}', 1007, "not JSON (nested too deeply)"),
    (b"\x00\x01\x02", 1007, "even"),
    ('{"config": {"sample_rate": 0}}', 1007, "sample_rate"),
    ('{"config": {"sample_rate": 1e9}}', 1007, "sample_rate"),
    ('{"config": {"sample_rate": 100}}', 1007, "8000..384000"),
    ('{"config": {"sample_rate": "fast"}}', 1007, "sample_rate"),
    ('{"config": 5}', 1007, "config must be an object"),
    ('[1, 2]', 1007, "JSON object"),
    ('{"hello": 1}', 1007, "unknown message"),
])
def test_bad_messages_get_an_error_and_a_close_code_while_other_streams_go_on(server, clips, stream_model,
                                                                             message, code, said):
    x = load_audio(clips[1].audio)
    parts = chunks(pcm(x))

    async def both():
        async with websockets.connect(server[0]) as good:
            for part in parts[: len(parts) // 2]:
                await good.send(part)
                await good.recv()
            bad = await converse(server[0], [message])
            for part in parts[len(parts) // 2 :]:
                await good.send(part)
                await good.recv()
            await good.send(EOF_MESSAGE)
            return bad, [json.loads(a) async for a in good]

    (answers, close), rest = asyncio.run(both())
    assert close == code and said in answers[0]["error"]
    assert rest[-1]["text"] == local_text(stream_model, x)


def test_config_after_audio_is_refused(server, clips):
    x = pcm(load_audio(clips[0].audio))[:6400]
    answers, code = asyncio.run(converse(server[0], [x, '{"config": {"sample_rate": 8000}}']))
    assert code == 1007 and "before the audio" in answers[-1]["error"]


def test_a_stream_with_no_audio_ends_cleanly(server):
    answers, code = asyncio.run(converse(server[0], [EOF_MESSAGE]))
    assert answers == [{"result": [], "text": ""}] and code == 1000


def test_a_config_and_eof_in_one_message_are_both_taken(server):
    """{"config": ..., "eof": 1} got no answer: the config was taken and the eof dropped, so the stream waited for
    --stream-idle-s (a review)."""
    async def config_and_eof():
        async with websockets.connect(server[0]) as ws:
            await ws.send('{"config": {"sample_rate": 8000}, "eof": 1}')
            answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return answer, ws.close_code

    assert asyncio.run(config_and_eof()) == ({"result": [], "text": ""}, 1000)


def test_a_client_that_leaves_mid_stream_does_not_stop_the_server(server, clips, stream_model):
    x = load_audio(clips[2].audio)

    async def leave():
        ws = await websockets.connect(server[0])
        for part in chunks(pcm(x))[:3]:
            await ws.send(part)
        ws.transport.abort()  # gone without a close handshake

    asyncio.run(leave())
    answers, code = asyncio.run(converse(server[0], [*chunks(pcm(x)), EOF_MESSAGE]))
    assert code == 1000 and answers[-1]["text"] == local_text(stream_model, x)
    assert httpx.get(f"{server[1]}/health").json()["streams"] == 0


def test_concurrent_streams_share_model_calls(server, clips, stream_model):
    audio = [load_audio(u.audio) for u in clips]

    async def all_streams():
        return await asyncio.gather(*[converse(server[0], [*chunks(pcm(x), 3200), EOF_MESSAGE]) for x in audio * 2])

    results = asyncio.run(all_streams())
    for x, (answers, code) in zip(audio * 2, results):
        assert code == 1000 and answers[-1]["text"] == local_text(stream_model, x)
    health = httpx.get(f"{server[1]}/health").json()
    assert health["stream_largest_batch"] > 1, health


def test_a_server_without_a_streaming_model_says_so(tmp_path):
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--no-access-log") as (url, _):
        answers, code = asyncio.run(converse(url.replace("http://", "ws://") + "/v1/stream", []))
    assert code == 1008 and "no streaming model" in answers[0]["error"]


def key_protocols(key: str) -> list[str]:
    """The subprotocols a browser offers to send `key` (the page's keyProtocols)."""
    return ["asr", "asr.bearer." + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")]


def test_a_server_with_an_api_key_wants_it_on_the_stream_too_never_in_the_url_or_log(stream_model, tmp_path):
    """The key comes as a header or a subprotocol (the page's way); in the URL it is refused, and the access log
    (on here) never prints it."""
    key = "sesame/+=key"  # base64url needs its padding put back; not a token a subprotocol could carry as it is
    with running_server(tmp_path / "server.log", "--stream-model", str(stream_model), "--api-key", key) as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"
        refused, code = asyncio.run(converse(ws_url, []))
        wrong, wrong_code = asyncio.run(converse(ws_url, [], subprotocols=key_protocols("open")))
        in_url, url_code = asyncio.run(converse(ws_url + "?api_key=" + key, []))
        page, ok = asyncio.run(converse(ws_url, [EOF_MESSAGE], subprotocols=key_protocols(key)))
        header, ok_too = asyncio.run(converse(ws_url, [EOF_MESSAGE], additional_headers={"Authorization": f"Bearer {key}"}))
        http = httpx.get(f"{url}/v1/models?api_key={key}")  # a REST client that puts it in the URL: logged without it
        garbled, garbled_code = asyncio.run(converse(ws_url, [], subprotocols=["asr", "asr.bearer.!!!!"]))
    assert code == wrong_code == url_code == garbled_code == 1008
    assert "must carry the key in base64url" in garbled[0]["error"], garbled  # not "a missing API key"
    assert "missing API key" in refused[0]["error"] and "incorrect API key" in wrong[0]["error"]
    assert "in the URL is refused" in in_url[0]["error"] and http.status_code == 401
    assert ok == ok_too == 1000 and page == header == [{"result": [], "text": ""}]
    log = (tmp_path / "server.log").read_text()
    assert "api_key=***" in log and '"WebSocket /v1/stream" [accepted]' in log
    assert "sesame" not in log, log


def test_a_silent_stream_is_closed_after_stream_idle_s_and_a_talking_one_is_not(stream_model, clips, tmp_path):
    """Silence is no audio: a stream that sends nothing, or only empty messages (each answered), is closed."""
    x = pcm(load_audio(clips[2].audio))

    async def silent(url: str, empty_every_s: float | None = None):
        said = {}
        async with websockets.connect(url) as ws:
            try:
                for _ in range(100):  # 100 x 0.15 s at most (the test's wait_for ends it sooner)
                    if empty_every_s is not None:
                        with contextlib.suppress(websockets.ConnectionClosed):  # closed: its error is still to read
                            await ws.send(b"")
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), empty_every_s or 10))
                    except asyncio.TimeoutError:  # cancelling recv loses nothing (websockets)
                        continue
                    said = message if "error" in message else said
                    await asyncio.sleep(empty_every_s or 0)  # answered at once: the next one comes in its time
            except websockets.ConnectionClosed:
                pass
            return said, ws.close_code

    async def talking(url: str):  # a message every 0.3 s, each well within the 1.5 s allowed
        async with websockets.connect(url) as ws:
            for part in [*chunks(x, 8000), EOF_MESSAGE]:
                await asyncio.sleep(0.3)
                await ws.send(part)
            return [json.loads(a) async for a in ws], ws.close_code

    with running_server(tmp_path / "server.log", "--stream-model", str(stream_model), "--stream-idle-s", "1.5",
                        "--no-access-log") as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def all_three():
            return await asyncio.wait_for(asyncio.gather(silent(ws_url), silent(ws_url, 0.15), talking(ws_url)), 30)

        (said, code), (said_empty, code_empty), (answers, ok) = asyncio.run(all_three())
        assert httpx.get(f"{url}/health").json()["streams"] == 0
    assert code == code_empty == 1008 and "no audio for 1.5 s" in said["error"] and "no audio" in said_empty["error"]
    assert ok == 1000 and answers[-1]["text"] == local_text(stream_model, load_audio(clips[2].audio))

def test_one_answer_per_message_merges_the_results_it_ended():
    from asr.longform.timestamps import Word
    from asr.serve.stream_config import StreamSettings, vosk_answer

    finals = [Final("a b", [Word("a", 0.1, 0.2, 0.9), Word("b", 0.3, 0.4, 0.8)], 1.0), Final("", [], 2.0),
              Final("c", [Word("c", 2.5, 2.6, 0.7)], 3.0)]
    merged = vosk_answer(finals, "", StreamSettings())
    assert merged["text"] == "a b c" and [w["word"] for w in merged["result"]] == ["a", "b", "c"]


def test_a_message_of_more_than_five_seconds_is_refused(server, clips):
    too_long = pcm(np.zeros(16000 * 6, np.float32))
    answers, code = asyncio.run(converse(server[0], [too_long]))
    assert code == 1009 and "at most 5 s" in answers[0]["error"]


async def close_of(url: str, messages: list) -> tuple[list[dict], int | None, str | None]:
    """Send the messages, read all that comes: (answers, the close frame's code and reason text)."""
    async with websockets.connect(url) as ws:
        for message in messages:
            await ws.send(message)
        answers = []
        try:
            async for answer in ws:
                answers.append(json.loads(answer))
        except websockets.ConnectionClosedError:  # any close but 1000 ends the loop so
            pass
        return answers, ws.close_code, ws.close_reason


@pytest.mark.parametrize("message,code", [
    ("not json", 1007),
    ("é" * 100, 1007),  # the error quotes the message: past the 123 bytes a close reason may hold
    (b"\x00\x01\x02", 1007),
    (EOF_MESSAGE, 1000),
])
def test_every_close_carries_a_reason_of_at_most_123_bytes(server, message, code):
    """The close frame itself says why (RFC 6455: at most 123 bytes of UTF-8), not only the error message before it:
    a client that reads only the close still knows."""
    answers, got, reason = asyncio.run(close_of(server[0], [message]))
    assert got == code and reason and len(reason.encode()) <= 123
    if code == 1000:
        assert answers == [{"result": [], "text": ""}] and "end of stream" in reason
    else:
        error = answers[0]["error"]
        assert reason == error if len(error.encode()) <= 123 else error.startswith(reason.removesuffix("..."))


def test_text_frames_that_are_not_utf8_close_1007_and_log_one_line_not_a_traceback_each(stream_model, tmp_path):
    """uvicorn logs each such frame with a traceback: eight clients sending one made eight tracebacks; now the
    first is one line and the rest are counted in the next notice (asr.serve.guard's Notices)."""
    from websockets.frames import Frame, Opcode

    async def bad_frame(url: str) -> int | None:
        async with websockets.connect(url) as ws:
            ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe not utf-8"))
            ws.send_data()
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    log = tmp_path / "server.log"
    with running_server(log, "--stream-model", str(stream_model), "--no-access-log") as (url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"
        codes = [asyncio.run(bad_frame(ws_url)) for _ in range(8)]
        good, code = asyncio.run(converse(ws_url, [EOF_MESSAGE]))
    text = log.read_text()
    assert codes == [1007] * 8 and code == 1000 and "Traceback" not in text, text[-3000:]
    assert text.count("not UTF-8") == 1, text[-3000:]
