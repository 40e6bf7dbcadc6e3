"""The acoustic model in ONNX Runtime: export an AcousticModel to ONNX (dynamic batch and time axes, fp32 or
int8 weights) and run it behind the torch model's contract, torch tensors in and out:

    features (B, T, n_mels), lengths (B,) -> log_probs (B, T', V), lengths (B,)

so that asr.recognizer.utterance_log_probs, the long-form pipeline and the decoders serve both back-ends.
The padding-exact BiLSTM exports as it is (per-length reversal by gather, masks from the lengths): an
utterance alone and inside a padded batch give the same log-probs here too (fp32; int8's activation scales
are taken over the whole batch, so they are close, not equal).
A model's self-description (asr.checkpoint.json_description) travels as JSON in metadata_props[METADATA_KEY].
onnx and onnxruntime are imported only when needed (`pip install -e ".[onnx]"`).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from asr.model import ModelConfig

INSTALL_HINT = 'pip install -e ".[onnx]"'
OPSET = 17  # ONNX operator set of the exported graph
METADATA_KEY = "asr"  # metadata_props entry holding the model's self-description (JSON)
SPIN_US = 100  # ONNX Runtime's idle threads spin this long, then sleep: by default they spin on after a call and
# slow the torch work between calls (features on AN4 test, batch 1: 4x slower), while not spinning at all slows
# the LSTM's many small steps (the model 1.9x slower); 100 us costs neither (bench/onnx_speed.py)
INPUTS, OUTPUTS = ["features", "lengths"], ["log_probs", "out_lengths"]
DYNAMIC_AXES = {"features": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                "log_probs": {0: "batch", 1: "frames"}, "out_lengths": {0: "batch"}}


class OnnxError(Exception):
    """An ONNX model that cannot be written, read or run here; the message starts with the path."""


def _require(module: str, path: Path):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise OnnxError(f"{path}: {module.split('.')[0]} is not installed: {INSTALL_HINT}") from e


def export(model: nn.Module, path: str | Path, description: dict, int8: bool = False) -> None:
    """Write `model` (eval mode, on the CPU) as ONNX at `path`, atomically, with `description` in its metadata;
    int8: weights quantised by onnxruntime.quantization.quantize_dynamic (activations per batch, at run time)."""
    path = Path(path)
    onnx = _require("onnx", path)
    features = torch.randn(2, 64, model.cfg.n_mels, generator=torch.Generator().manual_seed(0))  # (B, T, n_mels)
    lengths = torch.tensor([64, 37])  # two lengths: the trace keeps the masks and per-length reversal general
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks and on LSTM batch sizes
        graph = Path(tmp) / "fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(model.eval(), (features, lengths), str(graph), dynamo=False, opset_version=OPSET,
                              input_names=INPUTS, output_names=OUTPUTS, dynamic_axes=DYNAMIC_AXES)
        if int8:
            quantization = _require("onnxruntime.quantization", path)
            quantized = Path(tmp) / "int8.onnx"
            previous, logging.root.manager.disable = logging.root.manager.disable, logging.WARNING  # its pre-processing tip
            try:
                quantization.quantize_dynamic(str(graph), str(quantized), weight_type=quantization.QuantType.QInt8)
            finally:
                logging.disable(previous)
            graph = quantized
        proto = onnx.load(str(graph))
        del proto.metadata_props[:]
        proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(description))
        onnx.save(proto, str(Path(tmp) / "out.onnx"))
        os.replace(Path(tmp) / "out.onnx", path)
    os.chmod(path, 0o644)


class OnnxModel:
    """An exported acoustic model run by ONNX Runtime, called as the torch AcousticModel is (no gradients)."""

    training = False

    def __init__(self, session, cfg: ModelConfig, device: torch.device):
        self.session, self.cfg, self.device = session, cfg, device
        self._anchor = torch.empty(0, device=device)  # Recognizer.device reads the first parameter's device

    def parameters(self):
        """No trainable parameters: one empty tensor on the model's device, which is what Recognizer.device reads."""
        yield self._anchor

    def eval(self) -> OnnxModel:
        return self

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, n_mels) normalised, lengths (B,) -> log_probs (B, T', V), lengths (B,), on features' device."""
        if features.ndim != 3 or features.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"features must be (B, T, {self.cfg.n_mels}), got {tuple(features.shape)}")
        feed = {"features": np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32),
                "lengths": lengths.detach().cpu().numpy().astype(np.int64)}
        log_probs, out_lengths = self.session.run(OUTPUTS, feed)
        return torch.from_numpy(log_probs).to(features.device), torch.from_numpy(out_lengths).to(features.device)


def _providers(ort, path: Path, device: torch.device) -> list:
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    raise OnnxError(f"{path}: this onnxruntime cannot run on {device} (it has {', '.join(ort.get_available_providers())}): "
                    "use --device cpu, or install onnxruntime-gpu for cuda")


def load(path: str | Path, device: str | torch.device = "cpu", threads: int | None = None) -> tuple[OnnxModel, dict]:
    """(the model, its self-description) from an ONNX file written by export(); ONNX Runtime uses `threads`
    threads, by default as many as torch has (torch.get_num_threads()), so the two back-ends compare on equal
    terms. Loading changes nothing of the process's: torch keeps its threads (asr.cli.torch_beside_onnx is how
    the CLI doors then give torch one)."""
    path, device = Path(path), torch.device(device)
    ort = _require("onnxruntime", path)
    if not path.is_file():
        kind = "a folder, not an ONNX model file" if path.is_dir() else "no such ONNX model file"
        raise OnnxError(f"{path}: {kind}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no notes on graph rewrites
    options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_US))
    try:
        session = ort.InferenceSession(str(path), options, providers=_providers(ort, path, device))
    except Exception as e:  # onnxruntime raises its own types for a bad file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise OnnxError(f"{path}: not a readable ONNX model ({type(e).__name__}: {first})") from e
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise OnnxError(f"{path}: an ONNX model that asr did not export (no {METADATA_KEY!r} metadata)")
    takes, gives = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if takes != INPUTS or gives != OUTPUTS:  # our metadata on another graph: ONNX Runtime would fail at the first call
        raise OnnxError(f"{path}: its graph takes {takes} and gives {gives}; asr's exported models take {INPUTS} "
                        f"and give {OUTPUTS} (re-export it: python -m asr.export)")
    desc = json.loads(meta[METADATA_KEY])
    return OnnxModel(session, ModelConfig(**desc["model_config"]), device), desc
