"""recipes/an4/model_soup.py: the weighted mean of checkpoints' weights (the README's model soups)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_model_soup_averages_weights_and_refuses_what_does_not_match(tiny_checkpoint, tmp_path):
    """recipes/an4/model_soup.py: weights (1, 0) give the first model back, (1, 1) the mean; a checkpoint with other
    normalisation, a missing file and a wrong --weights count are one line each, exit 2."""
    from asr.checkpoint import load_model, model_state, save_atomic

    other = load_model(tiny_checkpoint)
    for param in other.model.parameters():
        param.data.add_(1.0)
    save_atomic(model_state(other), tmp_path / "other.pt")
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "recipes" / "an4" / "model_soup.py"), *map(str, a)],  # noqa: E731
                                    cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run(tmp_path / "first.pt", tiny_checkpoint, tmp_path / "other.pt", "--weights", 1, 0).returncode == 0
    assert run(tmp_path / "mean.pt", tiny_checkpoint, tmp_path / "other.pt").returncode == 0
    paths = (tiny_checkpoint, tmp_path / "first.pt", tmp_path / "mean.pt")
    base, first, mean = (load_model(p).model.state_dict() for p in paths)
    name = next(k for k, v in base.items() if v.is_floating_point())
    assert torch.equal(first[name], base[name]) and torch.allclose(mean[name], base[name] + 0.5)
    other.frontend.mean.add_(1.0)
    save_atomic(model_state(other), tmp_path / "renormed.pt")
    for args, says in (([tiny_checkpoint, tmp_path / "renormed.pt"], "normalisation differ"),
                       ([tiny_checkpoint, tmp_path / "none.pt"], "no such checkpoint file"),
                       ([tiny_checkpoint, "--weights", 1, 1], "one per model")):
        done = run(tmp_path / "bad.pt", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert not (tmp_path / "bad.pt").exists()
    (tmp_path / "a_file").write_text("")  # an output that cannot be written: its folder is a file
    done = run(tmp_path / "a_file" / "x.pt", tiny_checkpoint)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "a_file" in done.stderr, done.stderr
