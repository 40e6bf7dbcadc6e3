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


def test_model_soup_refuses_to_write_over_one_of_its_inputs(tiny_checkpoint, tmp_path):
    """It wrote the mean over its first input and said it had (an audit): the input is lost."""
    first = tmp_path / "a.pt"
    first.write_bytes(Path(tiny_checkpoint).read_bytes())
    before = first.read_bytes()
    done = subprocess.run([sys.executable, str(ROOT / "recipes" / "an4" / "model_soup.py"), str(first), str(first),
                           str(tiny_checkpoint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr == (f"error: {first}: the output is also an input ({first}); write the "
                                                    "model to another file\n"), done.stderr
    assert first.read_bytes() == before


def test_a_model_written_where_a_folder_or_a_file_stands_is_one_plain_line(tiny_checkpoint, tmp_path):
    """It said "[Errno 21] Is a directory: '...dir.ptlmlv1btj.tmp' -> ..." (the temporary file's name) and "[Errno
    17] File exists" (an audit)."""
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "plain").write_text("")
    for dst, says in ((tmp_path / "folder.pt", f"{tmp_path / 'folder.pt'}: is a folder, not a file to write to"),
                      (tmp_path / "plain" / "x.pt", f"{tmp_path / 'plain' / 'x.pt'}: cannot be written: "
                                                    f"{tmp_path / 'plain'} is a file, not a folder")):
        done = subprocess.run([sys.executable, "-m", "asr.checkpoint", str(tiny_checkpoint), str(dst)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and done.stderr == f"error: {says}\n", done.stderr
    assert not list((tmp_path / "folder.pt").iterdir())
