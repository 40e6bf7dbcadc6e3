"""asr.corpora: each layout round-trips (our manifest -> its format -> import -> the same utterances), is detected,
and cuts segments; `python -m asr.data import` writes the manifests and prints the counts."""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import pytest

from asr.audio import audio_duration
from asr.corpora import (FORMATS, ImportSettings, detect_format, prepare_audiofolder, prepare_commonvoice,
                         prepare_kaldi, prepare_lhotse, prepare_librispeech, prepare_nemo, prepare_textfolder)
from asr.corpora import rows as rows_module
from asr.corpora import textfolder
from asr.corpora.cli import say
from asr.data import main, read_manifest, write_manifest
from asr.manifest import Utterance
from tests.corpora_fixtures import (as_audiofolder, as_commonvoice, as_kaldi, as_lhotse, as_librispeech, as_nemo,
                                    as_textfolder, key, moved, utterances, write_tone)


def keys(utts) -> list[tuple]:
    return sorted(map(key, utts))


@pytest.mark.parametrize("jsonl", [False, True], ids=["csv", "jsonl"])
def test_audiofolder_round_trip(tmp_path, jsonl):
    utts = utterances(tmp_path)
    sets = prepare_audiofolder(as_audiofolder(utts, tmp_path, jsonl), tmp_path / "out")
    assert list(sets) == ["all"] and keys(sets["all"]) == keys(utts)
    assert sets["all"][0].id == "audio/alice/alice-000"  # the file's path below the metadata, without extension
    assert read_manifest(tmp_path / "out" / "all.jsonl") == sets["all"]


def test_audiofolder_with_a_folder_per_split(tmp_path):
    utts = utterances(tmp_path / "train") + utterances(tmp_path / "test", 2)
    as_audiofolder(utts[:6], tmp_path / "train")
    as_audiofolder(utts[6:], tmp_path / "test")
    sets = prepare_audiofolder(tmp_path)
    assert sorted(sets) == ["test", "train"] and keys(sets["test"]) == keys(utts[6:])


def test_nemo_round_trip(tmp_path):
    utts = utterances(tmp_path)
    sets = prepare_nemo(as_nemo(utts, tmp_path))
    assert list(sets) == ["train"] and keys(sets["train"]) == keys(utts)


def test_lhotse_round_trip(tmp_path):
    utts = utterances(tmp_path)
    sets = prepare_lhotse(as_lhotse(utts, tmp_path))
    assert list(sets) == ["train"] and keys(sets["train"]) == keys(utts)
    assert [u.id for u in sets["train"]] == [u.id for u in utts]  # the supervisions' ids


def test_kaldi_round_trip(tmp_path):
    utts = utterances(tmp_path)
    sets = prepare_kaldi(as_kaldi(utts, tmp_path / "data" / "train"))
    assert keys(sets["all"]) == keys(utts) and [u.id for u in sets["all"]] == [u.id for u in utts]
    assert list(prepare_kaldi(tmp_path / "data")) == ["train"]  # a folder of data directories: a set each


def test_commonvoice_round_trip_with_and_without_given_durations(tmp_path):
    utts = moved(utterances(tmp_path), tmp_path)
    sets = prepare_commonvoice(as_commonvoice(utterances(tmp_path), tmp_path))
    assert list(sets) == ["train"] and keys(sets["train"]) == keys(utts)
    assert sets["train"][0].id == "alice-000"


def test_textfolder_round_trip_with_txt_and_htk_lab(tmp_path):
    utts = utterances(tmp_path)
    sets = prepare_textfolder(as_textfolder(utts, tmp_path))
    assert keys(sets["all"]) == keys(utts)  # the HTK .lab's words without its silences
    assert sets["all"][0].id == "alice/alice-000" and sets["all"][0].speaker == "alice"  # the first folder


def test_textfolder_transcripts_with_upper_case_extensions(tmp_path):
    """Before: b.wav with b.TXT beside it was "no b.txt or b.lab beside it: empty transcript" (audio extensions were
    matched in any case, transcripts' in lower case only)."""
    utts = utterances(tmp_path)
    root = as_textfolder(utts, tmp_path)
    for u in utts[:-1]:
        txt = Path(u.audio).with_suffix(".txt")
        txt.rename(txt.with_suffix(".Txt" if u is utts[0] else ".TXT"))
    lab = Path(utts[-1].audio).with_suffix(".lab")
    lab.rename(lab.with_suffix(".LAB"))  # still read as HTK labels
    assert keys(prepare_textfolder(root)["all"]) == keys(utts)
    assert textfolder.has_transcripts(root)


def test_librispeech_round_trip(tmp_path):
    split, utts = as_librispeech(tmp_path, {"84": ["A B", "C"], "174": ["D"]})
    assert keys(prepare_librispeech(split)["dev-clean"]) == keys(utts)
    assert list(prepare_librispeech(tmp_path)) == ["dev-clean"]  # the folder of splits


def test_librispeech_as_its_tarball_extracts_is_found_one_folder_down(tmp_path):
    """tar xf dev-clean.tar.gz makes LibriSpeech/dev-clean/...; the folder holding LibriSpeech/ was "no LibriSpeech
    split in it", with --from librispeech too (a review)."""
    split, utts = as_librispeech(tmp_path / "extracted" / "LibriSpeech", {"84": ["A B", "C"]})
    assert detect_format(tmp_path / "extracted") == "librispeech"
    assert keys(prepare_librispeech(tmp_path / "extracted")["dev-clean"]) == keys(utts)


def layouts(tmp_path):
    """Each format's fixture folder (or file)."""
    made = {"audiofolder": as_audiofolder(utterances(tmp_path / "af"), tmp_path / "af"),
            "nemo": as_nemo(utterances(tmp_path / "nemo"), tmp_path / "nemo").parent,
            "lhotse": as_lhotse(utterances(tmp_path / "lh"), tmp_path / "lh"),
            "kaldi": as_kaldi(utterances(tmp_path / "kaldi"), tmp_path / "kaldi" / "data"),
            "commonvoice": as_commonvoice(utterances(tmp_path / "cv"), tmp_path / "cv"),
            "librispeech": as_librispeech(tmp_path / "ls", {"84": ["A"]})[0],
            "textfolder": as_textfolder(utterances(tmp_path / "tf"), tmp_path / "tf")}
    assert set(made) == set(FORMATS)
    return made


def test_each_layout_is_detected(tmp_path):
    for name, src in layouts(tmp_path).items():
        assert detect_format(src) == name, src
    assert detect_format(tmp_path / "nemo" / "train_manifest.json") == "nemo"
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match=r"empty: cannot tell its layout .*give --from FORMAT"):
        detect_format(tmp_path / "empty")


def test_kaldi_segments_are_cut_to_files(tmp_path):
    long = write_tone(tmp_path / "rec.wav", 3.0)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {long}\n")
    (data / "segments").write_text("u1 rec 0.00 1.25\nu2 rec 1.50 -1\n")
    (data / "text").write_text("u1 hello there\nu2 bye\n")
    utts = prepare_kaldi(data, tmp_path / "out")["all"]
    assert [(u.id, u.duration) for u in utts] == [("u1", 1.25), ("u2", 1.5)]
    assert all(u.audio.startswith(str(tmp_path / "out" / "segments" / "all")) for u in utts)
    assert [round(audio_duration(u.audio), 3) for u in utts] == [1.25, 1.5]


def test_a_lhotse_supervision_covering_part_of_its_recording_is_cut(tmp_path):
    utts = utterances(tmp_path, 2)
    as_lhotse(utts, tmp_path)
    sups = tmp_path / "tiny_supervisions_train.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(sups, "rt")]
    rows[1].update(start=0.1, duration=0.2)
    with gzip.open(sups, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    got = prepare_lhotse(tmp_path, tmp_path / "out")["train"]
    assert got[0].audio == utts[0].audio  # whole recording: the file itself
    assert got[1].audio.endswith("segments/train/bob-001.wav") and round(audio_duration(got[1].audio), 3) == 0.2


def test_nemo_segments_of_one_file_a_few_ms_apart_keep_ids_of_their_own(tmp_path):
    utts = utterances(tmp_path, 1)
    manifest = as_nemo(utts, tmp_path)
    row = json.loads(manifest.read_text())
    segments = [dict(row, offset=0.100, duration=0.15), dict(row, offset=0.104, duration=0.15)]  # two voices at once
    manifest.write_text("".join(json.dumps(r) + "\n" for r in segments))
    got = prepare_nemo(manifest, tmp_path / "out")["train"]
    assert [u.id.rsplit("-", 1)[1] for u in got] == ["0.100", "0.104"]  # to the ms (a manifest's precision)
    assert [round(audio_duration(u.audio), 3) for u in got] == [0.15, 0.15]


def test_nemo_files_of_one_name_in_other_folders_get_ids_of_their_own(tmp_path):
    """Before: audio outside the manifest's folder (absolute paths, as NeMo's scripts write them) had their file
    names for ids, so spk1/001.wav and spk2/001.wav were refused as a 'duplicate id' that the user could not fix."""
    first, second = (write_tone(tmp_path / "data" / spk / "001.wav", 0.5) for spk in ("spk1", "spk2"))
    other = write_tone(tmp_path / "data" / "spk1" / "002.wav", 0.5)
    manifest = tmp_path / "manifests" / "manifest.json"
    manifest.parent.mkdir()
    rows = [{"audio_filepath": str(path), "text": "yes"} for path in (first, second, other)]
    rows.append({"audio_filepath": str(first), "text": "yes", "offset": 0.1, "duration": 0.2})  # a segment of it
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    got = prepare_nemo(manifest, tmp_path / "out")["all"]
    assert [u.id for u in got] == ["spk1/001", "spk2/001", "002", "spk1/001-0.100"]


def test_given_durations_can_be_trusted_without_reading_headers(tmp_path, monkeypatch):
    utts = utterances(tmp_path)
    as_nemo(utts, tmp_path)
    opened = []
    monkeypatch.setattr(rows_module, "audio_info", lambda p: opened.append(p) or pytest.fail("opened " + str(p)))
    sets = prepare_nemo(tmp_path, settings=ImportSettings(trust_durations=True))
    assert keys(sets["train"]) == keys(utts) and not opened


def read_headers_in(tmp_path, monkeypatch, wait_s) -> set[int]:
    """The threads other than this one that read the headers of an audiofolder of 2 READ_BATCH + 16 files, the
    n-th read (in the order they are made) taking wait_s(n) more seconds."""
    utts = utterances(tmp_path, 2 * rows_module.READ_BATCH + 16)
    as_audiofolder(utts, tmp_path)
    threads, reads, real = set(), [], rows_module.audio_info

    def timed(path):
        threads.add(threading.get_ident())
        reads.append(path)
        time.sleep(wait_s(len(reads)))
        return real(path)

    monkeypatch.setattr(rows_module, "audio_info", timed)
    sets = prepare_audiofolder(tmp_path, settings=ImportSettings(workers=4))
    assert keys(sets["all"]) == keys(utts)  # each header with its own file: their durations differ
    return threads - {threading.get_ident()}


def test_headers_slow_to_read_are_read_in_parallel(tmp_path, monkeypatch):
    assert len(read_headers_in(tmp_path, monkeypatch, lambda n: 0.005)) >= 2  # 10x SLOW_READ_S: storage that waits


def test_headers_quick_to_read_are_read_in_one_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(rows_module, "SLOW_READ_S", 1.0)  # every read here is quicker: from the page cache
    assert read_headers_in(tmp_path, monkeypatch, lambda n: 0.0) == set()


def test_headers_that_turn_slow_after_the_first_batch_go_to_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(rows_module, "SLOW_READ_S", 0.02)
    quick_first = rows_module.READ_BATCH + 1  # the first batch and the next one's first read are quick
    assert len(read_headers_in(tmp_path, monkeypatch, lambda n: 0.0 if n <= quick_first else 0.05)) >= 2


def test_python_m_asr_data_import_writes_manifests_and_counts(tmp_path, capsys):
    utts = utterances(tmp_path / "src")
    as_audiofolder(utts, tmp_path / "src")
    assert main(["import", str(tmp_path / "src"), str(tmp_path / "m"), "--dev-fraction", "0.34", "--by-speaker"]) == 0
    out = capsys.readouterr().out
    assert "imported audiofolder from" in out and "all: 6 utterances, 0.00 h, 3 speakers" in out
    train, dev = read_manifest(tmp_path / "m" / "train.jsonl"), read_manifest(tmp_path / "m" / "dev.jsonl")
    assert len(train) + len(dev) == 6 and not {u.speaker for u in train} & {u.speaker for u in dev}
    assert keys(read_manifest(tmp_path / "m" / "all.jsonl")) == keys(utts)


@pytest.mark.parametrize("speakers, said", [(("a", "b"), "2 speakers"), (("a", "a"), "1 speaker"),
                                            (("", ""), "unknown speakers")])
def test_the_counts_line_says_how_many_speakers(speakers, said, capsys):
    say("train", [Utterance(f"u{i}", "/a.wav", 1800.0, "a tone", s) for i, s in enumerate(speakers)])
    assert capsys.readouterr().out == f"train: 2 utterances, 1.00 h, {said}\n"
    say("dev", [Utterance("u", "/a.wav", 36.0, "a tone", "a")])
    assert capsys.readouterr().out == "dev: 1 utterance, 0.01 h, 1 speaker\n"


def kaldi_segments(tmp_path, segments: str, text: str) -> Path:
    """A Kaldi data dir listing segments of one 3 s recording."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec {write_tone(tmp_path / 'rec.wav', 3.0)}\n")
    (data / "segments").write_text(segments)
    (data / "text").write_text(text)
    return data


def test_segments_cut_into_a_relative_out_dir_are_found_from_the_manifest(tmp_path, monkeypatch):
    kaldi_segments(tmp_path, "u1 rec 0.00 1.25\nu2 rec 1.50 -1\n", "u1 hello there\nu2 bye\n")
    monkeypatch.chdir(tmp_path)
    assert main(["import", "data", "out"]) == 0  # as the README's commands give their folders
    utts = read_manifest(tmp_path / "out" / "all.jsonl")
    assert [round(audio_duration(u.audio), 3) for u in utts] == [1.25, 1.5]


def test_segment_ids_that_differ_keep_files_that_differ(tmp_path):
    data = kaldi_segments(tmp_path, "seg/1 rec 0.00 1.25\nseg_1 rec 1.50 2.00\n", "seg/1 hello there\nseg_1 bye\n")
    utts = prepare_kaldi(data, tmp_path / "out")["all"]
    assert len({u.audio for u in utts}) == 2
    assert [(u.id, round(audio_duration(u.audio), 3)) for u in utts] == [("seg/1", 1.25), ("seg_1", 0.5)]


def test_files_of_one_name_in_two_folders_are_two_utterances_from_a_relative_src(tmp_path, monkeypatch):
    for speaker in ("george", "lucas"):
        write_tone(tmp_path / "corpus" / speaker / "001.wav", 0.5)
    (tmp_path / "corpus" / "metadata.csv").write_text("file_name,transcription\ngeorge/001.wav,one\nlucas/001.wav,two\n")
    monkeypatch.chdir(tmp_path)
    utts = prepare_audiofolder("corpus")["all"]
    assert [(u.id, u.text) for u in utts] == [("george/001", "one"), ("lucas/001", "two")]


def test_segment_ids_that_differ_only_in_case_keep_files_that_differ(tmp_path):
    data = kaldi_segments(tmp_path, "A rec 0.00 1.25\na rec 1.50 2.00\n", "A hello there\na bye\n")
    utts = prepare_kaldi(data, tmp_path / "out")["all"]  # a case-blind file system (macOS, Windows) too
    assert len({u.audio.lower() for u in utts}) == 2
    assert [(u.id, round(audio_duration(u.audio), 3)) for u in utts] == [("A", 1.25), ("a", 0.5)]


def test_a_byte_order_mark_in_json_lines_plain_or_gzipped_is_dropped(tmp_path):
    utts = utterances(tmp_path / "nemo", 3)
    manifest = as_nemo(utts, tmp_path / "nemo")
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert keys(prepare_nemo(manifest)["train"]) == keys(utts)
    utts = utterances(tmp_path / "lhotse", 3)
    as_lhotse(utts, tmp_path / "lhotse")
    for path in (tmp_path / "lhotse").glob("*.jsonl.gz"):
        path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + gzip.decompress(path.read_bytes())))
    assert keys(prepare_lhotse(tmp_path / "lhotse")["train"]) == keys(utts)


def test_a_byte_order_mark_is_not_part_of_the_first_column_or_id(tmp_path):
    utts = utterances(tmp_path / "af", 3)
    as_audiofolder(utts, tmp_path / "af")
    as_kaldi(utts, tmp_path / "kaldi")
    for path in (tmp_path / "af" / "metadata.csv", tmp_path / "kaldi" / "text", tmp_path / "kaldi" / "utt2spk"):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Excel's "CSV UTF-8" and Notepad write
    assert keys(prepare_audiofolder(tmp_path / "af")["all"]) == keys(utts)
    got = prepare_kaldi(tmp_path / "kaldi")["all"]
    assert [(u.id, u.speaker) for u in got] == [(u.id, u.speaker) for u in utts]


def test_a_manifest_saved_with_a_byte_order_mark_reads(tmp_path):
    utts = utterances(tmp_path, 2)
    write_manifest(tmp_path / "m.jsonl", utts)
    (tmp_path / "m.jsonl").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "m.jsonl").read_bytes())  # edited in Notepad
    assert keys(read_manifest(tmp_path / "m.jsonl")) == keys(utts)


def test_manifests_an_earlier_import_left_in_out_dir_are_noted(tmp_path, capsys):
    utts = utterances(tmp_path / "src")
    as_audiofolder(utts, tmp_path / "src")
    assert main(["import", str(tmp_path / "src"), str(tmp_path / "m"), "--dev-fraction", "0.34"]) == 0
    capsys.readouterr()
    assert main(["import", str(tmp_path / "src"), str(tmp_path / "m")]) == 0  # all.jsonl only, this time
    assert (f"note: {tmp_path / 'm'} also holds dev.jsonl, train.jsonl from before, which this import did not "
            "write") in capsys.readouterr().err
    assert main(["import", str(tmp_path / "src"), str(tmp_path / "m"), "--dev-fraction", "0.34"]) == 0
    assert "note:" not in capsys.readouterr().err  # each one written again
