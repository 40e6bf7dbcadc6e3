"""asr.evaluate: scoring against normalised references, the report files, the command line."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from asr.audio import load_audio
from asr.checkpoint import load_model
from asr.decoding import Decoder, DecodingConfig
from asr.evaluate import main, write_report
from asr.longform import transcribe_waves
from asr.metrics import score
from asr.recognizer import utterance_log_probs
from asr.text import normalize_text

REPO = Path(__file__).resolve().parents[1]


def test_score_against_normalised_references(clips):
    perfect = [normalize_text(u.text) for u in clips]
    result = score(clips, perfect)
    assert result["wer"] == 0.0 and result["cer"] == 0.0
    hyps = list(perfect)
    hyps[2] = "stop it"  # ref "stop": one insertion
    hyps[3] = "m e l v i"  # ref "m e l v i n": one deletion
    result = score(clips, hyps)
    words = sum(len(p.split()) for p in perfect)
    assert result["wer"] == pytest.approx(100.0 * 2 / words)
    rows = {r["id"]: r for r in result["utterances"]}
    assert (rows["an440-mjgm-b"]["ins"], rows["an440-mjgm-b"]["word_errors"]) == (1, 1)
    assert (rows["cen4-fcaw-b"]["del"], rows["cen4-fcaw-b"]["char_errors"]) == (1, 2)  # " n"
    assert rows["an440-mjgm-b"]["ref"] == "stop" and rows["an440-mjgm-b"]["hyp"] == "stop it"
    with pytest.raises(ValueError):
        score(clips, hyps[:4])


def recognize_utterances(rec, utts, **kwargs) -> list[str]:
    """Greedy transcripts of utterances, through utterance_log_probs (length-sorted batches)."""
    return Decoder(DecodingConfig(), rec.vocab).transcripts(utterance_log_probs(rec, utts, **kwargs))


def test_recognize_utterances_matches_transcribing_each_clip(tiny_recognizer, clips):
    # length-sorted batches, returned in manifest order, agree with one clip at a time
    expected = [transcribe_waves(tiny_recognizer, [load_audio(u.audio)])[0] for u in clips]
    assert recognize_utterances(tiny_recognizer, clips) == expected
    assert recognize_utterances(tiny_recognizer, clips, batch_seconds=3.0) == expected


def test_results_are_kept_by_position_not_by_id(tiny_recognizer, clips):
    """Two utterances that share an id (built in code: manifests refuse them) each get their own hypothesis."""
    a, b = clips[0], clips[3]
    twins = [a, dataclasses.replace(b, id=a.id)]
    expected = [transcribe_waves(tiny_recognizer, [load_audio(u.audio)])[0] for u in twins]
    assert expected[0] != expected[1]  # the untrained model still tells these two clips apart
    assert recognize_utterances(tiny_recognizer, twins) == expected


def test_a_report_that_cannot_be_written_leaves_the_last_one_whole(tiny_checkpoint, clips_manifest, tmp_path, capsys,
                                                                   monkeypatch):
    """Each report file is written whole or not at all: a write that fails half-way (a full disk) is one line naming
    the file, exit 2, and the report of an earlier run is left as it was."""
    out = tmp_path / "report"
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--out", str(out)]) == 0
    for p in out.iterdir():  # another run's report, which this one must replace whole or leave as it is
        p.write_text(f"an earlier report's {p.name}\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, calls = Path.write_text, []

    def half_then_full(self, text, *args, **kwargs):  # the second file of the report meets a full disk
        calls.append(self)
        if len(calls) < 2:
            return real(self, text, *args, **kwargs)
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_full)
    capsys.readouterr()
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {out / 'errors.jsonl'}: cannot be written (No space left on device)", err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # hypotheses.txt too: one run's report, whole


def test_a_folder_in_place_of_a_report_file_leaves_the_last_report_whole(tiny_checkpoint, clips_manifest, tmp_path,
                                                                         capsys):
    """The rename of the report's files can fail too (a folder where a file goes): checked before any is replaced
    (a review found hypotheses.txt from the new run beside summary.json from the old)."""
    out = tmp_path / "report"
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--out", str(out)]) == 0
    (out / "errors.jsonl").unlink()
    (out / "errors.jsonl" / "x").mkdir(parents=True)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--out", str(out),
                 "--decoder", "beam", "--beam-size", "2"]) == 2
    assert capsys.readouterr().err == f"error: {out / 'errors.jsonl'}: cannot be written (a folder is in its place)\n"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_main_writes_the_report(tiny_checkpoint, clips_manifest, clips, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--out", str(out)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    m = re.fullmatch(r"WER=(\d+\.\d\d) CER=(\d+\.\d\d)", last)
    assert m, last

    hyps = [line.split("\t") for line in (out / "hypotheses.txt").read_text().splitlines()]
    assert [h[0] for h in hyps] == [u.id for u in clips] and all(len(h) == 2 for h in hyps)
    expected = recognize_utterances(load_model(tiny_checkpoint), clips)
    assert [h[1] for h in hyps] == expected

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["id"] for e in errors) == sorted(u.id for u in clips)
    assert [e["word_errors"] for e in errors] == sorted((e["word_errors"] for e in errors), reverse=True)
    assert {e["id"]: e["ref"] for e in errors} == {u.id: normalize_text(u.text) for u in clips}

    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 5 and summary["words"] == 27 and summary["decoder"] == "greedy"
    assert summary["word_errors"] == sum(e["word_errors"] for e in errors)
    assert summary["wer"] == pytest.approx(float(m[1]), abs=0.006)  # summary.json keeps 3 decimals
    assert summary["cer"] == pytest.approx(float(m[2]), abs=0.006)
    assert summary["wer"] == pytest.approx(100.0 * summary["word_errors"] / summary["words"], abs=1e-3)


def test_main_without_out_prints_only_the_rates(tiny_checkpoint, clips_manifest, capsys):
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest)]) == 0
    assert re.fullmatch(r"WER=\d+\.\d\d CER=\d+\.\d\d\n", capsys.readouterr().out)


def test_bad_model_or_manifest_is_exit_code_2(tiny_checkpoint, clips_manifest, tmp_path, capsys):
    assert main(["--model", str(tmp_path / "no.pt"), "--manifest", str(clips_manifest)]) == 2
    assert f"error: {tmp_path / 'no.pt'}: " in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(bad)]) == 2
    assert f"error: {bad}:1: missing field(s)" in capsys.readouterr().err


def test_write_report_worst_first(tmp_path, clips):
    result = score(clips[:3], ["x", "a b v j ninety four", ""])
    write_report(result, tmp_path, {"model": "m"})
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["an406-fcaw-b", "an440-mjgm-b", "an437-mjgm-b"]  # 7, 1, 0 errors
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["sentences_with_errors"], summary["model"]) == (2, "m")


def manifest_of(tmp_path, clips, **changes) -> str:
    """clips written as a manifest, with clips[i]'s field changed by changes {"text_1": ..., "audio_1": ...}."""
    from asr.data import write_manifest

    utts = list(clips)
    for key, value in changes.items():
        field, i = key.rsplit("_", 1)
        utts[int(i)] = dataclasses.replace(utts[int(i)], **{field: value})
    path = tmp_path / "m.jsonl"
    write_manifest(path, utts)
    return str(path)


def test_an_empty_manifest_is_an_error_not_a_perfect_score(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(empty)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: {empty}: no utterances: there is nothing to score\n"


def test_an_empty_reference_is_refused_by_name(tiny_checkpoint, clips, tmp_path, capsys):
    path = manifest_of(tmp_path, clips, text_2="6 8 3 3 0 7 5")  # digits: nothing the vocabulary spells
    assert main(["--model", str(tiny_checkpoint), "--manifest", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: 1 reference(s) empty after normalisation") and clips[2].id in err


def test_references_that_lose_characters_get_one_note(tiny_checkpoint, clips, tmp_path, capsys):
    path = manifest_of(tmp_path, clips, text_1="A B 4 TWO")
    assert main(["--model", str(tiny_checkpoint), "--manifest", path]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and path in notes[0] and "1 of 5" in notes[0] and clips[1].id in notes[0]


def test_utterances_without_audio_are_reported_and_the_rest_scored(tiny_checkpoint, clips, tmp_path, capsys):
    gone = tmp_path / "gone.flac"
    path = manifest_of(tmp_path, clips, audio_3=str(gone))
    out = tmp_path / "report"
    assert main(["--model", str(tiny_checkpoint), "--manifest", path, "--out", str(out)]) == 0
    assert capsys.readouterr().err == (f"warning: {path}: kept 4 of 5 utterances, dropped 1 whose audio is missing "
                                       f"({clips[3].id}; {gone} not found)\n")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 4 and summary["missing_audio"] == [clips[3].id]
    assert clips[3].id not in (out / "hypotheses.txt").read_text()


def test_an_unreadable_clip_is_dropped_and_the_rest_scored(tiny_checkpoint, clips, tmp_path, capsys):
    """One truncated FLAC among the clips ended the whole run with no WER and no report (a review); it is now
    dropped as a missing file is, its reason said once, and the report lists it."""
    cut = tmp_path / "cut.flac"
    cut.write_bytes(Path(clips[1].audio).read_bytes()[:3000])
    path = manifest_of(tmp_path, clips, audio_1=str(cut))
    out = tmp_path / "report"
    assert main(["--model", str(tiny_checkpoint), "--manifest", path, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {path}: kept 4 of 5 utterances, dropped 1 whose audio cannot be read "
                          f"({clips[1].id}); {cut}: ") and err.count("\n") == 1, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == 4 and summary["unreadable_audio"] == [clips[1].id]
    every = {f"audio_{i}": str(cut) for i in range(len(clips))}
    assert main(["--model", str(tiny_checkpoint), "--manifest", manifest_of(tmp_path, clips, **every)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: no utterance's audio can be read (e.g. {cut}: ")


def test_a_manifest_without_any_audio_is_an_error(tiny_checkpoint, clips, tmp_path, capsys):
    gone = {f"audio_{i}": str(tmp_path / f"gone{i}.flac") for i in range(len(clips))}
    path = manifest_of(tmp_path, clips, **gone)
    assert main(["--model", str(tiny_checkpoint), "--manifest", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: no utterance has its audio") and gone["audio_0"] in err


def run_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """`python -m ARGS` with stderr on a pseudo-terminal, as in a shell, stdout piped: (exit code, stdout, all that
    stderr showed, carriage returns and all)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a terminal has a size
    proc = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=slave, cwd=REPO)
    os.close(slave)
    shown = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child has closed its end
            break
        if not data:
            break
        shown.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    return proc.wait(60), out, b"".join(shown).decode(errors="replace")


def test_progress_is_shown_on_a_terminal_and_not_with_quiet_or_a_pipe(tiny_checkpoint, clips_manifest, clips,
                                                                      capsys):
    flags = ["asr.evaluate", "--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--threads", "1"]
    code, out, shown = run_with_stderr_on_a_terminal(flags)
    assert code == 0 and re.fullmatch(r"WER=\d+\.\d\d CER=\d+\.\d\d\n", out)
    assert "evaluating:   0%" in shown and f"/{sum(u.duration for u in clips):.0f} s audio" in shown, shown
    code, out, shown = run_with_stderr_on_a_terminal([*flags, "--quiet"])
    assert code == 0 and shown == "" and out.startswith("WER=")
    assert main(flags[1:]) == 0  # stderr not a terminal (here: captured)
    assert capsys.readouterr().err == ""


def test_steering_scores_what_asr_transcribe_gives_with_it(clips_manifest, clips, tmp_path, capsys):
    """--grammar (and the hotword flags) steer the beam search as in asr.transcribe: a user measures a phrase list
    on their own dev set. Two clips' phrases and [unk]: those two come out right (the first one heard "... g n e f
    ..." unsteered), the others as [unk] words."""
    from asr.transcribe import main as transcribe

    chosen = [clips[0], clips[3]]  # said: "rubout g m e f three nine", "m e l v i n"
    grammar = tmp_path / "grammar.json"
    grammar.write_text(json.dumps([normalize_text(u.text) for u in chosen] + ["[unk]"]))
    out = tmp_path / "report"
    assert main(["--manifest", str(clips_manifest), "--grammar", str(grammar), "--out", str(out)]) == 0
    hyps = [line.split("\t")[1] for line in (out / "hypotheses.txt").read_text().splitlines()]
    capsys.readouterr()
    assert transcribe([u.audio for u in clips] + ["--grammar", str(grammar), "--format", "jsonl"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert hyps == texts and [hyps[0], hyps[3]] == [normalize_text(u.text) for u in chosen], (hyps, texts)
    assert all(set(hyps[i].split()) == {"[unk]"} for i in (1, 2, 4)), hyps
    assert json.loads((out / "summary.json").read_text())["steering"] == {"grammar": str(grammar)}


@pytest.mark.parametrize("flags, says", [
    (["--decoder", "greedy"], "hotwords and grammars need the beam search"),
    (["--tune-lm", "--lm", str(Path(__file__).parents[1] / "asr" / "assets" / "an4_lm.arpa.gz")],
     "--tune-lm searches the LM weights without steering"),
    (["--grammar", "/no/such/grammar.json"], "--grammar /no/such/grammar.json: cannot read it"),
])
def test_steering_where_it_cannot_apply_is_one_line_before_the_model_runs(clips_manifest, tmp_path, capsys,
                                                                          monkeypatch, flags, says):
    grammar = tmp_path / "grammar.json"
    grammar.write_text('["stop"]')
    monkeypatch.setattr("asr.evaluate.utterance_log_probs", lambda *a, **k: pytest.fail("the model ran"))
    assert main(["--manifest", str(clips_manifest), "--grammar", str(grammar), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and says in err, err


def test_a_report_never_replaces_a_file_the_run_reads(tiny_checkpoint, clips_manifest, tmp_path, capsys):
    """A manifest saved as DIR/errors.jsonl, evaluated with --out DIR, was replaced by the report (a review)."""
    out = tmp_path / "report"
    out.mkdir()
    manifest = out / "errors.jsonl"
    manifest.write_bytes(Path(clips_manifest).read_bytes())
    assert main(["--model", str(tiny_checkpoint), "--manifest", str(manifest), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {manifest}: an output would replace --manifest {manifest}, which "
                                       f"this run reads; use another folder\n")
    assert manifest.read_bytes() == Path(clips_manifest).read_bytes()


def test_audio_that_is_a_folder_is_said_to_be_one(tmp_path, capsys):
    """It said "not found" of a folder named as an utterance's audio (an audit)."""
    from asr.evaluate import main

    (tmp_path / "clip.wav").mkdir()
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "audio": "clip.wav", "duration": 1.0, "text": "a"}\n')
    assert main(["--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(f"{tmp_path / 'clip.wav'} is a folder, not an audio file)"), err
    assert err.count("\n") == 1, err


def test_a_hotword_score_alone_beside_tune_lm_is_one_line_before_the_model_runs(clips_manifest, capsys, monkeypatch):
    """--hotword-score alone is refused by asr.transcribe and asr.evaluate, but beside --tune-lm it was taken and
    ignored without a word (a review)."""
    monkeypatch.setattr("asr.evaluate.utterance_log_probs", lambda *a, **k: pytest.fail("the model ran"))
    lm = str(Path(__file__).parents[1] / "asr" / "assets" / "an4_lm.arpa.gz")
    assert main(["--manifest", str(clips_manifest), "--tune-lm", "--lm", lm, "--hotword-score", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--tune-lm searches the LM weights without steering" in err, err
    assert "--hotword-score" in err
