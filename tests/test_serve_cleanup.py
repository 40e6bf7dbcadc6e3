"""What a transcription holds (its upload's file, an ffmpeg child, the count of files being read) is let go as soon
as the request ends however it ends (its client gone, its deadline passed), never when the garbage collector
happens to run: these tests run with the collector off."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from test_serve import clips_joined, running_server  # tests/ is on sys.path under pytest
from test_serve_faults import open_upload, wait_until
from test_serve_limits import health


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def open_by_us(path: Path) -> bool:
    """Whether this process holds `path` open."""
    fds = Path("/proc/self/fd")
    return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds) if (fds / fd).is_symlink())


def deleted_files_open(pid: int) -> list[str]:
    """The files process `pid` holds open that have been deleted (an upload whose folder is gone)."""
    fds = Path(f"/proc/{pid}/fd")
    return [link for fd in os.listdir(fds) if (link := os.readlink(fds / fd)).endswith(" (deleted)")]


def ffmpeg_children(pid: int | None = None) -> list[int]:
    """The child processes of `pid` (this process) that run ffmpeg."""
    pid, kids = pid or os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)  # "PID (NAME", " STATE PPID ..."
        except OSError:  # gone meanwhile
            continue
        if head.split("(", 1)[1] == "ffmpeg" and int(rest.split()[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def long_upload(folder: Path, suffix: str) -> Path:
    """About 50 s of the clips (cut into segments, read in blocks), as FLAC or as WebM (read through ffmpeg)."""
    flac = clips_joined(folder / "long.flac", 3, 1.0)
    if suffix == ".flac":
        return flac
    if shutil.which("ffmpeg") is None:
        pytest.skip("no ffmpeg on PATH")
    out = folder / f"long{suffix}"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(flac), "-c:a", "libopus", str(out)],
                   check=True, timeout=120)
    return out


class Stalled:
    """The Batcher's submit on a server whose model never answers: the request waits until it is cancelled."""

    def __init__(self):
        self.submitted = 0

    async def submit(self, item, owner=None):
        self.submitted += 1
        await asyncio.Event().wait()


@pytest.mark.parametrize("suffix", [".flac", ".webm"])
def test_a_cancelled_transcription_closes_its_file_and_ends_its_ffmpeg_at_once(tmp_path, suffix, no_gc):
    """A request cancelled (its client gone, its deadline passed) while its reading is paused (its first segment
    waits for the model, pool_seconds 5): by the time the cancellation is through, the file is closed, no ffmpeg
    child is left, and /health's count of files being read is back to 0."""
    from asr.serve.jobs import files_reading, transcribe_file

    path = long_upload(tmp_path, suffix)

    async def main() -> tuple[tuple, tuple]:
        model = Stalled()
        task = asyncio.ensure_future(transcribe_file(str(path), path.name, model, pool_seconds=5.0))
        for _ in range(1200):  # 1200 x 50 ms at most
            if model.submitted:
                break
            await asyncio.sleep(0.05)
        reading = (open_by_us(path) or bool(ffmpeg_children()), files_reading())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        return reading, (open_by_us(path), ffmpeg_children(), files_reading())

    reading, after = asyncio.run(main())
    assert reading == (True, 1), reading  # paused in the middle of its reading
    assert after == (False, [], 0), after


def test_a_client_that_leaves_lets_go_of_its_upload_and_its_ffmpeg_within_seconds(tmp_path):
    """The server side of the same: a WebM upload whose first segments wait for the model (batches wait 30 s for
    company, --pool-seconds 5 pauses the reading); its client goes away, and within 10 s the server holds no
    deleted upload open, runs no ffmpeg and reads no file, with no request for its collector to run meanwhile."""
    path = long_upload(tmp_path, ".webm")
    body = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nasr-an4\r\n--b\r\nContent-Disposition: '
            b'form-data; name="file"; filename="long.webm"\r\n\r\n' + path.read_bytes() + b"\r\n--b--\r\n")
    with running_server(tmp_path / "server.log", "--stream-model", "none", "--max-wait-ms", "30000",
                        "--pool-seconds", "5") as (url, proc):
        s = open_upload(url, len(body), body)
        wait_until(lambda: health(url)["queued_audio_s"] >= 5, 30, "its first 5 s of segments queued for the model")
        assert ffmpeg_children(proc.pid) and health(url)["reading"] == 1  # paused in the middle of its reading
        s.close()
        wait_until(lambda: health(url)["in_flight"] == 0, 10, "the request ended")
        wait_until(lambda: not ffmpeg_children(proc.pid) and not deleted_files_open(proc.pid), 10,
                   f"ffmpeg {ffmpeg_children(proc.pid)} and deleted files {deleted_files_open(proc.pid)} let go")
        assert health(url)["reading"] == 0


def test_a_stream_whose_client_leaves_mid_way_leaves_no_task_pending():
    """stream=true's events stopped while they wait for the second (what the response does when its client goes
    away): the job is cancelled, cleanup runs once, and no task is left pending (asyncio would log "Task was
    destroyed but it is pending" whenever the collector found it)."""
    from types import SimpleNamespace

    from asr.serve.events import stream_response

    async def job(emit):
        emit(SimpleNamespace(text="six", logprobs=[]))  # a decoded segment; the next never comes
        await asyncio.Event().wait()

    async def main() -> tuple[str, list, list]:
        cleaned = []
        response = await stream_response(job, False, 0.01, lambda: cleaned.append(1), asyncio.Event().wait(),
                                         time.monotonic() + 60)
        first = await response.body_iterator.__anext__()
        second = asyncio.ensure_future(response.body_iterator.__anext__())  # waits for a segment that never comes
        await asyncio.sleep(0.1)
        second.cancel()  # the client went away: Starlette stops the sending, the response closes its events
        with pytest.raises(asyncio.CancelledError):
            await second
        await response.body_iterator.aclose()
        for _ in range(100):  # cancelled tasks end at the loop's next turns: 100 x 10 ms at most
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            if not pending:
                break
            await asyncio.sleep(0.01)
        return first, cleaned, pending

    first, cleaned, pending = asyncio.run(main())
    assert '"delta": "six"' in first and cleaned == [1] and pending == [], (first, cleaned, pending)
