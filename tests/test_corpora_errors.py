"""asr.corpora on bad input: missing columns, absent audio, empty text, duplicate ids, rates outside the limits or
not as declared, piped commands; each is one line from `python -m asr.data import` naming the file and row, and
--skip-bad drops the utterances at fault in one counted warning instead."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data import main, read_manifest
from tests.corpora_fixtures import (as_audiofolder, as_commonvoice, as_kaldi, as_lhotse, as_librispeech, as_nemo,
                                    as_textfolder, utterances, write_tone)


def refused(argv: list[str], capsys) -> str:
    """The one error line of an import that exits 2."""
    code = main(["import", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def test_a_metadata_file_without_file_name_is_refused_at_its_header(tmp_path, capsys):
    as_audiofolder(utterances(tmp_path), tmp_path)
    edit(tmp_path / "metadata.csv", "file_name", "path")
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert "metadata.csv:1: missing column(s) file_name (the header has: path, transcription, speaker)" in err


def test_a_column_named_twice_in_a_header_is_refused(tmp_path, capsys):
    """file_name,transcription,transcription: the last column silently won (a review)."""
    as_audiofolder(utterances(tmp_path), tmp_path)
    edit(tmp_path / "metadata.csv", "speaker", "transcription")
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert "metadata.csv:1: the column 'transcription' is in the header twice" in err


def test_a_metadata_file_without_a_transcript_column_says_which_it_reads(tmp_path, capsys):
    as_audiofolder(utterances(tmp_path), tmp_path)
    edit(tmp_path / "metadata.csv", "transcription", "words")
    assert "metadata.csv:1: no transcript column (expected one of transcription, text" in refused(
        [tmp_path, tmp_path / "m"], capsys)


def test_absent_audio_names_the_row_and_the_file(tmp_path, capsys):
    utts = utterances(tmp_path)
    as_audiofolder(utts, tmp_path)
    Path(utts[2].audio).unlink()
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert f"metadata.csv:4: {utts[2].audio}: no such file" in err


def test_an_empty_transcript_names_the_row(tmp_path, capsys):
    utts = utterances(tmp_path)
    as_nemo(utts, tmp_path)
    edit(tmp_path / "train_manifest.json", '"text": "three"', '"text": "  "')
    assert "train_manifest.json:3: empty transcript for 'audio/carol/carol-002'" in refused(
        [tmp_path / "train_manifest.json", tmp_path / "m"], capsys)


def test_a_duplicate_id_names_both_rows_and_counts_the_other_problems(tmp_path, capsys):
    utts = utterances(tmp_path)
    data = as_kaldi(utts, tmp_path / "data")
    (data / "text").write_text((data / "text").read_text() + f"{utts[0].id} again\n{utts[1].id} and again\n")
    err = refused([data, tmp_path / "m"], capsys)
    assert f"text:7: duplicate id '{utts[0].id}' (first listed at {data / 'text'}:1) (1 more problem;" in err


def test_a_rate_outside_the_limits_is_refused_naming_the_row(tmp_path, capsys):
    utts = utterances(tmp_path)
    write_tone(Path(utts[1].audio), 0.4, rate=4000)
    as_audiofolder(utts, tmp_path)
    err = refused([tmp_path, tmp_path / "m"], capsys)
    says = "the WAV header says 4000 Hz; sample rates of 8000..384000 Hz are read"
    assert f"metadata.csv:3: {utts[1].audio}: {says}" in err


def test_a_declared_rate_that_the_file_does_not_have_is_refused(tmp_path, capsys):
    utts = utterances(tmp_path)
    write_tone(Path(utts[3].audio), utts[3].duration, rate=8000)
    as_lhotse(utts, tmp_path)
    err = refused([tmp_path, tmp_path / "m"], capsys)
    recordings = tmp_path / "tiny_recordings_train.jsonl.gz"  # the line that says the rate, beside the row's
    assert (f"supervisions_train.jsonl.gz:4: {utts[3].audio}: {recordings}:4 says 16000 Hz, the file is 8000 Hz"
            in err), err


def test_mixed_rates_are_imported_with_one_note_naming_the_odd_file(tmp_path, capsys):
    utts = utterances(tmp_path)
    write_tone(Path(utts[4].audio), utts[4].duration, rate=8000)
    as_audiofolder(utts, tmp_path)
    assert main(["import", str(tmp_path), str(tmp_path / "m")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "sample rates differ" in line]
    assert notes == [f"note: {tmp_path / 'm' / 'all.jsonl'}: the files' sample rates differ (5 at 16000 Hz, 1 at "
                     f"8000 Hz; e.g. {utts[4].audio}, listed at {tmp_path / 'metadata.csv'}:6); all are resampled "
                     f"to 16000 Hz when read"]


def test_a_wrong_given_duration_is_refused(tmp_path, capsys):
    as_nemo(utterances(tmp_path), tmp_path)
    edit(tmp_path / "train_manifest.json", '"duration": 0.3', '"duration": 9')
    assert "train_manifest.json:1: the corpus says 9 s" in refused([tmp_path, tmp_path / "m"], capsys)


@pytest.mark.parametrize("line, says", [
    ("rec sph2pipe -f wav rec.sph |", "recording 'rec' is a piped command ('sph2pipe -f wav rec.sph'); only audio "
                                      "files are read: write its audio to a file first"),
    ("rec feats.ark:123", "recording 'rec' is in an archive"),
])
def test_kaldi_pipes_and_archives_are_refused_with_a_message(tmp_path, capsys, line, says):
    data = as_kaldi(utterances(tmp_path), tmp_path / "data")
    (data / "wav.scp").write_text((data / "wav.scp").read_text() + line + "\n")
    assert f"wav.scp:7: {says}" in refused([data, tmp_path / "m"], capsys)


def test_kaldi_text_of_an_utterance_without_audio_is_refused(tmp_path, capsys):
    data = as_kaldi(utterances(tmp_path), tmp_path / "data")
    (data / "text").write_text((data / "text").read_text() + "ghost hello\n")
    assert "text:7: utterance 'ghost' is not in wav.scp" in refused([data, tmp_path / "m"], capsys)


def test_a_segment_past_the_end_of_its_recording_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {write_tone(tmp_path / 'rec.wav', 1.0)}\n")
    (data / "segments").write_text("u0 rec 0.0 0.5\nu1 rec 0.5 2.5\n")
    (data / "text").write_text("u1 hello\nu0 hi\n")
    assert f"error: {data / 'segments'}:2: segment 0.50-2.50 s of" in refused([data, tmp_path / "m"], capsys)
    assert main(["import", str(data), str(tmp_path / "m"), "--skip-bad"]) == 0  # the row at fault is dropped alone
    assert [u.id for u in read_manifest(tmp_path / "m" / "all.jsonl")] == ["u0"]


def test_a_lhotse_command_source_is_refused(tmp_path, capsys):
    as_lhotse(utterances(tmp_path, 2), tmp_path)
    recs = tmp_path / "tiny_recordings_train.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(recs, "rt")]
    rows[1]["sources"] = [{"type": "command", "channels": [0], "source": "ffmpeg -i x.mp3 -f wav -"}]
    with gzip.open(recs, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert "recordings_train.jsonl.gz:2: recording 'rec-bob-001' comes from a 'command' source" in refused(
        [tmp_path, tmp_path / "m"], capsys)


@pytest.mark.parametrize("bad", ["nan", "-300", "inf"])
def test_a_bad_common_voice_clip_duration_names_clip_durations_tsv(tmp_path, capsys, bad):
    utts = utterances(tmp_path)
    as_commonvoice(utts, tmp_path)
    durations = tmp_path / "clip_durations.tsv"
    lines = durations.read_text().splitlines()
    lines[2] = f"{Path(utts[2].audio).name}\t{bad}"  # the third clip's: line 3 (the first clip has none)
    durations.write_text("\n".join(lines) + "\n")
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {durations}:3: duration must be a positive number of seconds"), err


def test_common_voice_without_a_sentence_column_is_refused(tmp_path, capsys):
    as_commonvoice(utterances(tmp_path), tmp_path)
    edit(tmp_path / "train.tsv", "sentence", "text")
    assert "train.tsv:1: missing column(s) sentence" in refused([tmp_path, tmp_path / "m"], capsys)


def test_audio_without_its_transcript_is_named(tmp_path, capsys):
    utts = utterances(tmp_path)
    src = as_textfolder(utts, tmp_path)
    Path(utts[0].audio).with_suffix(".txt").unlink()
    err = refused([src, tmp_path / "m", "--from", "textfolder"], capsys)
    assert f"{utts[0].audio} (no alice-000.txt or alice-000.lab beside it): empty transcript" in err


def test_skip_bad_drops_the_utterances_at_fault_in_one_counted_line(tmp_path, capsys):
    utts = utterances(tmp_path)
    as_audiofolder(utts, tmp_path)
    Path(utts[2].audio).unlink()
    edit(tmp_path / "metadata.csv", ",four five six,", ",,")
    assert main(["import", str(tmp_path), str(tmp_path / "m"), "--skip-bad"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "kept 4 of 6 utterances, dropped 1 whose audio is missing (first: " in warning[0]
    assert "1 with an empty transcript (first: " in warning[0]
    assert [u.id for u in read_manifest(tmp_path / "m" / "all.jsonl")] == [
        "audio/alice/alice-000", "audio/bob/bob-001", "audio/bob/bob-004", "audio/carol/carol-005"]


def test_a_segment_starting_before_its_recording_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {write_tone(tmp_path / 'rec.wav', 3.0)}\n")
    (data / "text").write_text("u1 hello\n")
    for segment in ("-0.50 -0.20", "-0.50 -1", "-0.50 2.50", "1.50 1.00", "1.50 nan"):  # slicing would take 0.3 s
        (data / "segments").write_text(f"u1 rec {segment}\n")                          # from the end; the whole file
        assert refused([data, tmp_path / "m"], capsys) == (
            f"error: {data / 'segments'}:1: segment 'u1' must start at 0 s or later and end after it (or at -1: the "
            f"recording's end), got {segment}")


def test_a_nemo_segment_starting_before_its_recording_is_refused(tmp_path, capsys):
    utts = utterances(tmp_path, 2)
    manifest = as_nemo(utts, tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1].update(offset=-0.5, duration=0.2)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "starts at -0.50 s, before the recording" in refused([manifest, tmp_path / "m"], capsys)


def test_an_audio_file_without_samples_is_refused(tmp_path, capsys):
    utts = utterances(tmp_path, 3)
    sf.write(utts[1].audio, np.zeros(0, np.float32), 8000)
    as_audiofolder(utts, tmp_path)
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {tmp_path / 'metadata.csv'}:3: {utts[1].audio}: no samples"), err


def test_kaldi_recordings_without_a_transcript_are_left_out_with_a_note(tmp_path, capsys):
    utts = utterances(tmp_path, 3)
    data = as_kaldi(utts, tmp_path / "data")
    edit(data / "text", f"{utts[1].id} {utts[1].text}\n", "")
    assert main(["import", str(data), str(tmp_path / "m")]) == 0
    assert [u.id for u in read_manifest(tmp_path / "m" / "all.jsonl")] == [utts[0].id, utts[2].id]
    assert (f"note: {data / 'wav.scp'}: 1 of 3 recordings has no line in text (e.g. {utts[1].id!r}), so no "
            "transcript: not imported") in capsys.readouterr().err


@pytest.mark.parametrize("text", ["...", "42", "日本語"])
def test_a_transcript_with_nothing_the_vocabulary_can_spell_is_refused(tmp_path, capsys, text):
    utts = utterances(tmp_path, 3)
    as_audiofolder(utts, tmp_path)
    edit(tmp_path / "metadata.csv", f",{utts[1].text},", f",{text},")
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {tmp_path / 'metadata.csv'}:3: transcript {text!r} for 'audio/bob/bob-001' holds "
                          "nothing the vocabulary can spell"), err


def test_a_nemo_text_that_is_not_a_string_is_refused(tmp_path, capsys):
    utts = utterances(tmp_path, 2)
    manifest = as_nemo(utts, tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["text"] = [rows[1]["text"]]  # a list: it used to become "['...']"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert f"{manifest}:2: text must be a string, got [" in refused([manifest, tmp_path / "m"], capsys)


def test_skip_bad_counts_transcripts_with_nothing_to_spell_as_such(tmp_path, capsys):
    utts = utterances(tmp_path, 3)
    as_audiofolder(utts, tmp_path)
    edit(tmp_path / "metadata.csv", f",{utts[1].text},", ",...,")
    assert main(["import", str(tmp_path), str(tmp_path / "m"), "--skip-bad"]) == 0
    assert "kept 2 of 3 utterances, dropped 1 with nothing to spell (first: " in capsys.readouterr().err


def test_an_absurd_segment_end_is_shown_in_a_few_digits(tmp_path, capsys):
    utts = utterances(tmp_path, 2)
    manifest = as_nemo(utts, tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1].update(offset=0.1, duration=1e308)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = refused([manifest, tmp_path / "m"], capsys)
    assert "duration 1e+308 s is past 24 h" in err and len(err) < 300, err  # refused before its segment is read


@pytest.mark.parametrize("how", ["as it is", "through ..", "through a link"])
def test_a_file_in_a_training_set_and_a_held_out_set_is_refused_naming_both_rows(tmp_path, capsys, how):
    """A clip in train and in test would be scored on what the model trained on, however its path is written."""
    utts = utterances(tmp_path)
    as_nemo(utts[3:], tmp_path).rename(tmp_path / "test_manifest.json")
    as_nemo(utts[:4], tmp_path)
    if how == "through ..":
        edit(tmp_path / "train_manifest.json", "audio/alice/alice-003", "audio/alice/../alice/alice-003")
    elif how == "through a link":
        (tmp_path / "linked").symlink_to(tmp_path / "audio")
        edit(tmp_path / "train_manifest.json", "audio/alice/alice-003", "linked/alice/alice-003")
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert f"train_manifest.json:4: {tmp_path}/" in err and "alice-003.wav is in held-out set 'test' too (" in err
    assert f"({tmp_path / 'test_manifest.json'}:1): it would be scored on what the model trained on" in err, err
    assert not (tmp_path / "m").exists()


def test_sets_sharing_files_that_are_not_held_out_are_imported_with_a_note(tmp_path, capsys):
    """Kaldi's data/train and its copy data/train_hires (utils/copy_data_dir.sh), lhotse's nested subsets: fine."""
    utts = utterances(tmp_path)
    data = as_kaldi(utts, tmp_path / "data" / "train")
    (tmp_path / "data" / "train_hires").mkdir()
    for name in ("wav.scp", "text", "utt2spk"):
        (tmp_path / "data" / "train_hires" / name).write_text((data / name).read_text())
    assert main(["import", str(tmp_path / "data"), str(tmp_path / "m"), "--from", "kaldi"]) == 0
    err = capsys.readouterr().err
    assert "note: sets 'train' and 'train_hires' share 6 audio files (e.g. " in err, err
    assert len(read_manifest(tmp_path / "m" / "train_hires.jsonl")) == 6


def test_a_clip_whose_txt_and_lab_differ_is_refused_naming_both(tmp_path, capsys):
    utts = utterances(tmp_path)
    src = as_textfolder(utts, tmp_path)
    Path(utts[0].audio).with_suffix(".lab").write_text("zero\n")  # the same words as its .txt: fine
    assert main(["import", str(src), str(tmp_path / "m"), "--from", "textfolder"]) == 0
    Path(utts[0].audio).with_suffix(".txt").write_text("Zero.\n")
    Path(utts[0].audio).with_suffix(".lab").write_text("ZERO\n")  # the same words once normalised: fine too
    assert main(["import", str(src), str(tmp_path / "m1", ), "--from", "textfolder"]) == 0
    assert read_manifest(tmp_path / "m1" / "all.jsonl")[0].text == "Zero."
    Path(utts[0].audio).with_suffix(".lab").write_text("nine " * 40 + "\n")
    err = refused([src, tmp_path / "m2", "--from", "textfolder"], capsys)
    assert (f"{Path(utts[0].audio).with_suffix('.txt')}:1: alice-000.lab beside it says otherwise ('Zero.' / 'nine "
            "nine nine nine nine nine nine nine nine nine nine nine...'); keep one") in err, err
    assert main(["import", str(src), str(tmp_path / "m3", ), "--from", "textfolder", "--skip-bad"]) == 0
    assert "kept 5 of 6 utterances, dropped 1 whose transcripts disagree (first: " in capsys.readouterr().err
    Path(utts[0].audio).with_suffix(".TXT").write_text("zero\n")  # agrees with the .txt: the .lab is named
    err = refused([src, tmp_path / "m4", "--from", "textfolder"], capsys)
    assert "alice-000.lab beside it says otherwise ('zero' / 'nine" in err, err  # (.TXT read first: it sorts first)


def test_audio_files_the_metadata_does_not_list_are_noted(tmp_path, capsys):
    utts = utterances(tmp_path)
    as_audiofolder(utts[:4], tmp_path)
    assert main(["import", str(tmp_path), str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert (f"note: {tmp_path / 'metadata.csv'}: 2 audio files in its folder are not listed in it, so not imported "
            "(e.g. audio/bob/bob-004.wav)") in err, err
    assert len(read_manifest(tmp_path / "m" / "all.jsonl")) == 4
    as_audiofolder(utts, tmp_path)
    edit(tmp_path / "metadata.csv", "audio/alice/alice-000", "audio/alice/../alice/alice-000")  # listed all the same
    (tmp_path / "linked").symlink_to(tmp_path / "audio" / "bob")
    edit(tmp_path / "metadata.csv", "audio/bob/bob-001", "linked/bob-001")  # and through a link
    assert main(["import", str(tmp_path), str(tmp_path / "m")]) == 0
    assert "not listed" not in capsys.readouterr().err


@pytest.mark.parametrize("name, held", [
    ("dev", True), ("devel", True), ("dev93", True), ("test-other", True), ("eval2000", True), ("testing", True),
    ("validation", True), ("heldout", True), ("train_dev", True), ("dev-clean", True),
    ("train", False), ("validated", False), ("train_hires", False), ("all", False), ("devices", False),
])
def test_held_out_sets_are_told_by_their_names(name, held):
    from asr.corpora.shared import HELD_OUT

    assert bool(HELD_OUT.search(name)) == held


@pytest.mark.parametrize("train, test, refused", [
    ((None, None), (2.0, 2.0), True),  # the whole recording in train, a segment of it in test
    ((0.0, 10.0), (2.0, 2.0), True),  # lhotse's whole-recording supervision: an overlapping segment
    ((0.0, 2.0), (2.0, 2.0), False),  # segments side by side
    ((0.5, 3.0), (3.5, None), False),  # the test one runs to the end
    ((4.0, None), (3.5, 1.0), True),
])
def test_segments_of_one_recording_in_train_and_test_are_refused_where_they_overlap(tmp_path, train, test, refused):
    from asr.corpora.rows import Row
    from asr.corpora.shared import shared_files

    audio = write_tone(tmp_path / "rec.wav", 6.0)
    rows = {name: [Row(f"{name}.txt:1", f"{name}-1", audio, "hello", duration=d, start=s)]
            for name, (s, d) in (("train", train), ("test", test))}
    error = shared_files(rows)
    assert bool(error) == refused, error
    if refused:
        assert error.startswith(f"train.txt:1: {audio} is in held-out set 'test' too (test.txt:1): it would be scored")


def test_an_import_refuses_to_write_over_a_manifest_it_reads(tmp_path, capsys):
    """A NeMo manifest DIR/train.jsonl imported into DIR would be replaced by OUT_DIR/train.jsonl."""
    manifest = as_nemo(utterances(tmp_path), tmp_path).rename(tmp_path / "train.jsonl")
    before = manifest.read_bytes()
    for src in (manifest, tmp_path):  # the file, or the folder it is read from
        err = refused([src, tmp_path / "audio" / "..", "--test-fraction", "0.3"], capsys)
        assert err.startswith(f"error: {tmp_path / 'audio' / '..' / 'train.jsonl'}: ") and str(manifest) in err
        assert manifest.read_bytes() == before and sorted(tmp_path.glob("*.jsonl")) == [manifest]


def test_a_kaldi_directory_imported_into_itself_is_refused_naming_its_segments_file(tmp_path, capsys):
    """The cut segments go to OUT_DIR/segments/, where a Kaldi directory keeps its segments file. Before: "error:
    DIR/segments/all: Not a directory", which said nothing of the clash."""
    data = kaldi_segments(tmp_path, "u1 rec 0.00 1.00\nu2 rec 1.00 -1\n")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    err = refused([data, data], capsys)
    assert err == (f"error: {data / 'segments'}: the import cuts the corpus's segments into a folder of this name, "
                   "and a file is there (the corpus's own segments?); give another OUT_DIR"), err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before  # nothing written, nothing lost


def kaldi_segments(tmp_path: Path, segments: str, seconds: float = 3.0) -> Path:
    """A Kaldi data directory of one recording (rec, `seconds` long) and the segments u1 and u2 of it."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "wav.scp").write_text(f"rec {write_tone(tmp_path / 'rec.wav', seconds)}\n")
    (data / "segments").write_text(segments)
    (data / "text").write_text("u1 hello\nu2 bye\n")
    return data


def test_a_segment_that_cannot_be_written_leaves_the_earlier_import_whole(tmp_path, capsys, monkeypatch):
    data = kaldi_segments(tmp_path, "u1 rec 0.00 1.25\nu2 rec 1.50 -1\n")
    out = tmp_path / "m"
    assert main(["import", str(data), str(out)]) == 0
    earlier = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    (data / "segments").write_text("u1 rec 0.00 1.00\nu2 rec 1.00 -1\n")
    real, calls = sf.write, []

    def full_disk(path, samples, *args, **kwargs):  # the second cut: half written, then the disk is full
        path = os.fsdecode(path)  # (asr.audio hands soundfile bytes paths)
        calls.append(Path(path))
        if len(calls) < 2:
            return real(path, samples, *args, **kwargs)
        half = io.BytesIO()
        real(half, samples, *args, **kwargs)
        Path(path).write_bytes(half.getvalue()[:len(half.getvalue()) // 2])
        raise sf.LibsndfileError(2, prefix=f"Error writing {str(path)!r}: ")

    monkeypatch.setattr(sf, "write", full_disk)
    err = refused([data, out], capsys)
    assert err.startswith(f"error: {out.absolute() / 'segments' / 'all' / 'u2.wav'}: cannot write it ("), err
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == earlier  # no part, no temporary
    monkeypatch.undo()
    cut = out / "segments" / "all" / "u2.wav"  # a folder where a cut goes: said with its own name, nothing left
    cut.unlink()
    cut.mkdir()
    assert refused([data, out], capsys).startswith(f"error: {cut.absolute()}: cannot write it (")
    assert not [p for p in out.rglob("*.tmp")]


def test_a_librispeech_transcript_that_is_not_utf8_is_named(tmp_path, capsys):
    split, _ = as_librispeech(tmp_path, {"19": ["HELLO", "WORLD"]})
    trans = split / "19" / "7" / "19-7.trans.txt"
    trans.write_bytes(b"19-7-0000 HELLO\n19-7-0001 CAF\xc9\n")  # Latin-1
    err = refused([split, tmp_path / "m", "--workers", "1"], capsys)
    assert err == f"error: {trans}:2: not UTF-8 text (byte 0xC9 at column 14); save it as UTF-8", err


def test_a_file_that_is_not_utf8_is_named_with_its_line_not_a_decoders_offset(tmp_path):
    """A Latin-1 byte on line 50,002 of a Kaldi text was reported "at position 218" (a review)."""
    from asr.lm import LMError
    from asr.lm.arpa import numbered_lines
    from asr.manifest import ManifestError, numbered_rows

    text = tmp_path / "text"
    text.write_bytes(b"".join(b"u%d hello\n" % i for i in range(50_001)) + b"u50001 caf\xe9\n")
    says = f"{text}:50002: not UTF-8 text (byte 0xE9 at column 11); save it as UTF-8"
    with pytest.raises(LMError) as lm:
        list(numbered_lines(text))
    with gzip.open(tmp_path / "rows.jsonl.gz", "wb") as f:
        f.write(b'{"id": "a"}\n{"id": "b\xe9"}\n')
    with pytest.raises(ManifestError) as manifest:
        numbered_rows(text)
    assert str(lm.value) == str(manifest.value) == says
    assert "rows.jsonl.gz:2: not UTF-8 text (byte 0xE9 at column 10)" in refused_text(tmp_path / "rows.jsonl.gz")


def refused_text(path: Path) -> str:
    from asr.corpora.tables import read_lines

    with pytest.raises(Exception) as e:
        read_lines(path)
    return str(e.value)


@pytest.mark.parametrize("segment", ["0 0.0001", "1.0 1.0004", "2.9999 -1"])  # -1, to the end: known from the file
def test_a_segment_too_short_for_a_manifest_is_refused(tmp_path, capsys, segment):
    """A manifest keeps durations to the ms: a shorter segment would be written as 0 s, which reading refuses."""
    data = kaldi_segments(tmp_path, f"u1 rec 0.00 1.00\nu2 rec {segment}\n")
    err = refused([data, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {data / 'segments'}:2: ") and "shorter than 1 ms" in err, err
    assert main(["import", str(data), str(tmp_path / "m"), "--skip-bad"]) == 0  # dropped, the rest imported
    assert [u.id for u in read_manifest(tmp_path / "m" / "all.jsonl")] == ["u1"]


def test_a_segment_of_one_ms_is_imported(tmp_path):
    data = kaldi_segments(tmp_path, "u1 rec 0.00 1.00\nu2 rec 1.000 1.001\n")  # 1.001 - 1.0 < 0.001 in floats
    assert main(["import", str(data), str(tmp_path / "m")]) == 0
    assert [u.duration for u in read_manifest(tmp_path / "m" / "all.jsonl")] == [1.0, 0.001]


@pytest.mark.parametrize("layout", ["nemo", "lhotse"])
def test_a_given_duration_too_short_for_a_manifest_is_refused(tmp_path, capsys, layout):
    utts = utterances(tmp_path, 2)
    if layout == "nemo":
        src = as_nemo(utts, tmp_path)
        rows = [json.loads(line) for line in src.read_text().splitlines()]
        rows[1].update(offset=0.1, duration=0.0002)
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        src = as_lhotse(utts, tmp_path)
        sups = tmp_path / "tiny_supervisions_train.jsonl.gz"
        rows = [json.loads(line) for line in gzip.open(sups, "rt")]
        rows[1].update(start=0.1, duration=0.0002)
        with gzip.open(sups, "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    err = refused([src, tmp_path / "m"], capsys)
    assert ":2: " in err and "duration 0.0002 s is shorter than" in err, err


def test_audio_too_short_for_a_manifest_is_refused(tmp_path, capsys):
    utts = utterances(tmp_path, 3)
    sf.write(utts[1].audio, np.full(1, 0.1, np.float32), 16000)  # one sample: 0.0000625 s, "0.0" in a manifest
    as_audiofolder(utts, tmp_path)
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {tmp_path / 'metadata.csv'}:3: {utts[1].audio}: ") and "shorter than" in err, err


@pytest.mark.parametrize("file", ["wav.scp", "segments", "utt2spk"])
def test_a_key_listed_twice_in_a_kaldi_file_is_refused_naming_the_second(tmp_path, capsys, file):
    data = kaldi_segments(tmp_path, "u1 rec 0.00 1.00\nu2 rec 1.00 -1\n")
    (data / "utt2spk").write_text("u1 a\nu2 b\n")
    first = (data / file).read_text().splitlines()[0]
    (data / file).write_text((data / file).read_text() + first.replace("rec 0.00", "rec 0.50") + "\n")
    key = first.split()[0]
    assert refused([data, tmp_path / "m"], capsys).startswith(
        f"error: {data / file}:{3 if file != 'wav.scp' else 2}: {key!r} is listed twice (first on line 1)")


@pytest.mark.parametrize("field, value, says", [
    ("id", [1, 2], "id must be a string or an integer, got [1, 2]"),
    ("speaker", {"a": 1}, 'speaker must be a string or an integer, got {"a": 1}'),
    ("id", 1.5, "id must be a string or an integer, got 1.5"),
    ("transcription", 5, "transcription must be a string, got 5"),
    ("file_name", ["a.wav"], 'file_name must be a string, got ["a.wav"]'),
])
def test_audiofolder_fields_of_the_wrong_type_are_refused_naming_the_field(tmp_path, capsys, field, value, says):
    as_audiofolder(utterances(tmp_path, 3), tmp_path, jsonl=True)
    path = tmp_path / "metadata.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1][field] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert refused([tmp_path, tmp_path / "m"], capsys) == f"error: {path}:2: {says}"


def test_audiofolder_integer_ids_and_speakers_are_read_as_text(tmp_path):
    as_audiofolder(utterances(tmp_path, 3), tmp_path, jsonl=True)
    path = tmp_path / "metadata.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [{**r, "id": i, "speaker": 100 + i} for i, r in enumerate(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["import", str(tmp_path), str(tmp_path / "m")]) == 0
    assert [(u.id, u.speaker) for u in read_manifest(tmp_path / "m" / "all.jsonl")] == [
        ("0", "100"), ("1", "101"), ("2", "102")]


def test_audiofolder_null_speaker_or_id_is_not_known(tmp_path):
    """A Hugging Face export writes null where a value is not known: no speaker, the id from the file's path."""
    as_audiofolder(utterances(tmp_path, 3), tmp_path, jsonl=True)
    path = tmp_path / "metadata.jsonl"
    rows = [{**r, "id": None, "speaker": None} for r in map(json.loads, path.read_text().splitlines())]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["import", str(tmp_path), str(tmp_path / "m")]) == 0
    utts = read_manifest(tmp_path / "m" / "all.jsonl")
    assert all(u.speaker == "" and u.id for u in utts) and len({u.id for u in utts}) == 3


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x7f"])
def test_a_control_character_in_a_transcript_is_refused(tmp_path, capsys, char):
    utts = utterances(tmp_path, 3)
    as_audiofolder(utts, tmp_path)
    edit(tmp_path / "metadata.csv", f",{utts[1].text},", f",thr{char}ee,")
    assert refused([tmp_path, tmp_path / "m"], capsys) == (
        f"error: {tmp_path / 'metadata.csv'}:3: transcript for 'audio/bob/bob-001' holds a control character "
        f"({char!r})")


def test_a_control_character_in_a_librispeech_transcript_is_refused(tmp_path, capsys):
    split, _ = as_librispeech(tmp_path, {"19": ["HELLO", "WOR\x00LD"]})
    err = refused([split, tmp_path / "m", "--workers", "1"], capsys)
    assert err.startswith(f"error: {split / '19' / '7' / '19-7.trans.txt'}:2: ") and "control character" in err, err


def test_an_id_with_a_tab_and_an_absurd_given_duration_are_refused_at_import(tmp_path, capsys):
    """The importer wrote manifests that read_manifest then refused: an id holding a tab (lhotse gives ids), and,
    with --trust-durations, a duration of 1e308 s."""
    utts = utterances(tmp_path, 2)
    (tmp_path / "lhotse").mkdir()
    root = as_lhotse(utts, tmp_path / "lhotse")
    sups = root / "tiny_supervisions_train.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(sups, "rt")]
    rows[1]["id"] = "a\tb"
    with gzip.open(sups, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    assert "id must hold no control character or line break, got 'a\\tb'" in refused([root, tmp_path / "m"], capsys)
    manifest = as_nemo(utterances(tmp_path / "n", 2), tmp_path / "n")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["duration"] = 1e308
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "duration 1e+308 s is past 24 h" in refused([manifest, tmp_path / "m2", "--trust-durations"], capsys)


def test_audio_longer_than_a_manifest_holds_is_refused_at_import(tmp_path, capsys):
    """A 25 h recording read from its header was imported, and the manifest then refused by read_manifest."""
    import struct

    folder = tmp_path / "long"
    folder.mkdir()
    rate, frames = 8000, 25 * 3600 * 8000
    wav = folder / "talk.wav"
    with open(wav, "wb") as f:  # a 16-bit mono WAV header, then the file made as long as it says (sparse)
        f.write(b"RIFF" + struct.pack("<I", 36 + 2 * frames) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate,
                2 * rate, 2, 16) + b"data" + struct.pack("<I", 2 * frames))
        f.truncate(44 + 2 * frames)
    (folder / "talk.txt").write_text("a very long talk\n")
    assert f"{wav}: 25 h of audio, past the 24 h an utterance may last" in refused([folder, tmp_path / "m"], capsys)


def test_a_corpus_listing_no_utterances_is_named_not_the_manifest_it_would_write(tmp_path, capsys):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "metadata.csv").write_text("file_name,transcription\n")  # a header, no rows
    assert refused([tmp_path / "corpus", tmp_path / "m"], capsys) == (
        f"error: {tmp_path / 'corpus'}: set 'all' lists no utterances")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_a_set_whose_every_utterance_is_dropped_names_the_file_listing_them(tmp_path, capsys):
    (tmp_path / "corpus").mkdir()
    metadata = tmp_path / "corpus" / "metadata.csv"
    metadata.write_text("file_name,transcription\nnone.wav,hello\ngone.wav,world\n")
    assert main(["import", str(tmp_path / "corpus"), str(tmp_path / "m"), "--skip-bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {metadata}: none of the 2 utterances listed is usable", err


def test_a_set_dropped_whole_from_many_files_names_the_first_and_counts_the_rest(tmp_path):
    from asr.corpora.notes import no_utterances
    from asr.corpora.rows import Row

    rows = [Row(f"{tmp_path / f'clip{i}.txt'}:1", f"clip{i}", tmp_path / f"clip{i}.wav", "hi") for i in range(3)]
    assert no_utterances("all", rows, tmp_path) == (f"{tmp_path / 'clip0.txt'} (and 2 more files): none of the 3 "
                                                    "utterances listed is usable")


def test_an_empty_set_read_through_the_library_names_the_corpus(tmp_path):
    from asr.corpora import CorpusError, prepare_audiofolder

    (tmp_path / "metadata.csv").write_text("file_name,transcription\n")
    with pytest.raises(CorpusError, match=f"^{tmp_path}: set 'all' lists no utterances$"):
        prepare_audiofolder(tmp_path)


def test_kaldi_audio_that_is_missing_is_named_at_its_wav_scp_line(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {write_tone(tmp_path / 'a.wav', 1.0)}\nb {tmp_path / 'gone.wav'}\n")
    (data / "text").write_text("b bye\na hello\n")
    assert refused([data, tmp_path / "m"], capsys).startswith(f"error: {data / 'wav.scp'}:2: {tmp_path / 'gone.wav'}: "
                                                              "no such file")
    (data / "segments").write_text("s1 a 0.0 0.5\ns2 b 0.0 0.5\n")
    (data / "text").write_text("s2 bye\ns1 hello\n")
    assert refused([data, tmp_path / "m"], capsys).startswith(f"error: {data / 'wav.scp'}:2: ")


def test_lhotse_audio_that_cannot_be_read_is_named_at_its_recordings_line(tmp_path, capsys):
    utts = utterances(tmp_path, 2)
    as_lhotse(utts, tmp_path)
    Path(utts[1].audio).write_bytes(b"not audio at all" * 10)
    err = refused([tmp_path, tmp_path / "m"], capsys)
    assert err.startswith(f"error: {tmp_path / 'tiny_recordings_train.jsonl.gz'}:2: "), err
