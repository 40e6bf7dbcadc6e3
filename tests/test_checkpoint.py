"""asr.checkpoint: atomic saves, self-describing round trips, weights_only loading, fp16 export, bad files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from asr.checkpoint import (
    CheckpointError,
    export_model,
    load_model,
    main,
    model_state,
    read_checkpoint,
    save_atomic,
)
from asr.model import ModelConfig

BIGGER = ModelConfig(conv_channels=32, hidden=128, layers=2, dropout=0.0)  # ~0.75M parameters: size dominated by weights


def outputs(rec, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    feats, lengths = torch.randn(3, 50, 80, generator=gen), torch.tensor([50, 31, 4])
    with torch.no_grad():
        return rec.model(feats, lengths)[0]


def test_save_atomic_writes_the_file_and_nothing_else(tmp_path):
    path = tmp_path / "new" / "ckpt.pt"
    save_atomic({"x": torch.arange(5), "name": "a"}, path)
    assert os.listdir(path.parent) == ["ckpt.pt"]
    loaded = torch.load(path, weights_only=True)
    assert loaded["name"] == "a" and torch.equal(loaded["x"], torch.arange(5))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    save_atomic({"x": torch.zeros(2)}, path)  # overwrite
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.zeros(2))
    assert os.listdir(path.parent) == ["ckpt.pt"]


def test_a_device_or_pipe_in_the_way_is_refused_not_replaced(tmp_path, tiny_checkpoint, capsys):
    """Before: the rename put a regular file in place of the pipe (as root, `python -m asr.checkpoint M /dev/null`
    would have replaced /dev/null)."""
    pipe = tmp_path / "pipe.pt"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match=rf"^{pipe}: not a regular file \(a device or a pipe\); write to a file"):
        save_atomic({"x": torch.zeros(2)}, pipe)
    assert main([str(tiny_checkpoint), str(pipe)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert stat.S_ISFIFO(pipe.stat().st_mode) and os.listdir(tmp_path) == ["pipe.pt"]


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch, error):
    path = tmp_path / "last.pt"
    save_atomic({"version": 1}, path)
    before = path.read_bytes()

    def save_half_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(type(error)):
        save_atomic({"version": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert os.listdir(tmp_path) == ["last.pt"]  # the temporary file is gone


def test_round_trip_gives_identical_outputs(tmp_path, build_recognizer):
    rec = build_recognizer(seed=3)
    rec.metadata["wer"] = 12.5
    path = tmp_path / "m.pt"
    save_atomic(model_state(rec), path)
    loaded = load_model(path)
    assert not loaded.model.training
    assert loaded.model.cfg == rec.model.cfg
    assert loaded.frontend.cfg == rec.frontend.cfg
    assert torch.equal(loaded.frontend.mean, rec.frontend.mean) and torch.equal(loaded.frontend.std, rec.frontend.std)
    assert loaded.vocab.tokens == rec.vocab.tokens
    assert loaded.metadata == {"note": "tiny untrained test model", "wer": 12.5}
    torch.testing.assert_close(outputs(loaded), outputs(rec), rtol=0, atol=0)
    assert not torch.equal(outputs(build_recognizer(seed=4)), outputs(rec))  # the weights matter


def test_checkpoint_loads_with_weights_only(tiny_checkpoint):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    assert set(ckpt) >= {"format_version", "model_config", "feature_config", "vocab", "normalization", "model"}
    assert ckpt["model_config"]["hidden"] == 32 and ckpt["vocab"][0] == "<blank>"


class Payload:
    """Pickles to a call that writes a file: what a malicious checkpoint could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_arbitrary_pickles_are_refused(tmp_path, tiny_checkpoint):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    marker = tmp_path / "pwned"
    ckpt["metadata"] = {"payload": Payload(marker)}
    path = tmp_path / "evil.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"^{path}: not a readable checkpoint"):
        load_model(path)
    assert not marker.exists()


def test_fp16_export_is_half_the_size_and_agrees(tmp_path, build_recognizer, capsys):
    rec = build_recognizer(BIGGER, seed=1)
    src, dst = tmp_path / "train.pt", tmp_path / "model.pt"
    ckpt = model_state(rec)
    ckpt["train_state"] = {"optimizer": {"state": {}, "param_groups": []}, "step": 10}  # dropped on export
    save_atomic(ckpt, src)
    size, lm = export_model(src, dst, metadata={"name": "test"})
    assert size == dst.stat().st_size and lm is None
    assert 0.45 < size / src.stat().st_size < 0.55
    stored = torch.load(dst, weights_only=True)
    assert "train_state" not in stored
    assert all(v.dtype == torch.float16 for v in stored["model"].values() if v.is_floating_point())
    exported = load_model(dst)
    assert exported.metadata["name"] == "test" and exported.metadata["note"] == "tiny untrained test model"
    assert all(p.dtype == torch.float32 for p in exported.model.parameters())
    diff = (outputs(exported) - outputs(rec)).abs().max().item()
    assert 0 < diff < 0.02

    # the same through the command line, and --fp32 keeps full precision
    assert main([str(src), str(tmp_path / "cli.pt"), "--metadata", '{"name": "cli"}']) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_model(tmp_path / "cli.pt").metadata["name"] == "cli"
    assert main([str(src), str(tmp_path / "fp32.pt"), "--fp32"]) == 0
    torch.testing.assert_close(outputs(load_model(tmp_path / "fp32.pt")), outputs(rec), rtol=0, atol=0)
    capsys.readouterr()
    for bad, said in [("{not json", "--metadata: not JSON (Expecting property name"),
                      ("[1]", "--metadata: expected a JSON object, got '[1]'"), ("NaN", "expected a JSON object")]:
        assert main([str(src), str(tmp_path / "x.pt"), "--metadata", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and err.count("\n") == 1, err
    assert main([str(tmp_path / "missing.pt"), str(tmp_path / "x.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 10)


def _text(path):
    path.write_text("not a checkpoint\n")


def _empty(path):
    path.write_bytes(b"")


def _truncated(path):
    torch.save({"model_config": {}, "model": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:300])


def _a_list(path):
    torch.save([1, 2, 3], path)


def _no_model(path):
    torch.save({"weights": torch.zeros(3)}, path)


@pytest.mark.parametrize("make", [_garbage, _text, _empty, _truncated, _a_list, _no_model],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_files_raise_checkpoint_error_naming_the_path(tmp_path, make):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ")


def _nan_weight(ckpt):
    next(v for v in ckpt["model"].values() if v.is_floating_point()).view(-1)[0] = float("nan")


CORRUPT = {  # a good checkpoint with one thing broken -> what the one line says
    "sample_rate 0": (lambda c: c["feature_config"].update(sample_rate=0), "sample_rate"),
    "hop 0": (lambda c: c["feature_config"].update(hop_length=0), "hop_length"),
    "n_fft negative": (lambda c: c["feature_config"].update(n_fft=-400), "n_fft"),
    "f_max under f_min": (lambda c: c["feature_config"].update(f_min=9000.0), "f_max"),
    "nan weight": (_nan_weight, "not finite"),
    "nan mean": (lambda c: c["normalization"]["mean"].__setitem__(0, float("nan")), "normalisation"),
    "std 0": (lambda c: c["normalization"]["std"].__setitem__(3, 0.0), "normalisation"),
    "short vocabulary": (lambda c: c.update(vocab=c["vocab"][:5]), "vocabulary"),
    "no layers": (lambda c: c["model_config"].update(layers=0), "layers"),
    # an audit's: each loaded, then failed later (a traceback, a line naming nothing) or ran wrong (no mel filters)
    "decoding not an object": (lambda c: c.update(metadata={"decoding": "x"}), "metadata 'decoding'"),
    "lm a number": (lambda c: c.update(metadata={"decoding": {"lm": 5}}), "metadata 'decoding.lm'"),
    "metadata a list": (lambda c: c.update(metadata=[1]), "metadata must be an object"),
    "format_version a string": (lambda c: c.update(format_version="1"), "format_version"),
    "f_max past half the rate": (lambda c: c["feature_config"].update(f_max=1e9), "f_max"),
    "a newer format": (lambda c: c.update(format_version=99), "format_version"),
    "a token twice": (lambda c: c.update(vocab=[*c["vocab"][:-1], c["vocab"][1]]), "vocabulary"),
    "a weight of another shape": (lambda c: c["model"].update({k: v[:1] for k, v in list(c["model"].items())[:1]}),
                                  "does not match"),
}


@pytest.mark.parametrize("case", CORRUPT)
def test_a_checkpoint_with_impossible_settings_or_weights_is_one_line_at_load(tmp_path, tiny_checkpoint, case):
    """Not a traceback at the first transcription (ZeroDivisionError, an stft error, log-probs that are nan)."""
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt.setdefault("feature_config", {})
    break_it, said = CORRUPT[case]
    break_it(ckpt)
    path = tmp_path / "bad.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ") and said in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    """A folder given as --model (or --lm) was said to be "no such file" (a review)."""
    from asr.lm import LMError, load_lm

    for path, said in ((tmp_path / "missing.pt", "no such checkpoint file"), (tmp_path, "a folder, not a checkpoint file")):
        with pytest.raises(CheckpointError, match=f"^{path}: {said}$"):
            read_checkpoint(path)
    with pytest.raises(LMError, match=f"^{tmp_path}: a folder, not a language model file$"):
        load_lm(tmp_path)


def test_mismatched_checkpoint(tmp_path, tiny_checkpoint):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["model_config"]["hidden"] = 64  # weights are for 32
    path = tmp_path / "mismatch.pt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"^{path}: checkpoint does not match"):
        load_model(path)
    del ckpt["normalization"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=f"^{path}: "):
        load_model(path)


def test_int8_export_is_about_a_quarter_of_fp32_and_agrees(tmp_path, build_recognizer):
    rec = build_recognizer(BIGGER, seed=1)
    src, dst = tmp_path / "train.pt", tmp_path / "int8.pt"
    save_atomic(model_state(rec), src)
    assert main([str(src), str(dst), "--precision", "int8"]) == 0
    stored = torch.load(dst, weights_only=True)
    matrices = [k for k, v in stored["model"].items() if v.ndim >= 2]
    assert matrices and all(stored["model"][k].dtype == torch.int8 for k in matrices)
    assert set(stored["int8_scales"]) == set(matrices)
    assert 0.2 < dst.stat().st_size / src.stat().st_size < 0.35
    # Each matrix comes back within half a quantisation step of its row's scale, and no closer to zero:
    # a scale per column, a dropped tensor or a rounding bug fails here even on an untrained model.
    loaded = load_model(dst)
    original, restored = rec.model.state_dict(), loaded.model.state_dict()
    for name in matrices:
        w = original[name].reshape(original[name].shape[0], -1)
        scale = w.abs().amax(dim=1, keepdim=True) / 127.0  # (rows, 1)
        error = (restored[name].reshape(w.shape) - w).abs()
        assert (error <= scale / 2 + 1e-7).all(), f"{name}: off by more than half a step"
        assert 0 < error.max() and error.mean() > 0.1 * scale.mean(), f"{name}: not quantised"
    for name in set(original) - set(matrices):  # vectors go through fp16
        torch.testing.assert_close(restored[name], original[name].half().float(), rtol=0, atol=0)
    # The model's outputs move by a small part of how much they vary: under 2% of the spread of the log-probs.
    ref = outputs(rec)
    diff = (outputs(loaded) - ref).abs().max().item()
    assert 0 < diff < 0.02 * (ref.max() - ref.min()).item()


def test_int8_round_trip_error_is_at_most_half_a_step_per_row():
    from asr.quantize import dequantize_int8, quantize_int8

    w = torch.randn(7, 5, 3) * torch.arange(1, 8)[:, None, None]  # rows of very different ranges
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (7,)
    err = (dequantize_int8(q, scale) - w).abs().reshape(7, -1).amax(dim=1)
    assert torch.all(err <= scale / 2 + 1e-6)


def test_a_garbage_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_text("garbage\n")
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: not a readable checkpoint") and "\n" not in str(info.value)


def test_export_at_another_streaming_setting_keeps_the_weights(tmp_path, build_recognizer, capsys):
    """--chunk-frames / --right-context-frames write the same weights run at another latency: what the model
    computes is what a model built at that setting computes, and differs from the source's setting."""
    rec = build_recognizer(ModelConfig(conv_channels=8, hidden=16, layers=2, dropout=0.0, chunk_frames=4,
                                       right_context_frames=2), seed=2)
    src = tmp_path / "train.pt"
    save_atomic(model_state(rec), src)
    assert main([str(src), str(tmp_path / "38.pt"), "--fp32", "--chunk-frames", "3", "--right-context-frames", "8"]) == 0
    moved = load_model(tmp_path / "38.pt")
    assert (moved.model.cfg.chunk_frames, moved.model.cfg.right_context_frames) == (3, 8)
    built = build_recognizer(ModelConfig(conv_channels=8, hidden=16, layers=2, dropout=0.0, chunk_frames=3,
                                         right_context_frames=8), seed=0)
    built.model.load_state_dict(rec.model.state_dict())
    torch.testing.assert_close(outputs(moved), outputs(built), rtol=0, atol=0)
    assert (outputs(moved) - outputs(rec)).abs().max() > 1e-3  # the setting does change what it computes

    # one flag alone keeps the model's other one
    assert main([str(src), str(tmp_path / "r0.pt"), "--right-context-frames", "0"]) == 0
    assert load_model(tmp_path / "r0.pt").model.cfg.chunk_frames == 4
    # settings ModelConfig refuses are one line and exit 2, and write nothing
    capsys.readouterr()
    for flags in (["--chunk-frames", "-1"], ["--chunk-frames", "0", "--right-context-frames", "5"],
                  ["--chunk-frames", "100000000000"], ["--right-context-frames", "1501"]):  # past a minute: an OOM
        assert main([str(src), str(tmp_path / "bad.pt"), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --chunk-frames") and err.count("\n") == 1, err
    assert not (tmp_path / "bad.pt").exists()
    # an output that cannot be written (its folder is a file) is one line naming it, exit 2
    (tmp_path / "a_file").write_text("")
    assert main([str(src), str(tmp_path / "a_file" / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "a_file" in err and err.count("\n") == 1, err


def test_an_export_onto_its_own_checkpoint_is_refused(tmp_path, tiny_checkpoint, capsys):
    """python -m asr.checkpoint best.pt best.pt would replace a training checkpoint (optimiser state and all)
    with the inference model."""
    src = tmp_path / "best.pt"
    src.write_bytes(Path(tiny_checkpoint).read_bytes())
    before = src.read_bytes()
    assert main([str(src), str(tmp_path / "." / "best.pt")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / '.' / 'best.pt'}: the output is also an input")
    assert src.read_bytes() == before


@pytest.mark.parametrize("metadata", ['{"decoding": "x"}', '{"decoding": {"lm": 5}}', '{"decoding": {"lm": "../a"}}'])
def test_export_refuses_metadata_whose_decoding_cannot_be_used(tmp_path, tiny_checkpoint, metadata, capsys):
    """It wrote such models, which every door then refused with a line naming neither file nor field, or a
    traceback (an audit)."""
    from asr.checkpoint import main

    assert main([str(tiny_checkpoint), str(tmp_path / "out.pt"), "--metadata", metadata]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metadata: metadata 'decoding") and err.count("\n") == 1, err
    assert not (tmp_path / "out.pt").exists()


def test_a_model_whose_own_lm_is_outside_its_folder_still_exports_without_new_metadata(tmp_path, tiny_checkpoint,
                                                                                       capsys):
    """Such a model loads (it did before the checks); only metadata given anew must keep its LM inside the folder,
    and the line names --metadata only when --metadata is at fault."""
    from asr.checkpoint import main

    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["metadata"] = {"decoding": {"lm": "../lm.arpa"}}
    torch.save(ckpt, tmp_path / "m.pt")
    assert main([str(tmp_path / "m.pt"), str(tmp_path / "out.pt")]) == 0
    assert main([str(tmp_path / "m.pt"), str(tmp_path / "out2.pt"), "--metadata", '{"note": 1}']) == 0
    capsys.readouterr()


def test_an_export_into_another_folder_takes_the_models_lm_with_it(tmp_path, tiny_checkpoint, capsys):
    """`python -m asr.checkpoint an4.pt elsewhere/my.pt` wrote a model whose default decoding then failed ("no such
    language model file") in asr.transcribe and asr.serve: its LM, named beside it, was left behind (a review)."""
    from asr.checkpoint import main

    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["metadata"] = {"decoding": {"decoder": "beam", "beam_size": 4, "lm": "lms/its.arpa"}}
    (tmp_path / "src" / "lms").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "src" / "m.pt")
    (tmp_path / "src" / "lms" / "its.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a\n\n\\end\\\n")
    assert main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "out" / "my.pt"), "--precision", "int8"]) == 0
    assert f"and its LM {tmp_path / 'out' / 'lms' / 'its.arpa'}" in capsys.readouterr().out
    assert (tmp_path / "out" / "lms" / "its.arpa").read_bytes() == (tmp_path / "src" / "lms" / "its.arpa").read_bytes()
    # an LM named anew by --metadata is the output folder's own: nothing is copied for it
    assert main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "new" / "my.pt"),
                 "--metadata", '{"decoding": {"lm": "other.arpa"}}']) == 0
    assert "and its LM" not in capsys.readouterr().out and not (tmp_path / "new" / "lms").exists()
    # another file in the copy's place stops the export before it writes anything
    (tmp_path / "busy" / "lms").mkdir(parents=True)
    (tmp_path / "busy" / "lms" / "its.arpa").write_text("someone else's")
    assert main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "busy" / "my.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'busy' / 'lms' / 'its.arpa'}: exists and is not") and err.count("\n") == 1
    assert not (tmp_path / "busy" / "my.pt").exists()


def test_an_export_whose_lm_cannot_be_copied_writes_no_model_and_one_whose_model_fails_leaves_no_lm(
        tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """The model was written before its LM was copied: a copy that failed (a full disk, a folder in the way) left a
    model whose default decoding then failed for want of its LM (a review). Either both files are there or neither."""
    import shutil

    from asr import checkpoint

    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["metadata"] = {"decoding": {"decoder": "beam", "beam_size": 4, "lm": "its.arpa"}}
    (tmp_path / "src").mkdir()
    torch.save(ckpt, tmp_path / "src" / "m.pt")
    (tmp_path / "src" / "its.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a\n\n\\end\\\n")

    def full_disk(src, dst, *args, **kwargs):
        Path(dst).write_text("\\data\\\n")  # part of it, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    assert checkpoint.main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "out" / "my.pt")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no model, no half-copied LM
    monkeypatch.undo()

    def save_fails(obj, path):
        raise OSError(28, f"{path}: No space left on device")

    monkeypatch.setattr(checkpoint, "save_atomic", save_fails)
    assert checkpoint.main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "out" / "my.pt")]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # the LM copied for it is taken back
    (tmp_path / "kept").mkdir()
    shutil.copyfile(tmp_path / "src" / "its.arpa", tmp_path / "kept" / "its.arpa")  # an LM that was there before
    assert checkpoint.main([str(tmp_path / "src" / "m.pt"), str(tmp_path / "kept" / "my.pt")]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["its.arpa"]
