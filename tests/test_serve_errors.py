"""python -m asr.serve refuses bad requests in OpenAI's error shape, with the right status, and each is followed by a
good request that still succeeds; bad requests alongside good ones do not disturb them."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from test_audio_limits import BAD  # the WAVs every door refuses with the same line
from test_serve import CLIPS, ROOT, TEXTS, client_for, running_server  # tests/ is on sys.path under pytest
from test_serve_faults import answer_of, error_of

openai = pytest.importorskip("openai")

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
AUTH_LINE = f"Authorization: Bearer {KEY}\r\n".encode()
GOOD = CLIPS[4]  # 2.5 s; CLIPS[0] (4.0 s) is over the server's --max-seconds
LIMIT_MB = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(log, "--api-key", KEY, "--max-upload-mb", str(LIMIT_MB), "--max-seconds", "3.5") as (url, _):
        yield url


def audio_bytes(kind: str) -> bytes:
    """Uploads that are not good audio."""
    flac = GOOD.read_bytes()
    if kind == "text":
        return b"this is a text file, not audio\n" * 20
    if kind == "truncated_flac":
        return flac[: len(flac) // 2]
    if kind == "truncated_wav":
        buf = io.BytesIO()
        sf.write(buf, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
        return buf.getvalue()[:20000]  # the header declares 32000 bytes of samples
    if kind == "m4a":
        return b"\0\0\0\x20ftypM4A " + bytes(200)
    raise ValueError(kind)


def post(url: str, files: dict | None = None, data: dict | None = None, headers: dict | None = None,
         **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/transcriptions", files=files, data=data, headers=AUTH | (headers or {}),
                      timeout=60, **kwargs)


def good(url: str) -> None:
    """A good request right after a bad one still succeeds."""
    r = post(url, files={"file": (GOOD.name, GOOD.read_bytes())}, data={"model": "asr-an4"})
    assert (r.status_code, r.json()) == (200, {"text": TEXTS[GOOD.stem]})


def chunks(size: int) -> Iterator[bytes]:
    """A valid multipart body with a file of `size` bytes, sent chunked (no Content-Length)."""
    yield (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\n'
           b'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n')
    for _ in range(size // 65536):
        yield bytes(65536)
    yield b"\r\n--b--\r\n"


CLIP = (GOOD.name, GOOD.read_bytes())
CASES = {  # name -> (keyword arguments of post(), status, error code, param, words the message must hold)
    "no_file": (dict(files={"model": (None, "asr-an4")}), 400, "missing_file", "file", "file"),
    "file_as_text_field": (dict(files={"model": (None, "asr-an4"), "file": (None, "abc")}), 400, "invalid_file_format", "file", "file"),
    "empty_file": (dict(files={"file": ("e.wav", b"")}, data={"model": "asr-an4"}), 400, "empty_file", "file", "e.wav"),
    "not_audio": (dict(files={"file": ("notes.wav", audio_bytes("text"))}, data={"model": "asr-an4"}), 400,
                  "invalid_file_format", "file", "notes.wav: not readable as audio"),
    "truncated_flac": (dict(files={"file": ("cut.flac", audio_bytes("truncated_flac"))}, data={"model": "asr-an4"}),
                       400, "corrupt_audio", "file", "cut.flac"),
    "truncated_wav": (dict(files={"file": ("cut.wav", audio_bytes("truncated_wav"))}, data={"model": "asr-an4"}), 400,
                      "corrupt_audio", "file", "truncated"),
    "m4a": (dict(files={"file": ("talk.m4a", audio_bytes("m4a"))}, data={"model": "asr-an4"}), 400,
            "invalid_file_format", "file", "ffmpeg"),
    "response_format": (dict(files={"file": CLIP}, data={"model": "asr-an4", "response_format": "xml"}), 400,
                        "invalid_value", "response_format", "verbose_json"),
    "granularity": (dict(files={"file": CLIP}, data={"model": "asr-an4", "timestamp_granularities[]": "char"}), 400,
                    "invalid_value", "timestamp_granularities[]", "char"),
    "language": (dict(files={"file": CLIP}, data={"model": "asr-an4", "language": "fr"}), 400,
                 "unsupported_language", "language", "English"),
    "stream": (dict(files={"file": CLIP}, data={"model": "asr-an4", "stream": "maybe"}), 400, "invalid_value", "stream",
               "true or false"),
    **{f"temperature_{t}": (dict(files={"file": CLIP}, data={"model": "asr-an4", "temperature": t}), 400,
                            "invalid_value", "temperature", "from 0 to 1") for t in ("abc", "nan", "1e309", "-1", "2")},
    "no_model": (dict(files={"file": CLIP}), 400, "missing_model", "model", "asr-an4"),
    "unknown_model": (dict(files={"file": CLIP}, data={"model": "gpt-4o-transcribe"}), 404, "model_not_found", "model",
                      "'asr-an4'"),
    "too_large": (dict(files={"file": ("big.wav", bytes(int(LIMIT_MB * 1e6)))}, data={"model": "asr-an4"}), 413,
                  "file_too_large", "file", "0.5 MB"),
    "too_large_chunked": (dict(content=chunks(int(LIMIT_MB * 2e6)), headers={"content-type": "multipart/form-data; "
                               "boundary=b"}), 413, "file_too_large", "file", "--max-upload-mb"),
    "too_long": (dict(files={"file": (CLIPS[0].name, CLIPS[0].read_bytes())}, data={"model": "asr-an4"}), 400,
                 "audio_too_long", "file", "4.0 s"),
    "malformed_multipart": (dict(content=b"garbage, no parts", headers={"content-type": "multipart/form-data; boundary=b"}),
                            400, "invalid_multipart", None, "multipart"),
    "no_boundary": (dict(content=b"x", headers={"content-type": "multipart/form-data"}), 400, "invalid_multipart", None,
                    "boundary"),
    "json_body": (dict(json={"model": "asr-an4"}), 415, "unsupported_content_type", None, "application/json"),
    "boundary_too_long": (dict(content=b"x", headers={"content-type": "multipart/form-data; boundary=" + "b" * 300}),
                          400, "invalid_multipart", None, "Boundary length 300"),
    "no_closing_boundary": (dict(content=b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nasr-an4\r\n"
                                 b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.flac\"\r\n\r\n"
                                 + CLIP[1][: len(CLIP[1]) // 2], headers={"content-type": "multipart/form-data; boundary=b"}),
                            400, "invalid_multipart", None, "closing boundary"),
    **{f"wav_{bad}": (dict(files={"file": (f"{bad}.wav", data)}, data={"model": "asr-an4"}), 400,
                      "corrupt_audio" if bad == "huge_float" else "invalid_file_format", "file", f"{bad}.wav: {said}")
       for bad, (data, said) in BAD.items()},
    "no_key": (dict(files={"file": CLIP}, data={"model": "asr-an4"}, headers={"Authorization": ""}), 401,
               "missing_api_key", None, "API key"),
    "wrong_key": (dict(files={"file": CLIP}, data={"model": "asr-an4"}, headers={"Authorization": "Bearer nope"}), 401,
                  "invalid_api_key", None, "incorrect"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_bad_request_gets_an_openai_error_and_the_next_good_one_succeeds(server, name):
    kwargs, status, code, param, words = CASES[name]
    if name == "too_large_chunked":
        kwargs = kwargs | {"content": chunks(int(LIMIT_MB * 2e6))}  # a fresh generator each run
    r = post(server, **kwargs)
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["param"]) == (status, code, param), error
    assert set(error) == {"message", "type", "param", "code"} and words in error["message"], error
    assert error["type"] == ("authentication_error" if status == 401 else "invalid_request_error")
    good(server)


def test_the_openai_client_raises_its_own_errors_for_them(server):
    client = client_for(server, KEY)
    with pytest.raises(openai.NotFoundError) as e:
        client.audio.transcriptions.create(file=CLIP, model="tiny")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        client_for(server, "wrong").audio.transcriptions.create(file=CLIP, model="asr-an4")
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(file=("x.wav", b"not audio at all, just bytes" * 10), model="whisper-1")
    assert e.value.body["code"] == "invalid_file_format"
    assert client.audio.transcriptions.create(file=CLIP, model="whisper-1").text == TEXTS[GOOD.stem]


def test_other_routes_answer_in_the_same_shape(server):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    assert httpx.get(f"{server}/v1/models", headers=AUTH).json()["data"][0]["id"] == "asr-an4"
    r = httpx.get(f"{server}/v1/nowhere", headers=AUTH)
    assert r.status_code == 404 and "unknown request URL" in r.json()["error"]["message"]
    r = httpx.get(f"{server}/v1/audio/transcriptions", headers=AUTH)
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(f"{server}/health").status_code == 200  # no key needed: for probes


def test_bad_requests_alongside_good_ones_do_not_disturb_them(server):
    """Poison samples (a float WAV of 3e38) among them too: a 400 of its own, and no batch re-run for it."""
    bad = [CASES[name][0] for name in ("not_audio", "truncated_flac", "too_long", "unknown_model", "wav_huge_float")]
    good_ones = [dict(files={"file": (c.name, c.read_bytes())}, data={"model": "asr-an4"}) for c in CLIPS[1:]]
    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(lambda kw: post(server, **kw), bad + good_ones))
    assert [r.status_code for r in answers] == [400, 400, 400, 404, 400] + [200] * len(good_ones)
    assert answers[4].json()["error"]["code"] == "corrupt_audio"
    assert [r.json()["text"] for r in answers[len(bad):]] == [TEXTS[c.stem] for c in CLIPS[1:]]
    assert httpx.get(f"{server}/health").json()["reruns"] == 0


def test_a_segment_with_bad_samples_never_reaches_a_batch(monkeypatch):
    """Whatever reads the file, transcribe_file checks each segment's samples before the Batcher sees them."""
    import asyncio

    from asr.longform import Segment
    from asr.serve import jobs

    good = Segment(0, np.zeros(16000, np.float32), None)
    poison = Segment(16000, np.full(16000, 3e38, np.float32), None)
    monkeypatch.setattr(jobs, "file_duration", lambda path: 2.0)
    monkeypatch.setattr(jobs, "file_segments", lambda path, cfg, read: (s for s in [good, poison]))  # a generator

    class Batcher:
        seen = []

        async def submit(self, segment, owner=None):
            self.seen.append(segment)
            return [], 1

    with pytest.raises(jobs.APIError) as e:
        asyncio.run(jobs.transcribe_file("/tmp/x.wav", "x.wav", Batcher()))
    assert (e.value.status, e.value.code) == (400, "corrupt_audio") and "x.wav: samples reach 3e+38" in e.value.message
    assert [segment for segment, _ in Batcher.seen] == [good]  # (segment, its request's steering)


def test_a_model_that_cannot_be_loaded_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "missing.pt"
    proc = subprocess.run([sys.executable, "-m", "asr.serve", "--model", str(missing)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"error: {missing}") and proc.stderr.count("\n") == 1, proc.stderr


def test_text_fields_are_bounded_each_and_in_all(tmp_path):
    """A form's text fields are held in memory: one over MAX_FIELD_BYTES, or all of them over MAX_TEXT_BYTES, is
    refused as the parts arrive; 10,000 hotwords (about 100 KB) fit."""
    import python_multipart

    from asr.serve import upload

    def parse(fields: dict[str, str]) -> upload._Form:
        form = upload._Form(tmp_path)
        parser = python_multipart.MultipartParser(b"b", form.callbacks())
        for name, value in fields.items():
            parser.write(f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parser.write(b"--b--\r\n")
        parser.finalize()
        return form

    hotwords = ",".join(["rubout"] * 10_000)
    assert parse({"hotwords": hotwords}).getlist("hotwords") == [hotwords]
    with pytest.raises(upload._Invalid, match="'hotwords' is longer than 1024 KB"):
        parse({"hotwords": "x" * (upload.MAX_FIELD_BYTES + 1)})
    with pytest.raises(upload._Invalid, match="text fields are longer than 2048 KB in all"):
        parse({f"f{i}": "x" * (upload.MAX_FIELD_BYTES - 10) for i in range(3)})


def test_reading_a_duration_and_making_steering_run_off_the_event_loop(monkeypatch):
    """What may take long for one request is done in a worker thread, not on the event loop that serves everyone:
    the duration of a file (its header read) and a request's or a stream's steering (10,000
    hotwords: about 0.4 s). The routes are driven in-process (Starlette's TestClient)."""
    import asyncio

    from fastapi.testclient import TestClient

    from asr.serve import app, jobs, stream
    from asr.serve.__main__ import load, load_stream
    from asr.serve.config import ServeConfig

    where = []

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    real_duration, real_steering, real_config = jobs.file_duration, app.request_steering, stream.configure
    monkeypatch.setattr(stream, "configure",
                        lambda config, decoder: where.append(("config", on_loop())) or real_config(config, decoder))
    monkeypatch.setattr(jobs, "file_duration", lambda path: where.append(("duration", on_loop())) or real_duration(path))
    monkeypatch.setattr(app, "request_steering",
                        lambda decoder, fields: where.append(("steering", on_loop())) or real_steering(decoder, fields))
    cfg = ServeConfig()
    with TestClient(app.create_app(cfg, *load(cfg), stream=load_stream(cfg))) as client:
        r = client.post("/v1/audio/transcriptions", files={"file": (GOOD.name, GOOD.read_bytes())},
                        data={"model": "asr-an4", "hotwords": "rubout"})
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_json({"config": {"hotwords": ["rubout"]}})
            ws.send_json({"eof": 1})
            last = ws.receive_json()
    assert r.status_code == 200 and r.json() == {"text": TEXTS[GOOD.stem]}, r.text
    assert last == {"result": [], "text": ""}
    assert sorted(where) == [("config", False), ("duration", False), ("steering", False)]


def test_the_server_takes_transcribes_default_threads():
    """Left out, --threads is chosen as transcribe's is (1 on two cores, where torch's own choice of 2 fought the
    server's other work; a newcomer found the server on 2 threads where the README advises 1)."""
    from asr.cli import default_threads
    from asr.serve.__main__ import parse_args

    assert parse_args([]).threads == default_threads()
    assert parse_args(["--threads", "3"]).threads == 3


@pytest.mark.parametrize("flags, says", [
    (["--max-wait-ms", "1e300"], "--max-wait-ms must be at most 60000"),  # it ended the model thread
    (["--max-request-s", "1e300"], "--max-request-s must be at most 1e+07"),
    (["--stream-idle-s", "1e8"], "--stream-idle-s must be at most"),
    (["--port", "70000"], "--port must be 1-65535"),  # a traceback from bind() once the models were loaded
    (["--api-key", ""], "--api-key must be printable ASCII"),  # every request got 401
    (["--api-key", "clé"], "--api-key must be printable ASCII"),  # the right key got 401: headers are not UTF-8
    (["--api-key", "two words"], "--api-key must be printable ASCII"),
])
def test_flag_values_no_server_can_use_are_refused_at_start(flags, says, capsys):
    from asr.serve.__main__ import parse_args

    with pytest.raises(SystemExit) as done:
        parse_args(flags)
    assert done.value.code == 2 and says in capsys.readouterr().err.splitlines()[-1]
    assert parse_args(["--max-wait-ms", "60000", "--port", "65535", "--api-key", "k3y!~"]).max_wait_ms == 60000


def test_an_address_the_server_cannot_listen_on_is_one_line_before_the_models_load(monkeypatch, capsys):
    """An unknown --host, or a --port another process holds, was uvicorn's ERROR line after the models had loaded and
    the limits were printed, and exit 3 (an audit)."""
    import socket

    from asr.serve import __main__ as door

    monkeypatch.setattr(door, "load", lambda cfg: pytest.fail("the models loaded"))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert door.main(["--port", str(port)]) == 2
        assert capsys.readouterr().err == (f"error: --host 127.0.0.1 --port {port}: cannot listen there (address "
                                           "already in use)\n")
    assert door.main(["--host", "999.1.1.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --host 999.1.1.1: not an address of this machine, nor a name it can resolve (")
    assert err.count("\n") == 1, err


MULTIPART = b"Content-Type: multipart/form-data; boundary=b\r\n"
EARLY = {  # answers sent before the body is read: (request head, the part of the body sent, status, code)
    "too_large_by_length": (MULTIPART + b"Content-Length: 200000000\r\nExpect: 100-continue\r\n" + AUTH_LINE, b"",
                            413, "file_too_large"),
    "not_multipart": (b"Content-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n" + AUTH_LINE,
                      b"", 415, "unsupported_content_type"),
    "no_boundary": (b"Content-Type: multipart/form-data\r\nContent-Length: 50000\r\n" + AUTH_LINE, b"--b\r\n" * 200,
                    400, "invalid_multipart"),
    "wrong_boundary": (b"Content-Type: multipart/form-data; boundary=other\r\nContent-Length: 50000\r\n" + AUTH_LINE,
                       b"--b\r\n" * 200, 400, "invalid_multipart"),
    "two_files_early": (MULTIPART + b"Content-Length: 50000\r\n" + AUTH_LINE,
                        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n' * 2,
                        400, "invalid_multipart"),
    "missing_key": (MULTIPART + b"Content-Length: 50000\r\n", b"--b\r\n" * 200, 401, "missing_api_key"),
}


@pytest.mark.parametrize("name", EARLY)
def test_an_answer_before_the_whole_body_closes_the_connection(server, name):
    """RFC 9110 10.1.1: a server that answers before reading the body closes the connection (else the rest of the
    body, or the next request of a client that never sent it after Expect: 100-continue, would be read as the
    following request): the answer says Connection: close and the connection ends at once."""
    head, sent, status, code = EARLY[name]
    with socket.create_connection(("127.0.0.1", int(server.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\n" + head + b"\r\n" + sent)
        start = time.monotonic()
        said = answer_of(s)  # until the server closes (or 10 s)
        took = time.monotonic() - start
    assert said.startswith(b"HTTP/1.1 %d" % status) and error_of(said)[0] == code, said
    assert b"\r\nconnection: close\r\n" in said.split(b"\r\n\r\n")[0].lower() + b"\r\n" and took < 5, (took, said)
    good(server)


def test_head_works_wherever_get_does_and_the_stream_url_says_it_is_a_websocket(server):
    """RFC 9110 9.1: HEAD is answered as GET, without the body. GET /v1/stream without an Upgrade header is a 426
    that says the endpoint is a WebSocket (not a 404 unknown_url)."""
    for path, headers in [("/health", {}), ("/", {}), ("/v1/models", AUTH), ("/v1/models/whisper-1", AUTH)]:
        get, head = httpx.get(f"{server}{path}", headers=headers), httpx.head(f"{server}{path}", headers=headers)
        assert (get.status_code, head.status_code, head.content) == (200, 200, b""), (path, head)
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert httpx.head(f"{server}/v1/models").status_code == 401  # the key is asked for as by GET
    for method in ("GET", "HEAD"):
        r = httpx.request(method, f"{server}/v1/stream")
        assert r.status_code == 426 and r.headers["upgrade"].lower() == "websocket", (method, r.headers)
    error = httpx.get(f"{server}/v1/stream").json()["error"]
    assert error["code"] == "upgrade_required" and "WebSocket" in error["message"], error
