"""--init-decay: a fine-tune's weights pulled back towards the model it started from after every step (L2-SP), a guard
against forgetting that needs none of the data that model was trained on."""

from __future__ import annotations

import pytest
import torch

from asr.checkpoint import load_model, read_checkpoint, save_atomic
from asr.train import parse_args
from asr.training import Trainer
from asr.training.checks import RunError

from test_train import tiny_flags

LR = 3e-3  # tiny_flags' learning rate, constant


def drift(checkpoint, start) -> float:
    """How far the weights of `checkpoint` lie from those of `start` (root of the summed squares)."""
    after, before = load_model(checkpoint).model.state_dict(), load_model(start).model.state_dict()
    return sum(float((after[k].float() - before[k].float()).pow(2).sum()) for k in before) ** 0.5


def fine_tune(clips_manifest, tiny_checkpoint, out, *flags: str):
    Trainer(parse_args([*tiny_flags(clips_manifest, out), "--init", str(tiny_checkpoint), *flags])).run()
    return out / "last.pt"


def test_each_step_pulls_the_weights_back_towards_the_model_fine_tuned(clips_manifest, tiny_checkpoint, tmp_path):
    free = drift(fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "free", "--epochs", "2"), tiny_checkpoint)
    held = drift(fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "held", "--epochs", "2",
                           "--init-decay", str(0.3 / LR)), tiny_checkpoint)
    # lr x decay = 1: every step ends back where the fine-tune began
    back = drift(fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "back", "--epochs", "2",
                           "--init-decay", str(1 / LR)), tiny_checkpoint)
    assert free > 0.05 and 0 < held < 0.7 * free, (free, held)
    assert back < 1e-5, back


def test_a_resumed_run_is_pulled_towards_the_init_not_towards_where_it_resumed(clips_manifest, tiny_checkpoint,
                                                                                tmp_path):
    decay = ["--init-decay", str(0.3 / LR)]
    straight = fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "straight", "--epochs", "2", *decay)
    resumed = fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "resumed", "--epochs", "1", *decay)
    fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "resumed", "--epochs", "2", "--resume", *decay)
    a, b = load_model(straight).model.state_dict(), load_model(resumed).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x"])
def test_an_absurd_init_decay_is_one_line(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        parse_args(["--train", "t.jsonl", "--dev", "d.jsonl", "--out", str(tmp_path), "--init-decay", value])
    assert e.value.code == 2 and "--init-decay" in capsys.readouterr().err


def test_a_resume_whose_init_file_changed_is_refused_where_the_pull_is_on(clips_manifest, tiny_checkpoint, tmp_path):
    """The pull's anchor is read from the --init file: another file at that path would pull the rest of the run towards
    other weights, silently. Without the pull the file is not read again, and nothing is said."""
    init = tmp_path / "init.pt"
    init.write_bytes(tiny_checkpoint.read_bytes())
    decay = ["--init-decay", str(0.3 / LR)]
    fine_tune(clips_manifest, init, tmp_path / "run", "--epochs", "1", *decay)
    fine_tune(clips_manifest, init, tmp_path / "plain", "--epochs", "1")
    other = fine_tune(clips_manifest, init, tmp_path / "other", "--epochs", "1", "--seed", "5")
    init.write_bytes(other.read_bytes())  # another model at the same path
    with pytest.raises(RunError, match=rf"^--resume: --init {init} is not the file the run started from \(its "
                                       r"contents changed\); --init-decay pulls towards its weights"):
        fine_tune(clips_manifest, init, tmp_path / "run", "--epochs", "2", "--resume", *decay)
    fine_tune(clips_manifest, init, tmp_path / "plain", "--epochs", "2", "--resume")  # no pull: not read again


def test_a_last_pt_from_before_the_checksum_resumes_with_a_note(clips_manifest, tiny_checkpoint, tmp_path, capsys):
    decay = ["--init-decay", str(0.3 / LR)]
    last = fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "run", "--epochs", "1", *decay)
    ckpt = read_checkpoint(last)
    del ckpt["metadata"]["init_sha256"]
    save_atomic(ckpt, last)
    capsys.readouterr()
    fine_tune(clips_manifest, tiny_checkpoint, tmp_path / "run", "--epochs", "2", "--resume", *decay)
    assert (f"note: --init-decay pulls towards --init {tiny_checkpoint} as it is now: this last.pt was written before "
            "runs kept their --init file's checksum") in capsys.readouterr().err.splitlines()
