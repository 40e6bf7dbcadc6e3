"""The training and dev sets a run starts with: what it refuses (an empty or unusable dev set, a dev reference
that normalises to nothing), what it drops and says so (missing audio, empty or too long transcripts), and the
transcripts that lose characters the vocabulary cannot spell."""

from __future__ import annotations

import dataclasses

import pytest

from asr.data import ManifestError, write_manifest
from asr.train import main
from asr.training import Trainer
from tests.test_train import tiny_config, tiny_flags


def one_epoch(train, dev, out) -> list[str]:
    return [*tiny_flags(train, out), "--dev", str(dev), "--epochs", "1", "--no-spec-augment", "--no-speed-perturb"]


def test_an_empty_dev_manifest_is_an_error(clips_manifest, tmp_path, capsys):
    dev = tmp_path / "dev.jsonl"
    dev.write_text("")
    assert main(one_epoch(clips_manifest, dev, tmp_path / "run")) == 2
    captured = capsys.readouterr()
    assert "best_dev_wer" not in captured.out
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and str(dev) in err and "no utterances" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_dev_set_without_audio_is_an_error(clips, clips_manifest, tmp_path, capsys):
    dev = tmp_path / "dev.jsonl"
    write_manifest(dev, [dataclasses.replace(u, audio=str(tmp_path / f"{u.id}.flac")) for u in clips[:2]])
    assert main(one_epoch(clips_manifest, dev, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert f"error: {dev}: no usable utterances" in err and clips[0].id in err


def test_dropped_dev_utterances_are_reported(clips, clips_manifest, tmp_path, capsys):
    dev = tmp_path / "dev.jsonl"
    gone = dataclasses.replace(clips[0], id="gone", audio=str(tmp_path / "gone.flac"))
    write_manifest(dev, [*clips[1:3], gone])
    trainer = Trainer(dataclasses.replace(tiny_config(clips_manifest, tmp_path / "run"), dev=str(dev)))
    assert [u.id for u in trainer.dev_utts] == [clips[1].id, clips[2].id]
    lines = [line for line in capsys.readouterr().err.splitlines() if str(dev) in line and "trains on" not in line]
    assert len(lines) == 1
    assert "kept 2 of 3" in lines[0] and "1 whose audio is missing" in lines[0] and "gone" in lines[0]


def test_a_dev_reference_empty_after_normalisation_is_refused_by_name(clips, clips_manifest, tmp_path, capsys):
    dev = tmp_path / "dev.jsonl"
    write_manifest(dev, [*clips[:2], dataclasses.replace(clips[2], id="digits", text="6 8 3 3 0 7 5")])
    assert main(one_epoch(clips_manifest, dev, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(dev) in err and "digits" in err and "empty" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_empty_training_transcript_is_dropped_as_empty(clips, clips_manifest, tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    write_manifest(train, [*clips[:2], dataclasses.replace(clips[3], id="digits", text="6 8 3"),
                           dataclasses.replace(clips[2], id="long", text="STOP " * 40)])
    trainer = Trainer(dataclasses.replace(tiny_config(train, tmp_path / "run"), dev=str(clips_manifest)))
    assert [u.id for u in trainer.train_utts] == [clips[0].id, clips[1].id]
    lines = [line for line in capsys.readouterr().err.splitlines() if "kept 2 of 4" in line]
    assert len(lines) == 1
    assert "1 with an empty transcript" in lines[0] and "(digits)" in lines[0]
    assert "1 whose transcript is too long for its audio (long)" in lines[0]


def test_transcripts_that_lose_characters_are_named_once_per_set(clips, tmp_path, capsys):
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    write_manifest(train, [*clips[:3], dataclasses.replace(clips[3], id="num", text="M E L V I N 2")])
    write_manifest(dev, [*clips[:2], dataclasses.replace(clips[2], id="sz", text="STOP STRASSE STRAßE")])
    Trainer(dataclasses.replace(tiny_config(train, tmp_path / "run"), dev=str(dev)))
    notes = [line for line in capsys.readouterr().err.splitlines() if "lose characters" in line]
    assert len(notes) == 2
    assert str(train) in notes[0] and "1 of 4" in notes[0] and "num (drops '2')" in notes[0]
    assert str(dev) in notes[1] and "1 of 3" in notes[1] and "sz (drops 'ß')" in notes[1]


def test_clean_sets_say_nothing_about_them(clips_manifest, tmp_path, capsys):
    Trainer(tiny_config(clips_manifest, tmp_path / "run"))
    err = capsys.readouterr().err
    assert "lose characters" not in err and "kept" not in err


def test_the_dev_set_is_checked_by_the_trainer_too(clips_manifest, tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text("\n")
    with pytest.raises(ManifestError, match="no utterances"):
        Trainer(dataclasses.replace(tiny_config(clips_manifest, tmp_path / "run"), dev=str(dev)))


def test_dev_audio_that_the_run_trains_on_is_said_in_one_warning(clips, clips_manifest, tmp_path, capsys):
    """best.pt is chosen on dev: dev clips in --train too choose it on what the run learns (the import refuses such
    sets; asr.train said nothing)."""
    dev = tmp_path / "dev.jsonl"
    elsewhere = tmp_path / "copy.flac"  # the same bytes under another path is another recording, as for the import
    elsewhere.write_bytes(open(clips[3].audio, "rb").read())
    write_manifest(dev, [*[dataclasses.replace(u, id=f"d{i}") for i, u in enumerate(clips[:2])],
                         dataclasses.replace(clips[3], id="other", audio=str(elsewhere))])
    Trainer(dataclasses.replace(tiny_config(clips_manifest, tmp_path / "run"), dev=str(dev)))
    lines = [line for line in capsys.readouterr().err.splitlines() if "trains on" in line]
    assert lines == [f"warning: {dev}: 2 of 3 dev utterances' audio is in {clips_manifest} too (d0, d1): best.pt "
                     "is chosen on what the run trains on; hold them out of --train"], lines


def test_a_dev_set_apart_from_training_or_the_training_manifest_itself_gets_no_warning(clips, clips_manifest, tmp_path,
                                                                                      capsys):
    """The same manifest given for both is as typed (a check that a tiny set can be learnt, as the tests' runs are)."""
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    write_manifest(train, clips[2:])
    write_manifest(dev, clips[:2])
    Trainer(dataclasses.replace(tiny_config(str(train), tmp_path / "run"), dev=str(dev)))
    Trainer(dataclasses.replace(tiny_config(str(train), tmp_path / "run2"), dev=str(tmp_path / ".." / tmp_path.name /
                                                                                    "train.jsonl")))
    assert "trains on" not in capsys.readouterr().err


def test_dev_audio_that_cannot_be_read_is_dropped_before_training_with_its_reason(clips, clips_manifest, tmp_path,
                                                                                 capsys):
    """Before: found when dev was decoded after the first epoch, which ended the run (an epoch of LibriSpeech lost)."""
    dev = tmp_path / "dev.jsonl"
    text_file = tmp_path / "notes.flac"
    text_file.write_text("not audio")
    write_manifest(dev, [*clips[:2], dataclasses.replace(clips[2], id="text", audio=str(text_file))])
    trainer = Trainer(dataclasses.replace(tiny_config(clips_manifest, tmp_path / "run"), dev=str(dev)))
    assert [u.id for u in trainer.dev_utts] == [clips[0].id, clips[1].id]
    lines = [line for line in capsys.readouterr().err.splitlines() if "kept 2 of 3" in line]
    assert len(lines) == 1 and "1 whose audio cannot be read (text); " in lines[0] and str(text_file) in lines[0], lines


def test_utterances_longer_than_a_batch_are_dropped_and_said(clips, clips_manifest, tmp_path, capsys):
    """Before, an utterance longer than --batch-seconds became a batch of its own, however long (a 30-minute file
    under --batch-seconds 120: 15 times the memory asked for, and out of memory mid-epoch)."""
    train = tmp_path / "train.jsonl"
    write_manifest(train, clips)  # 0.8, 2.3, 2.5, 3.0 and 4.0 s
    trainer = Trainer(dataclasses.replace(tiny_config(train, tmp_path / "run"), dev=str(clips_manifest),
                                          batch_seconds=2.6))
    assert sorted(u.duration for u in trainer.train_utts) == [0.8, 2.3, 2.5]
    assert max(sum(trainer.train_utts[i].duration for i in b) for b in trainer.sampler) <= 2.6
    err = capsys.readouterr().err
    assert f"warning: {train}: kept 3 of 5 utterances, dropped 2 longer than --batch-seconds 2.6" in err
    assert "an406-fcaw-b" in err and "cen4-fcaw-b" in err

    with pytest.raises(ManifestError, match="no usable utterances.*longer than --batch-seconds 0.5"):
        Trainer(dataclasses.replace(tiny_config(train, tmp_path / "run2"), batch_seconds=0.5))
