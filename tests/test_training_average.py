"""Checkpoint averaging (asr.training.average): the last epochs' weights kept, their mean validated on dev."""

from __future__ import annotations

import torch

from asr.training.average import averaged_weights, save_snapshot, snapshots
from asr.train import main
from tests.test_train import tiny_flags


def test_only_the_last_epochs_are_kept_and_their_mean_is_exact(tmp_path):
    model = torch.nn.Linear(3, 2)
    for epoch in range(1, 6):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
            model.bias.fill_(-float(epoch))
        save_snapshot(model, tmp_path, epoch, keep=3)
    assert [e for e, _ in snapshots(tmp_path)] == [3, 4, 5]
    mean, epochs = averaged_weights(tmp_path, 2)
    assert epochs == [4, 5] and torch.equal(mean["weight"], torch.full((2, 3), 4.5))
    assert torch.equal(mean["bias"], torch.full((2,), -4.5))
    save_snapshot(model, tmp_path, 2, keep=3)  # a new run from epoch 2: later epochs of an earlier try go
    assert [e for e, _ in snapshots(tmp_path)] == [2]
    assert averaged_weights(tmp_path, 2) == (None, [])  # one epoch: nothing to average


def test_a_run_with_average_last_validates_the_mean_of_its_last_epochs(clips_manifest, tmp_path, capfd):
    out = tmp_path / "run"
    flags = [*tiny_flags(clips_manifest, out), "--epochs", "3", "--average-last", "2"]
    assert main(flags) == 0
    assert [e for e, _ in snapshots(out)] == [2, 3]
    said = [line for line in capfd.readouterr().out.splitlines() if line.startswith("average of epochs")]
    assert len(said) == 1 and said[0].startswith("average of epochs 2-3: dev_wer=")
