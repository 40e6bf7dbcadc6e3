"""FLAC written by a streaming encoder (`flac -`, `ffmpeg -f flac -`, any writer into a pipe): its STREAMINFO cannot be
gone back to, so it gives 0 samples (unknown) and no MD5, and libsndfile takes the length as 2**63 - 1 frames."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_blocks, audio_info, load_audio, read_blocks, read_stream, resample
from asr.transcribe import main

STREAMINFO = 8  # bytes before the STREAMINFO block's body: "fLaC" and the block's header


def unknown_length(flac: bytes) -> bytes:
    """A FLAC file's bytes as a streaming encoder leaves them (ffmpeg -f flac - writes this layout): STREAMINFO's
    frame sizes (24 + 24 bits), 36-bit total samples and MD5 all 0, for unknown; the frames as they were."""
    raw = bytearray(flac)
    assert raw[:4] == b"fLaC" and raw[4] & 0x7F == 0  # STREAMINFO first, as the format requires
    raw[STREAMINFO + 4 : STREAMINFO + 10] = bytes(6)  # min and max frame size
    raw[STREAMINFO + 13] &= 0xF0  # the total's top 4 bits share a byte with the bits per sample
    raw[STREAMINFO + 14 : STREAMINFO + 34] = bytes(20)  # the total's other 32 bits, the MD5
    return bytes(raw)


@pytest.fixture
def pair(clips, tmp_path) -> tuple[Path, Path]:
    """(a FLAC file, the same FLAC as a streaming encoder writes it) of the 2.5 s clip "six eight three three oh
    seven five", at 22.05 kHz stereo: read through the resampler and the channel mean."""
    wave = load_audio(next(u.audio for u in clips if u.id == "cen7-mjgm-b"))
    wave = resample(wave, 16000, 22050)
    stereo = np.stack([wave, 0.5 * wave], axis=1)  # (N, 2)
    normal, piped = tmp_path / "normal.flac", tmp_path / "piped.flac"
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(stereo, -1, 1), 22050, format="FLAC", subtype="PCM_16")
    normal.write_bytes(buffer.getvalue())
    piped.write_bytes(unknown_length(buffer.getvalue()))
    assert sf.info(str(piped)).frames == 2**63 - 1  # what libsndfile makes of it
    return normal, piped


def from_a_pipe(data: bytes) -> str:
    """/dev/fd/N of a pipe that a thread writes `data` into, then closes (what <(...) gives); more than a pipe
    holds at once."""
    read, write = os.pipe()

    def feed() -> None:
        with open(write, "wb") as f:
            try:
                f.write(data)
            except BrokenPipeError:  # a reader that stopped early
                pass

    threading.Thread(target=feed, daemon=True).start()
    return f"/dev/fd/{read}"


def test_a_flac_of_unknown_length_reads_as_the_same_flac_with_its_length(pair):
    """It was refused by every route: as a file 'Internal psf_fseek() failed.' at its end, from a pipe 'array is too
    big', block by block 'not readable as audio after 2.4 s' (a review)."""
    normal, piped = pair
    np.testing.assert_array_equal(load_audio(piped), load_audio(normal))
    got, want = list(read_blocks(piped, 0.3)), list(read_blocks(normal, 0.3))
    assert [len(b) for b in got] == [len(b) for b in want]
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))
    assert audio_info(piped) == audio_info(normal)
    pipe = from_a_pipe(piped.read_bytes())
    np.testing.assert_array_equal(read_stream(pipe), load_audio(normal))
    os.close(int(pipe.rsplit("/", 1)[1]))
    np.testing.assert_array_equal(np.concatenate(list(audio_blocks(str(piped), 0.1))), load_audio(normal))


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_flac_of_unknown_length_cut_short_or_damaged_is_still_refused_in_one_line(pair, cut):
    _, piped = pair
    data = piped.read_bytes()
    at = int(len(data) * cut)
    damaged = {"cut": data[:at], "garbage": data[:at] + bytes(range(256)) * 8 + data[at + 2048 :]}
    for kind, broken in damaged.items():
        piped.write_bytes(broken)
        for read in (load_audio, lambda p: list(read_blocks(p, 0.3))):
            with pytest.raises(AudioError, match=rf"^{piped}: not readable as audio.*truncated or corrupt") as info:
                read(piped)
            assert "\n" not in str(info.value), kind
        pipe = from_a_pipe(broken)
        with pytest.raises(AudioError, match=rf"^{pipe}: not readable as audio.*truncated or corrupt") as info:
            read_stream(pipe)
        os.close(int(pipe.rsplit("/", 1)[1]))
        assert "\n" not in str(info.value), kind


def test_a_flac_of_unknown_length_that_holds_no_audio_is_no_audio(pair):
    """Its metadata blocks and no frame (an encoder stopped before its first): no audio, not 2**63 - 1 frames."""
    _, piped = pair
    raw, at = piped.read_bytes(), 4
    while not raw[at] & 0x80:  # the last metadata block has the top bit of its header's first byte set
        at += 4 + int.from_bytes(raw[at + 1 : at + 4], "big")
    piped.write_bytes(raw[: at + 4 + int.from_bytes(raw[at + 1 : at + 4], "big")])
    for read in (load_audio, lambda p: list(read_blocks(p)), lambda p: read_stream(from_a_pipe(p.read_bytes()))):
        with pytest.raises(AudioError, match="no audio"):
            read(piped)


def test_transcribe_reads_a_flac_of_unknown_length_by_every_route(pair, tiny_checkpoint, monkeypatch, capsys):
    """python -m asr.transcribe FILE, - (stdin) and --stream FILE: the transcript of the same FLAC with its length."""
    normal, piped = pair
    model = ["--threads", "1", "--model", str(tiny_checkpoint), "--format", "jsonl"]
    assert main([*model, str(normal)]) == 0
    want = capsys.readouterr().out.replace(str(normal), "X")
    assert main([*model, str(piped)]) == 0
    assert capsys.readouterr() == (want.replace("X", str(piped)), "")
    monkeypatch.setattr("sys.stdin", open(piped))  # read_stream reads its file descriptor
    assert main([*model, "-"]) == 0
    assert capsys.readouterr() == (want.replace("X", "-"), "")
    assert main(["--threads", "1", "--stream", str(normal)]) == 0
    streamed = capsys.readouterr().out
    assert main(["--threads", "1", "--stream", str(piped)]) == 0
    assert capsys.readouterr() == (streamed, "")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_ffmpegs_flac_into_a_pipe_reads_as_its_input(pair, tmp_path):
    """The layout unknown_length() copies, from the writer itself: ffmpeg -i x.flac -f flac - > piped.flac."""
    normal, _ = pair
    written = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(normal), "-f", "flac", "-"],
                             capture_output=True, check=True, timeout=30).stdout
    path = tmp_path / "from-ffmpeg.flac"
    path.write_bytes(written)
    assert sf.info(str(path)).frames == 2**63 - 1
    np.testing.assert_array_equal(load_audio(path), load_audio(normal))


def test_a_flac_of_unknown_length_is_counted_once_however_often_it_is_opened(pair, tiny_checkpoint, monkeypatch,
                                                                           capsys):
    """Its frames are counted by decoding it whole, and asr.transcribe opens a file several times (its length, its
    level, its blocks): a long recording was decoded once more for each."""
    from asr.audio import sndfile

    counted = []
    count = sndfile.flac_frames
    monkeypatch.setattr(sndfile, "flac_frames", lambda *a: counted.append(a[1]) or count(*a))
    sndfile.counted_frames.cache_clear()
    _, piped = pair
    assert main(["--threads", "1", "--model", str(tiny_checkpoint), str(piped)]) == 0
    assert counted == [str(piped)]
    os.utime(piped, ns=(1, 1))  # written again since (its time): counted again
    capsys.readouterr()
    assert main(["--threads", "1", "--model", str(tiny_checkpoint), str(piped)]) == 0
    assert counted == [str(piped)] * 2
