"""asr.audio.scan_folder: the audio files under a folder, in Path's order, links handled as the files they are."""

from __future__ import annotations

from pathlib import Path

from asr.audio import scan_folder


def test_the_files_come_in_paths_order_and_links_to_folders_are_not_audio(tmp_path):
    names = ["b/a.wav", "a-b/c.wav", "a/b.wav", "a/B.wav", "a.wav", "ab.flac", "a/b/c.wav", "z/.hidden.wav"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.wav").symlink_to(tmp_path / "a")  # a folder that looks like audio by its name
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")  # broken: reading it says why
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")  # a loop: the same
    (tmp_path / "linked.wav").symlink_to(tmp_path / "a.wav")
    found = scan_folder(tmp_path).audio
    expected = sorted(Path(tmp_path / n) for n in names[:-1] + ["gone.wav", "loop.wav", "linked.wav"])
    assert found == expected, [p.relative_to(tmp_path).as_posix() for p in found]


def test_a_named_pipe_in_a_folder_is_noted_not_opened(tmp_path, capsys):
    """`python -m asr.transcribe folder` with a FIFO called pipe.wav in it blocked for ever opening it (a review): a
    pipe, or a link to one, in a folder is left out with a note (not a failure: asr.data import of the folder goes
    on too); the files beside it are still audio."""
    import os

    from asr.corpora.textfolder import read_textfolder
    from asr.longform import expand_inputs

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "a.txt").write_text("A\n")
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "to-pipe.flac").symlink_to(tmp_path / "pipe.wav")
    scan = scan_folder(tmp_path)
    assert scan.audio == [tmp_path / "a.wav"] and scan.problems == []
    assert scan.special == [tmp_path / "pipe.wav", tmp_path / "to-pipe.flac"]
    inputs = expand_inputs([str(tmp_path)])
    assert [(i.path, i.error) for i in inputs] == [(str(tmp_path / "a.wav"), None)]
    (note,) = capsys.readouterr().err.splitlines()
    assert note == (f"note: {tmp_path}: 2 named pipe(s), socket(s) or device(s) skipped (pipe.wav, to-pipe.flac): "
                    "not files; give one on its own to read it as a stream")
    assert [row.audio for row in read_textfolder(tmp_path)["all"]] == [tmp_path / "a.wav"]
    assert "2 named pipes, sockets or devices are left out" in capsys.readouterr().err


def test_every_extension_libsndfile_reads_is_found_in_a_folder(tmp_path):
    """ext/f.oga was read when named, and skipped without a word in a folder (a review); so were CAF, W64, RF64."""
    import numpy as np
    import soundfile as sf

    from asr.audio import load_audio

    formats = {"oga": "OGG", "caf": "CAF", "w64": "W64", "rf64": "RF64", "aifc": "AIFF"}
    for ext, fmt in formats.items():
        sf.write(tmp_path / f"f.{ext}", np.full(1600, 0.1, np.float32), 16000, format=fmt)
    found = scan_folder(tmp_path).audio
    assert sorted(p.suffix[1:] for p in found) == sorted(formats)
    assert all(len(load_audio(p)) == 1600 for p in found)
