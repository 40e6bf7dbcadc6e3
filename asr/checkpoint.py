"""Self-describing checkpoints: model config, feature config, vocabulary, normalisation, metadata.
A BPE vocabulary also stores its SentencePiece model, as bytes in a uint8 tensor ("tokenizer").

`load_model(path)` needs nothing else, and loads with `torch.load(..., weights_only=True)`.
`json_description(rec)` is that self-description as JSON (how asr.export's ONNX models carry it);
`load_recognizer(path, backend)` loads either kind.
"""

from __future__ import annotations

import base64
import dataclasses
import filecmp
import json
import zipfile
from pathlib import Path

import torch

from asr.atomic import copied, save_atomic
from asr.features import FeatureConfig, Frontend
from asr.manifest import same_file
from asr.model import AcousticModel, ModelConfig
from asr.quantize import PRECISIONS, dequantize_int8, stored_weights
from asr.recognizer import Recognizer, with_chunks
from asr.text import BpeVocab, CharVocab, Vocab

DEFAULT_MODEL = Path(__file__).parent / "assets" / "an4.pt"  # the model that ships in the package
DEFAULT_STREAM_MODEL = DEFAULT_MODEL.with_name("an4_stream.pt")  # its streaming (LC-BLSTM) sibling
FORMAT_VERSION = 1
V1_FEATURES = {"relative_floor": 0.0}  # feature settings a checkpoint written before them was trained with


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or not an asr checkpoint; the message starts with the path."""


def _self_description(rec: Recognizer) -> dict:
    """What a model says of itself, tensors aside: format, model and feature configuration, vocabulary, metadata."""
    return {
        "format_version": FORMAT_VERSION,
        "model_config": dataclasses.asdict(rec.model.cfg),
        "feature_config": dataclasses.asdict(rec.frontend.cfg),
        "vocab": list(rec.vocab.tokens),
        "metadata": dict(rec.metadata),
    }


def model_state(rec: Recognizer, precision: str = "fp32") -> dict:
    """The parts of a checkpoint that describe and hold the model, weights stored at `precision`."""
    weights, scales = stored_weights(rec.model.state_dict(), precision)
    state = {
        **_self_description(rec),
        "normalization": {"mean": rec.frontend.mean.clone(), "std": rec.frontend.std.clone()},
        "model": weights,
    }
    if scales:
        state["int8_scales"] = scales
    if isinstance(rec.vocab, BpeVocab):
        model_bytes = torch.frombuffer(bytearray(rec.vocab.model), dtype=torch.uint8)  # (bytes,)
        state["tokenizer"] = {"kind": "sentencepiece", "model": model_bytes}
    return state


def vocab_from_state(ckpt: dict) -> Vocab:
    """The checkpoint's vocabulary: characters, or BPE pieces when it holds a SentencePiece model."""
    tokenizer = ckpt.get("tokenizer")
    if tokenizer is None:
        return CharVocab(ckpt["vocab"])
    if tokenizer.get("kind") != "sentencepiece":
        raise ValueError(f"unknown tokenizer kind {tokenizer.get('kind')!r}, expected 'sentencepiece'")
    vocab = BpeVocab(tokenizer["model"].numpy().tobytes())
    if vocab.tokens != list(ckpt["vocab"]):
        raise ValueError("the stored SentencePiece model does not give the stored vocabulary")
    return vocab


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        kind = "a folder, not a checkpoint file" if path.is_dir() else "no such checkpoint file"
        raise CheckpointError(f"{path}: {kind}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else ""  # torch's run to many lines
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {first})") from e
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"{path}: not an asr checkpoint (no model_config/model)")
    version = ckpt.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path}: format_version {json.dumps(str(version))[:40]} is not a whole number")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {version}: written by a newer asr than this one "
                              f"(reads {FORMAT_VERSION}); upgrade asr")
    return ckpt


def check_metadata(metadata, name: str | Path, lm_inside: bool = False) -> None:
    """CheckpointError naming `name` where the metadata is not an object, the decoding it recommends not an object of
    settings or its LM not a file name; with lm_inside (a door writing new metadata), also where the LM is not inside
    the model's folder (absolute, or with '..': exports copy it to the same place beside them). The settings' values
    are checked where they are used (asr.decoding.decoding_config)."""
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{name}: metadata must be an object, got {json.dumps(str(metadata))[:40]}")
    decoding = metadata.get("decoding")
    if decoding is not None and not isinstance(decoding, dict):
        raise CheckpointError(f"{name}: metadata 'decoding' must be an object of decoding settings, got "
                              f"{json.dumps(decoding)[:40]}")
    lm = (decoding or {}).get("lm")
    outside = isinstance(lm, str) and (Path(lm).is_absolute() or ".." in Path(lm).parts)
    if lm is not None and (not isinstance(lm, str) or (lm_inside and outside)):
        raise CheckpointError(f"{name}: metadata 'decoding.lm' must name the LM beside the model (a path inside its "
                              f"folder), got {json.dumps(lm)[:60]}")


def frontend_from_state(ckpt: dict) -> Frontend:
    features = FeatureConfig(**{**V1_FEATURES, **ckpt["feature_config"]})
    return Frontend(features, ckpt["normalization"]["mean"], ckpt["normalization"]["std"])


def recognizer_from_state(ckpt: dict, device: str | torch.device = "cpu") -> Recognizer:
    model = AcousticModel(ModelConfig(**ckpt["model_config"]))
    scales = ckpt.get("int8_scales", {})
    model.load_state_dict({
        k: dequantize_int8(v, scales[k]) if k in scales else (v.float() if v.is_floating_point() else v)
        for k, v in ckpt["model"].items()
    })
    return Recognizer(model.to(device).eval(), frontend_from_state(ckpt), vocab_from_state(ckpt),
                      dict(ckpt.get("metadata", {})))


def load_model(path: str | Path = DEFAULT_MODEL, device: str | torch.device = "cpu") -> Recognizer:
    """Read a checkpoint (training or shipped) -> Recognizer in eval mode on `device`."""
    ckpt = read_checkpoint(path)
    check_metadata(ckpt.get("metadata", {}), path)
    try:
        return recognizer_from_state(ckpt, device)
    except ImportError as e:  # a BPE checkpoint without the sentencepiece package
        raise CheckpointError(f"{path}: {e}") from e
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        reason = " ".join(str(e).split())  # torch's shape mismatches run to several lines
        raise CheckpointError(f"{path}: checkpoint does not match this version of asr, or is damaged ({reason})") from e


def lm_beside(metadata: dict, src: Path, dst: Path) -> tuple[Path, Path] | None:
    """(the LM that the model's recommended decoding names, relative to the model's folder; where its copy goes
    in dst's folder: an export copies it, so that it resolves from the copy as from the model), or None when there
    is none. CheckpointError if the copy would land outside dst's folder, or another file is in its place."""
    lm = (metadata.get("decoding") or {}).get("lm")
    if not lm or Path(lm).is_absolute() or not (src.parent / lm).is_file():
        return None
    source, target = src.parent / lm, dst.parent / lm
    if ".." in Path(lm).parts and src.parent.resolve() != dst.parent.resolve():
        raise CheckpointError(f"{src}: its LM {lm} is outside the model's folder, and an export copies the LM to the "
                              f"same place beside it: move the LM beside the model and name it there (python -m "
                              f"asr.checkpoint --metadata)")
    if target.exists() and not (same_file(source, target) or filecmp.cmp(source, target, shallow=False)):
        raise CheckpointError(f"{target}: exists and is not the model's LM {source}: export into another folder")
    return source, target


def export_model(src: str | Path, dst: str | Path, metadata: dict | None = None, precision: str = "fp16",
                 chunks: tuple[int | None, int | None] = (None, None)) -> tuple[int, Path | None]:
    """A checkpoint's inference part (fp16 by default), more metadata, `chunks` (with_chunks), with the LM its own
    decoding names copied beside it (an LM that `metadata` names is dst's folder's own); (size in bytes, the LM)."""
    src, dst = Path(src), Path(dst)
    if same_file(src, dst):
        raise CheckpointError(f"{dst}: the output is also an input ({src}); write the model to another file")
    check_metadata(metadata or {}, "--metadata", lm_inside=True)  # before any work (the source's own: as it loads)
    rec = load_model(src)
    try:
        rec = with_chunks(rec, *chunks) if chunks != (None, None) else rec
    except ValueError as e:
        raise CheckpointError(f"--chunk-frames, --right-context-frames: {e}") from e
    lm = None if "lm" in ((metadata or {}).get("decoding") or {}) else lm_beside(rec.metadata, src, dst)
    rec.metadata.update(metadata or {})
    with copied(lm):
        save_atomic(model_state(rec, precision), dst)
    return dst.stat().st_size, lm[1] if lm else None


BACKENDS = ("torch", "onnx")  # what runs the acoustic model: PyTorch, or ONNX Runtime (an exported .onnx)
EXPORT_HINT = "python -m asr.export --onnx OUT.onnx --model"


def json_description(rec: Recognizer) -> dict:
    """The checkpoint's self-description as JSON values (how an exported model carries it): normalisation as
    lists of float32 values (exact round trip), a SentencePiece model as base64."""
    desc = {**_self_description(rec),
            "normalization": {"mean": rec.frontend.mean.tolist(), "std": rec.frontend.std.tolist()}}
    if isinstance(rec.vocab, BpeVocab):
        desc["tokenizer"] = {"kind": "sentencepiece", "model": base64.b64encode(rec.vocab.model).decode("ascii")}
    return desc


def state_from_json(desc: dict) -> dict:
    """json_description's dict -> the same fields as a checkpoint holds them (tensors), weights aside."""
    state = {**desc, "normalization": {k: torch.tensor(desc["normalization"][k], dtype=torch.float32)
                                       for k in ("mean", "std")}}
    if "tokenizer" in desc:
        model = base64.b64decode(desc["tokenizer"]["model"])
        state["tokenizer"] = {**desc["tokenizer"], "model": torch.frombuffer(bytearray(model), dtype=torch.uint8)}
    return state


def load_recognizer(path: str | Path | None = None, backend: str = "torch",
                    device: str | torch.device = "cpu") -> Recognizer:
    """A Recognizer whose model runs in PyTorch (backend "torch": a checkpoint, load_model) or in ONNX Runtime
    ("onnx": a model from asr.export.export_onnx; its .model has the same (features, lengths) -> (log_probs, lengths)
    contract, so everything downstream is shared). path None: the shipped model (torch only)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        path = Path(DEFAULT_MODEL if path is None else path)
        if path.suffix == ".onnx":
            raise CheckpointError(f"{path}: an ONNX model, not a torch checkpoint: use --backend onnx")
        return load_model(path, device)
    if path is None:
        raise CheckpointError(f"the onnx backend needs an exported model: {EXPORT_HINT} {DEFAULT_MODEL}")
    path = Path(path)
    if path.suffix in (".pt", ".pth") or zipfile.is_zipfile(path):  # torch's format is a zip archive
        raise CheckpointError(f"{path}: a torch checkpoint, not an ONNX model: use --backend torch, "
                              f"or export it: {EXPORT_HINT} {path}")
    from asr import onnx_backend

    try:
        model, desc = onnx_backend.load(path, device)
        check_metadata(desc.get("metadata", {}), path)
        state = state_from_json(desc)
        return Recognizer(model, frontend_from_state(state), vocab_from_state(state), dict(desc.get("metadata", {})))
    except onnx_backend.OnnxError as e:
        raise CheckpointError(str(e)) from e
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: ONNX model does not match this version of asr ({e})") from e


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from asr.manifest import json_object

    p = argparse.ArgumentParser(prog="python -m asr.checkpoint",
                                description="Export a training checkpoint as a small inference model.")
    p.add_argument("src", help="training checkpoint, e.g. exp/an4/best.pt")
    p.add_argument("dst", help="where to write the model")
    p.add_argument("--metadata", default="{}", help="JSON object merged into the model's metadata")
    p.add_argument("--precision", choices=PRECISIONS, default="fp16",
                   help="weights as stored: fp16 (default), fp32, or int8 (per-row scales; about half of fp16)")
    p.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="same as --precision fp32")
    p.add_argument("--chunk-frames", type=int, metavar="N", help="streaming: output frames (40 ms) per chunk")
    p.add_argument("--right-context-frames", type=int, metavar="N", help="streaming: frames each chunk reads past it")
    args = p.parse_args(argv)
    try:
        size, lm = export_model(args.src, args.dst, json_object(args.metadata, "--metadata"), args.precision,
                                (args.chunk_frames, args.right_context_frames))
    except (CheckpointError, ValueError, OSError) as e:  # OSError: dst cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst} ({size / 1e6:.1f} MB)" + (f" and its LM {lm}" if lm else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
