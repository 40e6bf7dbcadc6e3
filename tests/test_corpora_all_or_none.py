"""An import that fails leaves OUT_DIR as an earlier import left it: no cut segment moved into place and no
manifest written until every set (and the split the flags ask for) has passed; and the rows that reached a
traceback or a manifest that the project's own reader refuses (a review's findings)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from asr.data import main, read_manifest
from tests.corpora_fixtures import (as_audiofolder, as_kaldi, as_lhotse, as_librispeech, as_nemo, utterances,
                                    write_tone)
from tests.test_corpora_errors import refused


def files_in(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def two_kaldi_sets(tmp_path: Path, test_segments: str) -> Path:
    """data/train (two clips) and data/test (segments u1 and u2 of one 2 s recording)."""
    utts = utterances(tmp_path, n=2)
    as_kaldi(utts, tmp_path / "data" / "train")
    test = tmp_path / "data" / "test"
    test.mkdir(parents=True)
    (test / "wav.scp").write_text(f"rec {write_tone(tmp_path / 'rec.wav', 2.0)}\n")
    (test / "segments").write_text(test_segments)
    (test / "text").write_text("u1 first half\nu2 second half\n")
    return tmp_path / "data"


def test_a_set_refused_after_another_set_was_cut_leaves_the_earlier_cuts_and_manifests(tmp_path, capsys):
    data = two_kaldi_sets(tmp_path, "u1 rec 0.0 0.8\nu2 rec 0.8 2.0\n")
    out = tmp_path / "out"
    assert main(["import", str(data), str(out)]) == 0
    earlier = files_in(out)
    (data / "test" / "segments").write_text("u1 rec 0.0 1.2\nu2 rec 1.2 2.0\n")  # test's cuts move ...
    missing = Path((data / "train" / "wav.scp").read_text().split()[1])
    missing.unlink()  # ... and a row of the set checked after test's cuts, refused
    assert str(missing) in refused([data, out], capsys)
    assert files_in(out) == earlier  # test's cuts still the halves its manifest names


def test_manifests_are_written_all_or_none(tmp_path, capsys):
    data = two_kaldi_sets(tmp_path, "u1 rec 0.0 1.0\nu2 rec 1.0 2.0\n")
    out = tmp_path / "out"
    (out / "train.jsonl").mkdir(parents=True)  # train's manifest cannot be written
    (out / "test.jsonl").write_text("OLD\n")
    assert "folder" in refused([data, out], capsys)
    assert (out / "test.jsonl").read_text() == "OLD\n" and not list(out.rglob("*.tmp"))
    assert not list((out / "segments").rglob("*.wav"))  # nor a cut left without its manifest


def test_a_split_the_flags_cannot_make_leaves_the_earlier_import(tmp_path, capsys):
    utts = utterances(tmp_path)
    src = as_audiofolder(utts, tmp_path)
    out = tmp_path / "out"
    assert main(["import", str(src), str(out), "--dev-speakers", utts[1].speaker]) == 0
    earlier = files_in(out)
    as_audiofolder(utterances(tmp_path, n=7), tmp_path)  # one clip more, and a speaker that is not there
    assert "s9" in refused([src, out, "--dev-speakers", "s9"], capsys)
    assert files_in(out) == earlier


def test_a_librispeech_split_is_split_when_asked_unless_it_is_held_out(tmp_path, capsys):
    split, utts = as_librispeech(tmp_path, {"19": ["A B", "C D", "E F", "G H"], "20": ["I J", "K L"]})
    out = tmp_path / "out"
    assert "not held out; this corpus has dev-clean" in refused([split, out, "--dev-speakers", "20"], capsys)
    assert not out.exists()  # dev-clean split into train and dev would train on a dev set (a review)
    split = split.rename(tmp_path / "train-clean-5")
    assert main(["import", str(split), str(out), "--dev-speakers", "20"]) == 0
    assert [u.speaker for u in read_manifest(out / "dev.jsonl")] == ["20", "20"]
    assert len(read_manifest(out / "train.jsonl")) == 4 and len(read_manifest(out / "train-clean-5.jsonl")) == 6
    assert "dev: 2 utterances" in capsys.readouterr().out


def test_cuts_stay_as_they_were_when_a_manifest_cannot_be_written(tmp_path, capsys, monkeypatch):
    """The cuts were moved into place before the manifests were written: a full disk then left new cuts under the
    old manifests (a review). Now they move once every manifest's text is written, before any is renamed."""
    data = two_kaldi_sets(tmp_path, "u1 rec 0.0 0.8\nu2 rec 0.8 2.0\n")
    out = tmp_path / "out"
    assert main(["import", str(data), str(out)]) == 0
    earlier = files_in(out)
    (data / "test" / "segments").write_text("u1 rec 0.0 1.2\nu2 rec 1.2 2.0\n")
    real = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if self.name == "train.jsonl.tmp":
            raise OSError(28, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    assert "No space left on device" in refused([data, out], capsys)
    assert files_in(out) == earlier


@pytest.mark.parametrize("damage, says", [
    (lambda chapter: (chapter / "19-7.trans.txt").write_text("19-7-0000 A B\n19-7-0000 C D\n"), "duplicate id"),
    (lambda chapter: (chapter / "19-7.trans.txt").write_text("19-7-0000 ...\n19-7-0001 C D\n"), "no word"),
    (lambda chapter: write_tone(chapter / "19-7-0000.flac", 0.0002), "shorter than 1 ms"),
])
def test_librispeech_rows_get_the_checks_other_layouts_get(tmp_path, capsys, damage, says):
    """They gave manifests that read_manifest refuses (a duplicate id, a duration of 0) or nothing to learn."""
    split, _ = as_librispeech(tmp_path, {"19": ["A B", "C D"]})
    damage(split / "19" / "7")
    err = refused([split, tmp_path / "out"], capsys)
    assert says in err and "19-7.trans.txt:" in err, err
    assert not (tmp_path / "out" / "dev-clean.jsonl").exists()


def test_a_nul_in_a_path_and_an_integer_of_400_digits_are_refused_in_one_line(tmp_path, capsys):
    utts = utterances(tmp_path, n=2)
    nemo = as_nemo(utts, tmp_path)
    rows = [json.loads(line) for line in nemo.read_text().splitlines()]
    rows[1]["duration"] = 10 ** 400
    nemo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "integer of 401 digits" in refused([nemo, tmp_path / "out"], capsys)
    rows[1]["duration"], rows[1]["audio_filepath"] = 0.5, rows[1]["audio_filepath"] + "\x00"
    (tmp_path / "dev.json").write_text(json.dumps(rows[0]) + "\n")  # two sets: their files are compared first
    nemo.replace(tmp_path / "train.json")
    (tmp_path / "train.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(["--from", "nemo", tmp_path, tmp_path / "out"], capsys)


def lhotse_rows(root: Path) -> tuple[list[dict], list[dict]]:
    as_lhotse(utterances(root, n=2), root)
    return [[json.loads(line) for line in gzip.open(root / f"tiny_{name}_train.jsonl.gz", "rt")]
            for name in ("recordings", "supervisions")]


def write_lhotse(root: Path, recs: list[dict], sups: list[dict]) -> None:
    for name, rows in (("recordings", recs), ("supervisions", sups)):
        with gzip.open(root / f"tiny_{name}_train.jsonl.gz", "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("change, says", [
    (lambda recs, sups: recs[1].update(id=recs[0]["id"]), "recording id 'rec-"),  # the last one won
    (lambda recs, sups: sups[0].update(text=["hello"]), "text must be a string"),  # written as "['hello']"
    (lambda recs, sups: sups[0].update(id={"a": 1}), "id must be a string or an integer"),
    (lambda recs, sups: (recs[0]["sources"][0].update(channels=[0, 1]), sups[0].update(channel=1)),
     "channel 1 of a recording with channels [0, 1]"),  # its cut held both channels' mean
    (lambda recs, sups: sups[0].update(channel=5), "channel 5 is not one of its recording's channels [0]"),  # read
])
def test_lhotse_rows_that_were_read_as_something_else_are_refused(tmp_path, capsys, change, says):
    recs, sups = lhotse_rows(tmp_path)
    change(recs, sups)
    write_lhotse(tmp_path, recs, sups)
    err = refused([tmp_path, tmp_path / "out"], capsys)
    assert says in err and "tiny_" in err, err
