"""asr.corpora.split and `python -m asr.data split`: named speakers, seeded shares of utterances or of whole
speakers (speaker-disjoint sets), and the splits that cannot be made."""

from __future__ import annotations

import re

import pytest

from asr.corpora import CorpusError, SplitSettings, split_utterances
from asr.data import Utterance, main, read_manifest, write_manifest
from tests.corpora_fixtures import as_audiofolder, utterances


def corpus(speakers: int = 5, each: int = 4, speaker: bool = True) -> list[Utterance]:
    return [Utterance(f"s{s}-{i}", f"/a/s{s}-{i}.wav", 1.0, "hello", f"s{s}" if speaker else "")
            for s in range(speakers) for i in range(each)]


def speakers(utts) -> set[str]:
    return {u.speaker for u in utts}


def test_named_speakers_are_held_out_whole():
    parts = split_utterances(corpus(), SplitSettings(dev_speakers=("s1",), test_speakers=("s3", "s4")), "c")
    assert speakers(parts["dev"]) == {"s1"} and speakers(parts["test"]) == {"s3", "s4"}
    assert speakers(parts["train"]) == {"s0", "s2"} and sum(map(len, parts.values())) == 20



def cased(utts: list[Utterance]) -> list[Utterance]:
    """The utterances, every other one of each speaker's with the speaker's name in capitals (S1 and s1)."""
    return [Utterance(u.id, u.audio, u.duration, u.text, u.speaker.upper() if i % 2 else u.speaker)
            for i, u in enumerate(utts)]


@pytest.mark.parametrize("settings", [SplitSettings(test_speakers=("s3",)), SplitSettings(test_speakers=("S3",)),
                                      *(SplitSettings(dev_fraction=0.2, test_fraction=0.2, by_speaker=True, seed=seed)
                                        for seed in range(3))])
def test_speakers_written_in_other_cases_are_one_speaker(settings):
    """Before: metadata with "George" on some rows and "george" on others (typed by hand) gave two speakers, so
    --test-speakers george left George's other utterances in train, and a split by speaker could part them."""
    parts = split_utterances(cased(corpus()), settings, "c")
    sides = [{u.speaker.casefold() for u in part} for part in parts.values()]
    assert all(not (a & b) for i, a in enumerate(sides) for b in sides[i + 1:]), sides
    assert sum(map(len, parts.values())) == 20

@pytest.mark.parametrize("seed", range(5))
def test_shares_by_speaker_are_speaker_disjoint_and_about_the_share(seed):
    parts = split_utterances(corpus(10), SplitSettings(dev_fraction=0.2, test_fraction=0.1, by_speaker=True,
                                                       seed=seed), "c")
    train, dev, test = speakers(parts["train"]), speakers(parts["dev"]), speakers(parts["test"])
    assert not (train & dev or train & test or dev & test)
    assert (len(dev), len(test)) == (2, 1)
    assert sorted(u.id for p in parts.values() for u in p) == sorted(u.id for u in corpus(10))


@pytest.mark.parametrize("fraction, held", [(0.1, 1), (0.3, 1), (0.4, 2), (0.6, 2), (0.7, 3), (0.9, 3)])
def test_a_share_of_speakers_is_the_nearest_to_the_share(fraction, held):
    parts = split_utterances(corpus(4), SplitSettings(dev_fraction=fraction, by_speaker=True), "c")
    assert len(speakers(parts["dev"])) == held  # four speakers of 25% each; never all of them


@pytest.mark.parametrize("seed", range(6))
def test_a_share_of_speakers_of_uneven_sizes_is_the_nearest_too(seed):
    utts = corpus(1, 90) + [Utterance(f"{s}-{i}", f"/a/{s}-{i}.wav", 1.0, "hello", s) for s in "xy" for i in range(5)]
    parts = split_utterances(utts, SplitSettings(dev_fraction=0.1, by_speaker=True, seed=seed), "c")
    assert len(parts["dev"]) in (5, 10)  # one or both of the small speakers, never the one with 90


def test_a_share_of_utterances_is_seeded_and_keeps_the_order():
    utts = corpus(1, 20, speaker=False)
    a = split_utterances(utts, SplitSettings(dev_fraction=0.25, seed=1), "c")
    assert a == split_utterances(utts, SplitSettings(dev_fraction=0.25, seed=1), "c")
    assert a != split_utterances(utts, SplitSettings(dev_fraction=0.25, seed=2), "c")
    assert len(a["dev"]) == 5 and a["dev"] == sorted(a["dev"], key=utts.index)
    assert list(a) == ["train", "dev"]


@pytest.mark.parametrize("settings, says", [
    (SplitSettings(dev_speakers=("nobody",)), "c: no utterances of speaker(s) nobody (its speakers: s0, s1"),
    (SplitSettings(dev_speakers=tuple(f"s{i}" for i in range(5))), "c: no utterances left to train on"),
])
def test_splits_that_cannot_be_made_say_why(settings, says):
    with pytest.raises(CorpusError, match=re.escape(says)):
        split_utterances(corpus(), settings, "c")


def test_a_split_by_speaker_needs_speakers():
    with pytest.raises(CorpusError, match=r"c: 20 of 20 utterances have no speaker .*split them by utterance"):
        split_utterances(corpus(speaker=False), SplitSettings(dev_fraction=0.1, by_speaker=True), "c")
    with pytest.raises(CorpusError, match=r"1 speaker\(s\): too few"):
        split_utterances(corpus(1), SplitSettings(dev_fraction=0.1, by_speaker=True), "c")


def test_too_few_speakers_left_for_dev_once_test_is_held_out_says_so():
    """Before: "c: 1 speaker(s): too few" of a manifest of four, counting what test had left."""
    with pytest.raises(CorpusError, match=r"^c: 1 speaker\(s\) left once test is held out \(of 4\): too few to hold "
                                          r"whole speakers out for dev"):
        split_utterances(corpus(4), SplitSettings(dev_fraction=0.9, test_fraction=0.9, by_speaker=True), "c")


def test_speakers_or_a_share_not_both():
    with pytest.raises(ValueError, match="dev: give speakers or a fraction, not both"):
        SplitSettings(dev_speakers=("s1",), dev_fraction=0.1)


def test_a_speaker_named_for_both_dev_and_test_is_refused():
    with pytest.raises(ValueError, match="speaker.s. lucas named for both dev and test"):
        SplitSettings(dev_speakers=("lucas", "ann"), test_speakers=("lucas",))


def test_python_m_asr_data_split(tmp_path, capsys):
    write_manifest(tmp_path / "all.jsonl", corpus())
    assert main(["split", str(tmp_path / "all.jsonl"), str(tmp_path / "m"), "--test-speakers", "s0",
                 "--dev-fraction", "0.25"]) == 0
    assert "test: 4 utterances, 0.00 h, 1 speaker\n" in capsys.readouterr().out
    assert speakers(read_manifest(tmp_path / "m" / "test.jsonl")) == {"s0"}
    assert len(read_manifest(tmp_path / "m" / "dev.jsonl")) == 4
    assert main(["split", str(tmp_path / "all.jsonl"), str(tmp_path / "m"), "--test-speakers", "zz"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'all.jsonl'}: no utterances of speaker(s) zz")


@pytest.mark.parametrize("seed", range(5))
def test_utterances_of_one_audio_file_stay_on_one_side(seed):
    """A clip listed twice (two ids) would otherwise be trained on and scored on."""
    utts = corpus(1, 20, speaker=False)
    utts += [Utterance(f"again-{u.id}", u.audio.replace("/a/", "/a/./"), 1.0, "hello", "") for u in utts[:10]]
    out = split_utterances(utts, SplitSettings(test_fraction=0.3, dev_fraction=0.2, seed=seed), "c")
    sides = {u.audio.replace("/./", "/"): part for part, us in out.items() for u in us}
    assert all(sides[u.audio.replace("/./", "/")] == part for part, us in out.items() for u in us)
    assert len(out["test"]) >= 6 and sum(map(len, out.values())) == 30


def test_a_split_of_one_audio_file_says_why():
    utts = [Utterance(f"u{i}", "/a/one.wav", 1.0, "hello", "") for i in range(3)]
    with pytest.raises(CorpusError, match="c: all 3 utterances left are of one audio file: too few to split"):
        split_utterances(utts, SplitSettings(dev_fraction=0.5), "c")


@pytest.mark.parametrize("name", ["train", "dev", "test"])
def test_split_refuses_to_write_over_the_manifest_it_splits(tmp_path, capsys, name):
    """DIR/train.jsonl split into DIR (here written DIR/sub/..) would be replaced by its train subset."""
    manifest = tmp_path / f"{name}.jsonl"
    write_manifest(manifest, corpus())
    before = manifest.read_bytes()
    (tmp_path / "sub").mkdir()
    code = main(["split", str(manifest), str(tmp_path / "sub" / ".."), "--test-fraction", "0.4", "--dev-fraction",
                 "0.2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {tmp_path / 'sub' / '..' / f'{name}.jsonl'}: ") and str(manifest) in err
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == [f"{name}.jsonl"]  # nothing else written either


@pytest.mark.parametrize("command, flag, value", [("split", "--seed", "-1"), ("import", "--seed", "-1"),
                                                  ("import", "--workers", "0"), ("import", "--workers", "-3")])
def test_a_negative_seed_or_fewer_than_one_worker_is_refused_naming_the_flag(tmp_path, capsys, command, flag, value):
    """Before: a numpy ValueError traceback (seed), or silently one worker."""
    utts = utterances(tmp_path)
    write_manifest(tmp_path / "all.jsonl", utts)
    src = as_audiofolder(utts, tmp_path) if command == "import" else tmp_path / "all.jsonl"
    with pytest.raises(SystemExit) as e:
        main([command, str(src), str(tmp_path / "m"), "--test-fraction", "0.5", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_split_settings_refuse_a_negative_seed():
    with pytest.raises(ValueError, match="seed must be 0 or more, got -1"):
        SplitSettings(test_fraction=0.5, seed=-1)


def split_into(out, manifest, *flags: str) -> int:
    return main(["split", str(manifest), str(out), *flags])


def test_split_refuses_a_set_of_out_dir_that_it_would_leave_beside_its_new_sets(tmp_path, capsys):
    """Before: OUT/dev.jsonl split into OUT with --test-fraction wrote OUT/train.jsonl and OUT/test.jsonl and left
    dev.jsonl, which holds them both: the sets leaked into each other."""
    write_manifest(tmp_path / "all.jsonl", corpus())
    assert split_into(tmp_path / "m", tmp_path / "all.jsonl", "--dev-fraction", "0.5") == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    capsys.readouterr()
    assert split_into(tmp_path / "m", tmp_path / "m" / "dev.jsonl", "--test-fraction", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {tmp_path / 'm' / 'dev.jsonl'}: "), err
    assert "no dev set" in err and "another OUT_DIR" in err, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before


def test_a_split_removes_the_sets_of_an_earlier_split_that_it_does_not_write(tmp_path, capsys):
    """An old test.jsonl beside a new train.jsonl would hold utterances trained on; the split says it removed it."""
    write_manifest(tmp_path / "all.jsonl", corpus())
    assert split_into(tmp_path / "m", tmp_path / "all.jsonl", "--dev-fraction", "0.25", "--test-fraction", "0.25") == 0
    capsys.readouterr()
    assert split_into(tmp_path / "m", tmp_path / "all.jsonl", "--dev-fraction", "0.25") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: ") and str(tmp_path / "m" / "test.jsonl") in err[0], err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["dev.jsonl", "train.jsonl"]


def test_split_refuses_an_empty_out_dir_naming_it(tmp_path, capsys, monkeypatch):
    """Before: "" wrote train.jsonl and dev.jsonl into the current folder."""
    write_manifest(tmp_path / "data" / "all.jsonl", corpus())
    monkeypatch.chdir(tmp_path)
    assert split_into("", tmp_path / "data" / "all.jsonl", "--dev-fraction", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: OUT_DIR ") and "empty" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["all.jsonl", "data"]


def test_a_set_path_that_is_a_folder_writes_no_set_at_all(tmp_path, capsys):
    """Before: train.jsonl was replaced, then "m/dev.jsonl.tmp: Is a directory", with the .tmp left behind."""
    write_manifest(tmp_path / "all.jsonl", corpus())
    (tmp_path / "m" / "dev.jsonl").mkdir(parents=True)
    (tmp_path / "m" / "train.jsonl").write_text("old\n")
    assert split_into(tmp_path / "m", tmp_path / "all.jsonl", "--dev-fraction", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'm' / 'dev.jsonl'}: a folder is in its place", err
    assert (tmp_path / "m" / "train.jsonl").read_text() == "old\n"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["dev.jsonl", "train.jsonl"]


def test_an_out_dir_where_a_file_stands_is_refused_before_the_import(tmp_path, capsys, monkeypatch):
    """It said "OUT/all.jsonl: File exists" once every file had been read (an audit)."""
    from asr.corpora import cli

    src = as_audiofolder(utterances(tmp_path), tmp_path)
    (tmp_path / "plain").write_text("a file\n")
    monkeypatch.setattr(cli, "run_import", lambda *a: pytest.fail("the import ran"))
    for out, says in ((tmp_path / "plain", "is a file, not a folder"),
                      (tmp_path / "plain" / "sub", f"{tmp_path / 'plain'} is a file, not a folder")):
        assert main(["import", str(src), str(out)]) == 2
        assert capsys.readouterr().err == f"error: OUT_DIR {out}: {says}\n"
    assert (tmp_path / "plain").read_text() == "a file\n"


def test_a_full_stdout_is_not_blamed_on_out_dir(tmp_path):
    """`python -m asr.data split ... > /dev/full` wrote its manifests, then said "error: OUT_DIR: No space left on
    device" of the folder it had just filled (a review): the line says it is the printed output."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "asr.data", "split", str(root / "tests/data/an4/clips.jsonl"), str(tmp_path / "s"),
               "--test-fraction", "0.4"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and done.stderr == "error: cannot write the output (No space left on device)\n"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["test.jsonl", "train.jsonl"]
