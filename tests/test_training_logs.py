"""What a training run writes for people: progress without carriage returns when stderr is not a terminal,
losses to 4 significant digits on stderr (metrics.jsonl keeps them whole), a plot in whole epochs, and a
warning when the warm-up is as long as the run."""

from __future__ import annotations

import json
import re

import pytest

from asr.train import main
from tests.test_train import EPOCHS, tiny_flags


def test_no_progress_frames_but_periodic_lines_when_stderr_is_not_a_terminal(clips_manifest, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.setattr("asr.training.progress.EVERY_STEPS", 2)
    assert main(tiny_flags(clips_manifest, tmp_path / "run")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    periodic = [line for line in err.splitlines() if line.startswith("epoch 1/3 batch")]
    assert [line.split()[:3] for line in periodic] == [["epoch", "1/3", "batch"]]  # after step 2 of 3
    assert periodic[0].split()[3] == "2/3" and re.search(r" loss=\d+\.\d{1,3} lr=3\.00e-03 ", periodic[0])
    rows = [line for line in err.splitlines() if line.startswith("epoch=")]
    assert len(rows) == EPOCHS
    printed = [float(re.search(r"train_loss=(\S+)", row).group(1)) for row in rows]
    saved = [json.loads(line)["train_loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert printed == [float(f"{x:.4g}") for x in saved]  # 4 significant digits on stderr
    assert any(len(repr(x)) > 8 for x in saved)  # the file keeps the whole float


def test_the_plot_counts_whole_epochs():
    pytest.importorskip("matplotlib")
    from asr.training.plot import curves_figure

    rows = [{"epoch": e, "train_loss": 3.0 / e, "dev_wer": 90.0 - e} for e in (1, 2, 3)]
    import matplotlib.pyplot as plt

    fig = curves_figure(rows)
    ticks = fig.axes[0].get_xticks()
    plt.close(fig)
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_a_warm_up_as_long_as_the_run_is_warned_of(clips_manifest, tmp_path, capsys):
    assert main([*tiny_flags(clips_manifest, tmp_path / "long"), "--warmup-steps", "200"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "--warmup-steps" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:")
    assert "--warmup-steps 200" in warnings[0] and "9 optimiser steps" in warnings[0] and "0.000135" in warnings[0]
    assert main([*tiny_flags(clips_manifest, tmp_path / "fits"), "--warmup-steps", "8"]) == 0
    assert "--warmup-steps" not in capsys.readouterr().err
