"""ONNX export and the onnx backend: exact round trip (any batch, any length), padded batches exact in ONNX
Runtime, the self-description and the LM travelling with the .onnx, int8, the doors' errors, and the shipped
model transcribing the clips as the torch one does."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx backend needs onnxruntime (pip install -e .[onnx])")
pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install -e .[onnx])")

from asr import evaluate, export, transcribe  # noqa: E402
from asr.checkpoint import (DEFAULT_MODEL, CheckpointError, json_description, load_model,  # noqa: E402
                            load_recognizer, model_state, save_atomic, state_from_json, vocab_from_state)
from asr.decoding import decoding_config  # noqa: E402
from asr.export import export_onnx  # noqa: E402
from asr.model import ModelConfig  # noqa: E402
from asr.recognizer import utterance_log_probs  # noqa: E402

TWO_LAYERS = ModelConfig(conv_channels=8, hidden=32, layers=2, dropout=0.0)  # ~70k parameters: both LSTM paths twice
LM = DEFAULT_MODEL.parent / "an4_lm.arpa.gz"
DECODING = {"decoder": "beam", "beam_size": 8, "lm": LM.name, "alpha": 0.1, "beta": 2.0}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(build_recognizer, tmp_path_factory) -> dict:
    """A two-layer untrained model as a checkpoint with the shipped LM beside it, exported fp32 and int8 into
    another folder: {"pt", "onnx", "int8", "lm"} paths."""
    src = tmp_path_factory.mktemp("checkpoint")
    rec = build_recognizer(TWO_LAYERS, seed=1)
    rec.metadata["decoding"] = DECODING
    save_atomic(model_state(rec), src / "tiny.pt")
    shutil.copyfile(LM, src / LM.name)
    out = tmp_path_factory.mktemp("onnx")
    _, lm = export_onnx(src / "tiny.pt", out / "tiny.onnx")
    export_onnx(src / "tiny.pt", out / "tiny-int8.onnx", int8=True)
    return {"pt": src / "tiny.pt", "onnx": out / "tiny.onnx", "int8": out / "tiny-int8.onnx", "lm": lm}


@pytest.fixture(scope="module")
def both(exported):
    return load_model(exported["pt"]), load_recognizer(exported["onnx"], "onnx")


def batch(lengths: list[int], seed: int = 0, padding: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, max(lengths), 80) random features, `padding` past each length, and the (B,) lengths."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(lengths), max(lengths), 80, generator=gen)
    for b, n in enumerate(lengths):
        feats[b, n:] = padding
    return feats, torch.tensor(lengths)


@pytest.mark.parametrize("lengths", [[1], [2], [7], [64], [133], [300, 1], [37, 64, 5]])
def test_onnx_gives_the_torch_log_probs_for_any_batch_and_length(both, lengths):
    torch_rec, onnx_rec = both
    feats, n = batch(lengths)
    with torch.no_grad():
        expected, expected_n = torch_rec.model(feats, n)
    log_probs, out_n = onnx_rec.model(feats, n)
    assert torch.equal(out_n, expected_n)
    assert log_probs.shape == expected.shape and log_probs.dtype == torch.float32
    assert (log_probs - expected).abs().max() <= TOLERANCE


def test_an_utterance_alone_and_inside_a_padded_batch_agree_in_onnx_runtime(both):
    _, onnx_rec = both
    lengths = [97, 50, 13, 4, 1]
    feats, n = batch(lengths, seed=2, padding=1e3)  # whatever the padding holds, it must not count
    together, out_n = onnx_rec.model(feats, n)
    for b, length in enumerate(lengths):
        alone, alone_n = onnx_rec.model(feats[b:b + 1, :length], n[b:b + 1])
        assert int(alone_n) == int(out_n[b])
        assert (alone[0] - together[b, :int(out_n[b])]).abs().max() <= TOLERANCE


def test_the_onnx_model_describes_itself_as_the_checkpoint_does(both, exported):
    torch_rec, onnx_rec = both
    assert onnx_rec.frontend.cfg == torch_rec.frontend.cfg
    assert torch.equal(onnx_rec.frontend.mean, torch_rec.frontend.mean)  # exact: float32 values through JSON
    assert torch.equal(onnx_rec.frontend.std, torch_rec.frontend.std)
    assert onnx_rec.vocab.tokens == torch_rec.vocab.tokens
    assert onnx_rec.model.cfg == torch_rec.model.cfg
    assert onnx_rec.metadata.pop("onnx") == {"precision": "fp32", "source": "tiny.pt", "opset": 17}
    assert onnx_rec.metadata == torch_rec.metadata
    assert onnx_rec.device == torch.device("cpu")


def test_the_lm_goes_beside_the_onnx_model_and_resolves_from_there(exported):
    rec = load_recognizer(exported["onnx"], "onnx")
    cfg = decoding_config(argparse.Namespace(), rec.metadata, exported["onnx"])
    assert exported["lm"] == exported["onnx"].parent / LM.name
    assert Path(cfg.lm) == exported["lm"] and exported["lm"].read_bytes() == LM.read_bytes()
    assert (cfg.decoder, cfg.beam.beam_size, cfg.beam.alpha, cfg.beam.beta) == ("beam", 8, 0.1, 2.0)


def test_another_file_where_the_lm_goes_is_refused(exported, tmp_path):
    (tmp_path / LM.name).write_text("not this model's LM\n")
    with pytest.raises(CheckpointError, match="exists and is not the model's LM"):
        export_onnx(exported["pt"], tmp_path / "m.onnx")
    assert (tmp_path / LM.name).read_text() == "not this model's LM\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LM.name]  # refused before any model was written


@pytest.mark.parametrize("target", ["pt", "lm"])
def test_the_export_never_writes_over_what_it_reads(exported, tmp_path, capsys, target):
    """--onnx naming the checkpoint or the LM it copies would destroy them (a review found both written over)."""
    src = tmp_path / "model.pt"
    shutil.copyfile(exported["pt"], src)
    shutil.copyfile(LM, tmp_path / LM.name)
    given = {"pt": src, "lm": tmp_path / LM.name}[target]
    before = given.read_bytes()
    assert export.main(["--model", str(src), "--onnx", str(given)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {given}: the output is also an input")
    assert given.read_bytes() == before


def test_a_failed_export_leaves_no_lm_copy_behind(exported, tmp_path, capsys):
    (tmp_path / "m.onnx").mkdir()  # the model cannot be written there
    assert export.main(["--model", str(exported["pt"]), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'm.onnx'}: cannot write there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert export.main(["--model", str(exported["pt"]), "--onnx", ""]) == 2
    assert capsys.readouterr().err == "error: --onnx: an empty path; give the file to write\n"


def test_an_lm_in_a_folder_below_the_model_goes_to_the_same_folder_below_the_export(exported, tmp_path):
    """decoding.lm "lm/NAME" (relative to the model's folder): the copy goes to OUT/lm/NAME, that folder made (a review
    found the export failing there, the model written and blamed)."""
    src = tmp_path / "src"
    (src / "lm").mkdir(parents=True)
    rec = load_model(exported["pt"])
    rec.metadata["decoding"] = {**DECODING, "lm": f"lm/{LM.name}"}
    save_atomic(model_state(rec), src / "model.pt")
    shutil.copyfile(LM, src / "lm" / LM.name)
    _, lm = export_onnx(src / "model.pt", tmp_path / "out" / "model.onnx")
    assert lm == tmp_path / "out" / "lm" / LM.name and lm.read_bytes() == LM.read_bytes()


def test_a_bpe_vocabulary_survives_the_json_description(tiny_recognizer):
    sentencepiece = pytest.importorskip("sentencepiece")  # noqa: F841
    from asr.text import BpeVocab, train_bpe

    tiny_recognizer.vocab = BpeVocab(train_bpe(["a cat sat on a mat", "the dog ran", "six eight three"] * 20,
                                               vocab_size=30))
    state = state_from_json(json_description(tiny_recognizer))
    assert vocab_from_state(state).tokens == tiny_recognizer.vocab.tokens


def test_int8_is_smaller_and_close(both, exported):
    torch_rec, _ = both
    rec = load_recognizer(exported["int8"], "onnx")
    assert exported["int8"].stat().st_size < 0.5 * exported["onnx"].stat().st_size
    assert rec.metadata["onnx"]["precision"] == "int8"
    feats, n = batch([80, 41])
    with torch.no_grad():
        expected, _ = torch_rec.model(feats, n)
    log_probs, _ = rec.model(feats, n)
    assert (log_probs - expected).abs().max() < 0.1


def test_utterance_log_probs_is_shared_by_both_backends(both, clips):
    torch_rec, onnx_rec = both
    for a, b in zip(utterance_log_probs(torch_rec, clips), utterance_log_probs(onnx_rec, clips)):
        assert a.shape == b.shape and (a - b).abs().max() <= TOLERANCE


def test_evaluate_with_the_onnx_backend_scores_as_torch_does(exported, clips_manifest, capsys):
    args = ["--manifest", str(clips_manifest), "--decoder", "greedy"]
    assert evaluate.main(["--model", str(exported["pt"]), *args]) == 0
    expected = capsys.readouterr().out
    assert evaluate.main(["--backend", "onnx", "--model", str(exported["onnx"]), *args]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("door", [transcribe, evaluate])
def test_a_model_of_the_other_backend_is_one_line_and_exit_2(door, exported, clips_manifest, short_clip, capsys):
    rest = [str(short_clip)] if door is transcribe else ["--manifest", str(clips_manifest)]
    assert door.main(["--backend", "onnx", "--model", str(exported["pt"]), *rest]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a torch checkpoint, not an ONNX model: use --backend torch" in err
    assert door.main(["--model", str(exported["onnx"]), *rest]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {exported['onnx']}: an ONNX model, not a torch checkpoint: use --backend onnx\n"


def test_a_file_that_is_not_onnx_is_one_line(tmp_path, short_clip, capsys):
    (tmp_path / "bad.onnx").write_text("not a model\n")
    assert transcribe.main(["--backend", "onnx", "--model", str(tmp_path / "bad.onnx"), str(short_clip)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / 'bad.onnx'}: not a readable ONNX model")
    with pytest.raises(CheckpointError, match="no such ONNX model file"):
        load_recognizer(tmp_path / "none.onnx", "onnx")
    with pytest.raises(CheckpointError, match=f"^{tmp_path}: a folder, not an ONNX model file$"):
        load_recognizer(tmp_path, "onnx")


def test_without_onnxruntime_the_door_says_how_to_install_it(exported, short_clip, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert transcribe.main(["--backend", "onnx", "--model", str(exported["onnx"]), str(short_clip)]) == 2
    assert capsys.readouterr().err == (f'error: {exported["onnx"]}: onnxruntime is not installed: '
                                       'pip install -e ".[onnx]"\n')


def test_export_door_errors_are_one_line(tmp_path, capsys):
    assert export.main(["--onnx", str(tmp_path / "m.onnx"), "--model", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.pt'}: no such checkpoint file\n"
    with pytest.raises(SystemExit) as stop:
        export.main([])  # --onnx is required
    assert stop.value.code == 2


def test_an_onnx_export_whose_lm_cannot_be_copied_writes_no_model(tmp_path, capsys, monkeypatch):
    """The model was written before its LM was copied: a failed copy left an ONNX model without its LM (a review)."""
    import shutil

    def full_disk(src, dst, *args, **kwargs):
        Path(dst).write_bytes(b"\x1f\x8b")  # part of it, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    assert export.main(["--onnx", str(tmp_path / "out" / "an4.onnx")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_the_shipped_model_transcribes_the_clips_as_torch_does(tmp_path, capsys):
    """Exported by the door, then transcribed with its recommended decoding (beam + the LM beside it)."""
    clips = str(Path(__file__).parent / "data" / "an4")
    assert export.main(["--onnx", str(tmp_path / "an4.onnx")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {tmp_path / 'an4.onnx'} (") and printed.endswith(f"MB, fp32 weights) and its LM "
                                                                                   f"{tmp_path / LM.name}\n")
    assert transcribe.main(["--quiet", clips]) == 0
    expected = capsys.readouterr().out
    assert transcribe.main(["--quiet", "--backend", "onnx", "--model", str(tmp_path / "an4.onnx"), clips]) == 0
    assert capsys.readouterr().out == expected
    assert "six eight three three oh seven five" in expected


def test_onnx_runtime_takes_torchs_threads_and_loading_leaves_torch_as_it_was(exported, short_clip):
    """Loading an ONNX model sets nothing of the process's (a server keeps --threads for its streaming model and
    features); the CLI doors then give torch one thread (its OpenMP pool spinning between ONNX Runtime's calls
    slowed the end-to-end path)."""
    from asr.serve.__main__ import load
    from asr.serve.config import ServeConfig

    torch.set_num_threads(2)
    try:
        rec = load_recognizer(exported["onnx"], "onnx")
        assert rec.model.session.get_session_options().intra_op_num_threads == 2
        assert torch.get_num_threads() == 2
        served, _ = load(ServeConfig(model=str(exported["onnx"]), backend="onnx", threads=2))  # the server's way in
        assert served.model.session.get_session_options().intra_op_num_threads == 2
        assert torch.get_num_threads() == 2
        assert transcribe.main(["--quiet", "--backend", "onnx", "--model", str(exported["onnx"]), str(short_clip)]) == 0
        assert torch.get_num_threads() == 1  # the door's layout (asr.cli.torch_beside_onnx)
    finally:
        torch.set_num_threads(1)  # the suite's setting (conftest.one_thread)


def test_an_lm_outside_the_models_folder_loads_but_is_not_copied_outside_the_exports(exported, tmp_path):
    """decoding.lm "../NAME" was copied to OUT/../NAME, outside the export's folder (an audit); such a model still
    loads and decodes as before (a review), and the export says why it will not copy it."""
    src = tmp_path / "src"
    src.mkdir()
    rec = load_model(exported["pt"])
    rec.metadata["decoding"] = {**DECODING, "lm": f"../{LM.name}"}
    save_atomic(model_state(rec), src / "model.pt")
    shutil.copyfile(LM, tmp_path / LM.name)
    loaded = load_model(src / "model.pt")
    assert Path(decoding_config(argparse.Namespace(), loaded.metadata, src / "model.pt").lm).resolve() == \
        (tmp_path / LM.name).resolve()
    with pytest.raises(CheckpointError, match=r"outside the model's folder"):
        export_onnx(src / "model.pt", tmp_path / "out" / "sub" / "model.onnx")
    assert not (tmp_path / "out").exists()


def test_a_device_or_pipe_as_the_output_is_refused_not_replaced(exported, tmp_path, capsys):
    """Before: `python -m asr.export --onnx /dev/full` (as root) put a 37 MB file in /dev/full's place, and the LM
    beside it in /dev."""
    import os
    import stat

    pipe = tmp_path / "out.onnx"
    os.mkfifo(pipe)
    assert export.main(["--onnx", str(pipe), "--model", str(exported["pt"])]) == 2
    assert capsys.readouterr().err == f"error: {pipe}: not a regular file (a device or a pipe); write to a file\n"
    assert stat.S_ISFIFO(pipe.stat().st_mode) and os.listdir(tmp_path) == ["out.onnx"]


def test_an_onnx_with_our_metadata_but_another_graph_is_refused_at_load(exported, tmp_path):
    """Before: it loaded, and the first transcription ended in ONNX Runtime's traceback ("Required inputs
    (['feats']) are missing")."""
    import onnx

    proto = onnx.load(str(exported["onnx"]))
    for node in proto.graph.node:
        node.input[:] = ["feats" if name == "features" else name for name in node.input]
    proto.graph.input[0].name = "feats"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(proto, str(renamed))
    with pytest.raises(CheckpointError, match=rf"^{renamed}: its graph takes \['feats', 'lengths'\] and gives "
                                              r"\['log_probs', 'out_lengths'\]; asr's exported models take "
                                              r"\['features', 'lengths'\]"):
        load_recognizer(str(renamed), "onnx", "cpu")
