"""asr.train's precision and fine-tuning flags: combinations that contradict each other, or that would do nothing,
are refused in one line before any work; the spellings of mixed precision that mean something still do."""

from __future__ import annotations

import pytest
import torch

from asr.train import main, parse_args


def refusal(tmp_path, capsys, flags: list[str]) -> str:
    """The one line main() refuses `flags` with (exit 2), before it reads the manifests or leaves a folder."""
    missing, out = tmp_path / "missing.jsonl", tmp_path / "run"
    capsys.readouterr()
    assert main(["--train", str(missing), "--dev", str(missing), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "missing.jsonl" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("flags, named", [
    (["--amp", "--precision", "fp32"], ("--amp", "--precision fp32")),  # autocast was used anyway
    (["--amp", "--amp-dtype", "bf16", "--precision", "fp32"], ("--amp", "--precision fp32")),
    (["--amp-dtype", "fp16", "--precision", "bf16"], ("--amp-dtype fp16", "--precision bf16")),
    (["--amp-dtype", "bf16", "--precision", "fp32"], ("--amp-dtype bf16", "--precision fp32")),
])
def test_precision_flags_that_contradict_each_other_are_refused_naming_both(tmp_path, capsys, flags, named):
    err = refusal(tmp_path, capsys, flags)
    assert all(name in err for name in named) and "contradict" in err, err


def test_a_config_files_amp_and_a_command_lines_fp32_contradict_too(tmp_path, capsys):
    """The LibriSpeech recipe's configurations say "amp": true; --train-args "--precision fp32" used autocast."""
    config = tmp_path / "conf.json"
    config.write_text('{"amp": true}')
    err = refusal(tmp_path, capsys, ["--config", str(config), "--precision", "fp32"])
    assert "--amp" in err and "--precision fp32" in err


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_an_amp_dtype_without_amp_is_refused(tmp_path, capsys, dtype):
    """--amp-dtype fp16 alone trained in fp32 (or in whatever --precision auto chose) without a word."""
    err = refusal(tmp_path, capsys, ["--amp-dtype", dtype])
    assert f"--amp-dtype {dtype} needs --amp" in err and f"--precision {dtype}" in err, err


@pytest.mark.parametrize("flags", [["--precision", "fp16"], ["--amp", "--amp-dtype", "fp16"],
                                   ["--precision", "fp16", "--device", "cpu"]])
def test_fp16_on_a_cpu_is_refused(tmp_path, capsys, flags):
    """Its loss scaler skipped the first steps of a run: a short one trained nothing (step=0) and exited 0."""
    err = refusal(tmp_path, capsys, flags)
    assert "fp16" in err and "GPU" in err and "--precision bf16" in err, err


def test_init_features_new_without_init_is_refused(tmp_path, capsys):
    err = refusal(tmp_path, capsys, ["--init-features", "new"])
    assert "--init-features new needs --init" in err, err


@pytest.mark.parametrize("flags, amp, dtype", [
    (["--amp"], True, "auto"),  # autocast: bf16 where supported (on a CPU: bf16), else fp16
    (["--amp", "--amp-dtype", "bf16"], True, "bf16"),
    (["--amp", "--precision", "bf16"], True, "bf16"),  # the same thing said twice
    (["--amp", "--precision", "auto"], True, "auto"),
    (["--precision", "bf16", "--amp-dtype", "bf16"], True, "bf16"),
    (["--precision", "fp32"], False, "auto"),
    (["--amp", "--amp-dtype", "fp16", "--device", "cuda"], True, "fp16"),  # a GPU's fp16, with loss scaling
    (["--precision", "fp16", "--device", "cuda"], True, "fp16"),
    (["--amp", "--precision", "fp16", "--device", "cuda"], True, "fp16"),
])
def test_the_spellings_of_mixed_precision_that_mean_something_still_do(tmp_path, monkeypatch, flags, amp, dtype):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # --device cuda passes its check; nothing runs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = parse_args(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), *flags])
    assert (cfg.amp, cfg.amp_dtype) == (amp, dtype)
