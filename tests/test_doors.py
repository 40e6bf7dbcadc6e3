"""What every door (asr.transcribe, asr.evaluate, asr.train) checks the same way before any work: --device,
--threads, the output folder, out-of-range values; --help with defaults; flags a combination ignores."""

from __future__ import annotations

import json
import re
import tempfile

import pytest
import torch

from asr import evaluate, train, transcribe

DOORS = {"transcribe": transcribe.main, "evaluate": evaluate.main, "train": train.main}
OUT_FLAG = {"transcribe": "--output-dir", "evaluate": "--out", "train": "--out"}


def argv(door: str, tmp_path, out=None) -> list[str]:
    """Flags that would fail at the first piece of work (a missing model or manifest), not before."""
    missing = str(tmp_path / "missing")
    out = str(out or tmp_path / "out")
    if door == "transcribe":
        return [missing + ".wav", "--model", missing + ".pt", "--output-dir", out]
    if door == "evaluate":
        return ["--model", missing + ".pt", "--manifest", missing + ".jsonl", "--out", out]
    return ["--train", missing + ".jsonl", "--dev", missing + ".jsonl", "--out", out]


def refused(door: str, flags: list[str], capsys) -> str:
    """The door's stderr, asserting it exits 2 with one line."""
    try:
        code = DOORS[door](flags)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 or err.splitlines()[0].startswith("usage:"), err
    return err.splitlines()[-1]


BAD_DEVICES = ["gpu", "cuda:99", "tpu"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("name", BAD_DEVICES)
def test_a_device_this_machine_lacks_is_refused_alike_before_any_work(door, name, tmp_path, capsys):
    line = refused(door, [*argv(door, tmp_path), "--device", name], capsys)
    assert line.startswith("python -m asr.") and "error: argument --device: " in line and name in line
    assert "missing" not in line  # not the model or manifest: nothing was read


@pytest.mark.parametrize("door", DOORS)
def test_threads_are_set_before_any_work_and_zero_is_refused(door, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("intra", n)))
    monkeypatch.setattr(torch, "set_num_interop_threads", lambda n: calls.append(("inter", n)))
    line = refused(door, [*argv(door, tmp_path), "--threads", "3"], capsys)
    assert "missing" in line  # the work started (and failed at the missing input) after the threads were set
    assert calls == [("intra", 3), ("inter", 3)]
    assert "argument --threads" in refused(door, [*argv(door, tmp_path), "--threads", "0"], capsys)


@pytest.mark.parametrize("door", DOORS)
def test_help_shows_defaults_and_threads(door, capsys):
    with pytest.raises(SystemExit):
        DOORS[door](["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: " in out and "--threads N" in out
    assert ("asr.training.layout" if door == "train" else "what torch picks") in out
    assert "(default: None)" not in out and not re.search(r"\(default: [^)]*\) \(default: ", out)  # said once


def test_every_train_flag_has_a_help_line():
    parser = train.build_parser()
    missing = [a.option_strings for a in parser._actions if not a.help]
    assert not missing, f"flags without help: {missing}"


@pytest.mark.parametrize("door", DOORS)
def test_an_output_path_that_is_a_file_is_refused_before_any_work(door, tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("mine")
    line = refused(door, argv(door, tmp_path, out=path), capsys)
    assert line == f"error: {OUT_FLAG[door]} {path}: is a file, not a folder"
    assert path.read_text() == "mine"


@pytest.mark.parametrize("door", DOORS)
def test_an_output_folder_that_cannot_be_created_is_refused(door, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "out"
    line = refused(door, argv(door, tmp_path, out=path), capsys)
    assert line.startswith(f"error: {OUT_FLAG[door]} {path}: cannot create the folder (")


@pytest.mark.parametrize("door", DOORS)
def test_an_output_folder_that_cannot_be_written_is_refused(door, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):  # what the OS says in a read-only folder (root, as the tests run, is let in)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    path = tmp_path / "readonly"
    line = refused(door, argv(door, tmp_path, out=path), capsys)
    assert line == f"error: {OUT_FLAG[door]} {path}: cannot write there (Permission denied)"


DECODE_RANGES = [("--alpha", "nan"), ("--beta", "inf"), ("--beam-size", "0"), ("--batch-seconds", "0"),
                 ("--batch-seconds", "-5")]
TRAIN_RANGES = [("--epochs", "0"), ("--lr", "0"), ("--lr", "nan"), ("--batch-seconds", "-1"),
                ("--noise-prob", "1.5"), ("--rir-prob", "-0.1"), ("--accum-steps", "0"), ("--dropout", "1"),
                ("--snr-db", "30", "5"), ("--seed", "-1"), ("--average-last", "1"), ("--final-lr-ratio", "5"),
                ("--lr", "1e39"), ("--lr", "2"), ("--weight-decay", "5")]  # 1e39: a traceback (an audit)


@pytest.mark.parametrize("door, bad", [(d, b) for d in ("transcribe", "evaluate") for b in DECODE_RANGES]
                         + [("train", b) for b in TRAIN_RANGES])
def test_out_of_range_values_are_refused_naming_the_flag(door, bad, tmp_path, capsys):
    line = refused(door, [*argv(door, tmp_path), *bad], capsys)
    assert f"argument {bad[0]}" in line or line.startswith(f"python -m asr.train: error: {bad[0]}"), line


def test_greedy_decoding_says_which_flags_it_ignores(tiny_checkpoint, short_clip, tmp_path, capsys):
    flags = [str(short_clip), "--model", str(tiny_checkpoint), "--decoder", "greedy"]
    assert transcribe.main([*flags, "--lm", str(tmp_path / "lm.arpa"), "--alpha", "0.5"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: --lm, --alpha are ignored with greedy decoding")
    assert transcribe.main(flags) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_refuses_tuning_with_greedy_decoding(tiny_checkpoint, clips_manifest, tmp_path, capsys):
    line = refused("evaluate", ["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest),
                                "--decoder", "greedy", "--lm", str(tmp_path / "lm.arpa"), "--tune-lm"], capsys)
    assert "--tune-lm" in line and "beam" in line


@pytest.mark.parametrize("setting", [{"epochs": 0}, {"lr": -1}, {"snr_db": [30, 5]}, {"device": "gpu"},
                                     {"snr_db": [5]}, {"snr_db": 5}, {"speed_factors": 1.1}, {"speed_factors": []},
                                     {"speed_factors": [0.9, 3]}, {"hidden": True}, {"lr": False}])
def test_config_file_settings_are_checked_as_their_flags(setting, tmp_path, capsys):
    config = tmp_path / "conf.json"
    config.write_text(json.dumps(setting))
    line = refused("train", [*argv("train", tmp_path), "--config", str(config)], capsys)
    assert "missing" not in line and (f"--config {config}: " in line or "--snr-db" in line), line


def test_lm_help_shows_defaults_and_refuses_order_zero(tmp_path, capsys):
    from asr.lm.__main__ import main as lm_main

    with pytest.raises(SystemExit):
        lm_main(["build", "--help"])
    assert "(default: 3)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as e:
        lm_main(["build", "--order", "0", str(tmp_path / "corpus.txt"), str(tmp_path / "lm.arpa")])
    assert e.value.code == 2 and "argument --order" in capsys.readouterr().err


def test_tuning_says_it_ignores_the_weights_given(tiny_checkpoint, clips_manifest, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "tune_lm", lambda *a: ({"alpha": 0.1, "beta": 0.0, "wer": 1.0}, []))
    lm = tmp_path / "lm.arpa"
    lm.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-1.0\t</s>\n-1.0\ta\n\n\\end\\\n")
    assert evaluate.main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--lm", str(lm),
                          "--alpha", "0.5", "--tune-lm"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: --alpha is ignored by --tune-lm, which searches alpha and beta"]
