"""python -m asr.serve: a real uvicorn server on 127.0.0.1 and the real openai client. Transcripts, subtitles and
word times equal the CLI's for the same files; simultaneous requests are batched; SIGTERM lets requests finish."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[1]
CLIPS_DIR = ROOT / "tests" / "data" / "an4"
CLIPS = sorted(CLIPS_DIR.glob("*.flac"))
TEXTS = {  # what the shipped model hears in each clip (the CLI's transcripts, checked in cli_outputs)
    "an406-fcaw-b": "rubout g n e f three nine", "an437-mjgm-b": "e d v j ninety four", "an440-mjgm-b": "stop",
    "cen4-fcaw-b": "m e l v i n", "cen7-mjgm-b": "six eight three three oh seven five",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started_server(log: Path, flags: tuple[str, ...], env: dict | None) -> tuple[str, subprocess.Popen] | None:
    """`python -m asr.serve` on a port that was free a moment ago, once /health answers; None if another process
    took the port before the server (seconds later, once torch and the models are loaded) could bind it."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "asr.serve", "--port", str(port), "--threads", "1", *flags],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url, proc
        except httpx.TransportError:
            time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
        proc.wait(60)
        raise AssertionError(f"the server did not answer in 120 s:\n{log.read_text()}")
    if "address already in use" in log.read_text().lower():
        return None
    raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()}")


@contextmanager
def running_server(log: Path, *flags: str, env: dict | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m asr.serve` in a child process on a free port (in `env`, else this one's); yields its URL once
    /health answers. A port taken meanwhile by another process (the other test worker's connections) is tried
    again, on another port, up to three times."""
    started = None
    for _ in range(3):
        started = started or started_server(log, flags, env)
    assert started, f"three free ports were taken before the server could bind them:\n{log.read_text()}"
    url, proc = started
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def client_for(url: str, key: str = "unused"):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def clips_joined(path: Path, times: int, silence_s: float) -> Path:
    """The five clips `times` over, each followed by `silence_s` of silence, written to `path` (16 kHz FLAC)."""
    silence = np.zeros(round(silence_s * 16000), dtype=np.float32)
    waves = [sf.read(c, dtype="float32")[0] for c in CLIPS] * times
    sf.write(path, np.concatenate([x for w in waves for x in (w, silence)]), 16000)
    return path


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """The five clips three times over with a second of silence between them (about 50 s: cut into segments)."""
    return clips_joined(tmp_path_factory.mktemp("long") / "long.flac", 3, 1.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("serve") / "server.log", "--max-wait-ms", "150") as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(server):
    return client_for(server)


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory, long_file) -> dict[str, dict[str, str]]:
    """python -m asr.transcribe --format all on the clips and the long file: name -> {"txt", "json", "srt", "vtt"}."""
    out = tmp_path_factory.mktemp("cli")
    subprocess.run([sys.executable, "-m", "asr.transcribe", "--format", "all", "--output-dir", str(out), "--quiet",
                    "--threads", "1", *map(str, CLIPS), str(long_file)], cwd=ROOT, check=True)
    outputs = {f.stem: {} for f in out.iterdir()}
    for f in out.iterdir():
        outputs[f.stem][f.suffix[1:]] = f.read_text()
    assert {name: json.loads(o["json"])["text"] for name, o in outputs.items() if name in TEXTS} == TEXTS
    return outputs


def transcribe(client, path: Path, **kwargs):
    with open(path, "rb") as f:
        return client.audio.transcriptions.create(file=(path.name, f), model=kwargs.pop("model", "asr-an4"), **kwargs)


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.stem)
def test_json_and_text_equal_the_cli(client, cli_outputs, clip):
    assert transcribe(client, clip).text == json.loads(cli_outputs[clip.stem]["json"])["text"]
    assert transcribe(client, clip, response_format="text", model="whisper-1") == cli_outputs[clip.stem]["txt"]


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_equal_the_cli(client, cli_outputs, long_file, fmt):
    for path in (CLIPS[0], long_file):
        assert transcribe(client, path, response_format=fmt) == cli_outputs[path.stem][fmt]


def test_verbose_json_has_the_cli_segments_and_word_times(client, cli_outputs, long_file):
    for path in (CLIPS[4], long_file):
        cli = json.loads(cli_outputs[path.stem]["json"])
        got = transcribe(client, path, response_format="verbose_json", timestamp_granularities=["word"], language="en")
        assert (got.task, got.language, got.duration, got.text) == ("transcribe", "english", cli["duration"], cli["text"])
        assert [(s.id, s.start, s.end, s.text) for s in got.segments] == [
            (i, s["start"], s["end"], s["text"]) for i, s in enumerate(cli["segments"])]
        assert [(w.word, w.start, w.end) for w in got.words] == [
            (w["word"], w["start"], w["end"]) for s in cli["segments"] for w in s["words"]]
    assert len(cli["segments"]) > 1, "the long file should be cut into several segments"
    plain = transcribe(client, CLIPS[4], response_format="verbose_json", prompt="ignored", temperature=0.7)
    assert plain.words is None and plain.text == TEXTS[CLIPS[4].stem]


def test_models_health_and_the_page(server, client):
    assert [(m.id, m.object, m.owned_by) for m in client.models.list()] == [("asr-an4", "model", "asr")]
    health = httpx.get(f"{server}/health").json()
    assert (health["status"], health["model"]) == ("ok", "asr-an4")
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_a_model_is_retrieved_by_its_id_as_openai_answers(server, client):
    """GET /v1/models/{id}: the served model (and whisper-1, its alias) as OpenAI describes one; any other id is a
    404 in OpenAI's error shape, code model_not_found."""
    listed = client.models.list().data[0]
    assert client.models.retrieve("asr-an4") == listed
    alias = client.models.retrieve("whisper-1")
    assert (alias.id, alias.object, alias.owned_by, alias.created) == ("whisper-1", "model", "asr", listed.created)
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o-transcribe")
    error = e.value.body
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "model_not_found", "model")
    assert "'gpt-4o-transcribe'" in error["message"] and "'asr-an4'" in error["message"]


def test_in_flight_counts_down_when_a_request_is_answered_or_refused(server, client):
    transcribe(client, CLIPS[2])
    refused = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": ("empty.wav", b"")},
                         data={"model": "asr-an4"})
    assert refused.status_code == 400
    assert httpx.get(f"{server}/health").json()["in_flight"] == 0

def test_simultaneous_requests_are_batched_and_all_answered_right(server, client):
    n, before = 8, httpx.get(f"{server}/health").json()
    clips = [CLIPS[i % len(CLIPS)] for i in range(n)]
    start = threading.Barrier(n)

    def one(path: Path):
        start.wait()
        with open(path, "rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(file=(path.name, f), model="asr-an4")
        return raw.parse().text, int(raw.headers["x-asr-batch-size"])

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, clips))
    after = httpx.get(f"{server}/health").json()
    assert [text for text, _ in answers] == [TEXTS[c.stem] for c in clips]
    assert max(size for _, size in answers) >= 2, answers
    assert after["segments"] - before["segments"] == n
    assert after["batches"] - before["batches"] < n


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(tmp_path):
    # A batch waits 5 s for company, so the one request is surely still in flight when SIGTERM comes.
    with running_server(tmp_path / "server.log", "--max-wait-ms", "5000") as (url, proc):
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(transcribe, client_for(url), CLIPS[2])
            for _ in range(1000):  # 1000 x 20 ms at most
                if httpx.get(f"{url}/health", timeout=10).json()["in_flight"]:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            refused = False
            for _ in range(100):
                try:
                    httpx.get(f"{url}/health", timeout=1)
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):  # refused, or reset
                    refused = True
                    break
                time.sleep(0.01)
            assert refused and not answer.done(), "new connections should be refused while the request is served"
            assert answer.result(timeout=60).text == TEXTS[CLIPS[2].stem]
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit is by SIGTERM, as a service
        # manager expects of a process it stopped
        assert proc.wait(60) == -signal.SIGTERM
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()


def test_the_batcher_runs_what_arrives_together_at_once_and_a_failing_segment_fails_alone():
    from asr.serve.batcher import Batcher

    calls = []

    def run(segments):
        calls.append(list(segments))
        if "bad" in segments:
            raise ValueError("a bad segment")
        return [(s.upper(), len(segments)) for s in segments]

    async def main():
        batcher = Batcher(run, max_batch=8, max_wait_s=0.5)
        batcher.worker.start()
        try:
            return await asyncio.gather(*(batcher.submit(s) for s in ["a", "bad", "c"]), return_exceptions=True)
        finally:
            batcher.worker.stop()

    a, bad, c = asyncio.run(main())
    assert calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]  # all three at once; that failed, so each alone
    assert (a, c) == (("A", 1), ("C", 1)) and isinstance(bad, ValueError)


def test_a_request_holds_at_most_pool_seconds_of_audio_waiting_for_the_model(long_file):
    """transcribe_file (what the route runs) hands its segments to the batcher as they are cut, but stops
    cutting while pool_seconds of them wait for the model: a long upload is held in bounded memory."""
    from asr.longform import file_segments
    from asr.serve.jobs import transcribe_file

    class SlowModel:  # the Batcher's submit, one segment at a time and slowly: a busy server
        def __init__(self):
            self.waiting = self.most = self.done = 0  # samples submitted and not answered; the most of them; answers

        async def submit(self, item, owner=None):
            segment, _ = item  # (segment, its request's steering)
            self.waiting += len(segment.samples)
            self.most = max(self.most, self.waiting)
            async with self.turn:
                await asyncio.sleep(0.05)
            self.waiting -= len(segment.samples)
            self.done += 1
            return [], 1

    async def main(model):
        model.turn = asyncio.Lock()
        return await transcribe_file(str(long_file), "long.flac", model, pool_seconds=5.0)

    segments = [len(s.samples) for s in file_segments(str(long_file))]
    model = SlowModel()
    asyncio.run(main(model))
    assert model.done == len(segments) > 5 and sum(segments) > 30 * 16000
    assert model.most < 5.0 * 16000 + max(segments), (model.most / 16000, max(segments) / 16000)


def test_the_batch_size_reported_is_the_model_calls(tmp_path):
    """X-ASR-Batch-Size and /health's batch sizes are those of the model calls, which hold at most --batch-seconds
    of padded audio (count x longest): the five clips (0.8-4.0 s) queued together go through in calls of 1-2, and
    the calls counted are those the answers report."""
    with running_server(tmp_path / "server.log", "--max-wait-ms", "400", "--batch-seconds", "5",
                        "--stream-model", "none") as (url, _):
        client = client_for(url)
        start = threading.Barrier(len(CLIPS))

        def one(path: Path):
            start.wait()
            with open(path, "rb") as f:
                raw = client.audio.transcriptions.with_raw_response.create(file=(path.name, f), model="asr-an4")
            return raw.parse().text, int(raw.headers["x-asr-batch-size"])

        with ThreadPoolExecutor(len(CLIPS)) as pool:
            answers = list(pool.map(one, CLIPS))
        health = httpx.get(f"{url}/health").json()
    assert [text for text, _ in answers] == [TEXTS[c.stem] for c in CLIPS]
    sizes = [size for _, size in answers]
    assert max(sizes) <= 2 and health["largest_batch"] == max(sizes), (answers, health)  # 3 x 2.3 s > 5 s
    assert (health["segments"], health["batches"]) == (5, round(sum(1 / n for n in sizes))), health
