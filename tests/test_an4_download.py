"""recipes/an4/download.py, offline: an an4_sphere.tar.gz built here from a tiny fake AN4 and served on 127.0.0.1
(resumed with a Range request, checked, extracted all or nothing), then recipes/an4/prepare.py reads it."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tarfile
from pathlib import Path

import pytest

from asr.data import read_manifest
from tests.file_server import FileServer
from tests.test_prepare import TEST, TRAIN, write_split

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "an4"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"an4_{name}", RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


download, prepare = load("download"), load("prepare")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> bytes:
    """an4_sphere.tar.gz as CMU packs it (an4/etc/, an4/wav/...), of a tiny fake AN4."""
    root = tmp_path_factory.mktemp("source") / "an4"
    write_split(root, "train", "an4_clstk", TRAIN, brackets=True)
    write_split(root, "test", "an4test_clstk", TEST, brackets=False)
    (root / "README").write_text("This directory contains the Census (AN4) database audio files.\n")
    path = root.parent / download.ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname="an4")
    return path.read_bytes()


def served(tarball: bytes) -> FileServer:
    return FileServer({download.ARCHIVE: tarball})


def sha256(data: bytes):
    return download.Checksum("sha256", hashlib.sha256(data).hexdigest())


def test_download_resumes_checks_extracts_and_prepare_reads_it(tarball, tmp_path):
    out = tmp_path / "data" / "an4"
    cut = len(tarball) // 3
    with served(tarball) as server:
        server.drop_after[download.ARCHIVE] = cut  # the first connection drops a third of the way in
        url = f"{server.url}/{download.ARCHIVE}"
        assert download.download_an4(out, url, sha256(tarball), wait=0) == out
        assert [r["range"] for r in server.requests] == [None, f"bytes={cut}-"]
        assert download.download_an4(out, url, sha256(tarball), wait=0) == out
        assert len(server.requests) == 2  # there already: nothing asked for
    assert sorted(p.name for p in out.iterdir()) == ["README", "etc", "wav"]
    assert not list(out.parent.glob(".*"))  # no staging folder left
    assert prepare.main(["--data", str(out), "--out", str(tmp_path / "m"), "--dev-every", "3"]) == 0
    assert len(read_manifest(tmp_path / "m" / "test.jsonl")) == sum(len(v) for v in TEST.values())


def test_a_wrong_checksum_is_refused_and_nothing_is_extracted(tarball, tmp_path, capsys):
    out = tmp_path / "an4"
    with served(tarball) as server:
        code = download.main(["--out", str(out), "--url", f"{server.url}/{download.ARCHIVE}", "--sha256", "0" * 64])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "did not match" in err[-1] and "--sha256" in err[-1]
    assert not out.exists() and not (tmp_path / download.ARCHIVE).exists()


def test_the_command_line_downloads_with_the_sum_given(tarball, tmp_path, capsys):
    out = tmp_path / "an4"
    with served(tarball) as server:
        url = f"{server.url}/{download.ARCHIVE}"
        assert download.main(["--out", str(out), "--url", url, "--sha256", sha256(tarball).digest,
                              "--remove-archive"]) == 0
    assert (out / "etc" / "an4_train.transcription").is_file() and not (tmp_path / download.ARCHIVE).exists()
    assert capsys.readouterr().out.strip() == f"AN4: {out}"


def test_the_pinned_source_and_sum():
    assert download.AN4_URL == "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"
    assert download.AN4_SHA256 == download.Checksum(
        "sha256", "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12")
