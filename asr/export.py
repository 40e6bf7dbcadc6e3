"""Export a model for another runtime: the acoustic model as ONNX, for ONNX Runtime.

    python -m asr.export --onnx an4.onnx                                  # the shipped AN4 model
    python -m asr.export --onnx best-int8.onnx --model exp/an4/best.pt --int8
    python -m asr.transcribe --backend onnx --model an4.onnx file.wav      # nothing else needed

The .onnx takes (features (B, T, 80), lengths (B,)) -> (log_probs (B, T', V), lengths (B,)), any batch size
and length, and describes itself as the checkpoint does (feature configuration, normalisation, vocabulary,
metadata with the recommended decoding: JSON in its metadata_props["asr"]). The LM that decoding names is
copied beside it, so that it resolves from the .onnx's folder as it did from the checkpoint's.
--int8 applies onnxruntime.quantization.quantize_dynamic: int8 weights, activations quantised per call at run
time (so an utterance in a padded batch is close to, not equal to, the same utterance alone; fp32 is exact).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr import __version__
from asr.atomic import copied
from asr.checkpoint import DEFAULT_MODEL, CheckpointError, json_description, lm_beside, load_model
from asr.cli import Formatter, stdout_guarded
from asr.manifest import same_file

__all__ = ["export_onnx", "main"]


def export_onnx(src: str | Path, dst: str | Path, int8: bool = False) -> tuple[int, Path | None]:
    """The checkpoint's acoustic model as ONNX (fp32 weights, or int8 ones with ONNX Runtime's dynamic
    quantisation), described as the checkpoint is, with its LM copied beside it once the model is written (a
    different file in the LM's place stops the export before it starts); (file size in bytes, the LM copy)."""
    from asr import onnx_backend

    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_file() and not dst.is_dir():  # the rename would replace it (/dev/null as root)
        raise CheckpointError(f"{dst}: not a regular file (a device or a pipe); write to a file")
    if same_file(src, dst):
        raise CheckpointError(f"{dst}: the output is also an input ({src}); write the ONNX model to another file")
    rec = load_model(src)
    if rec.model.cfg.chunk_frames:  # its loop over chunks would be traced for one length only
        raise CheckpointError(f"{src}: a streaming (LC-BLSTM) model; only full-context models export to ONNX")
    lm = lm_beside(rec.metadata, src, dst)
    if lm and (same_file(lm[0], dst) or same_file(lm[1], dst)):
        raise CheckpointError(f"{dst}: the output is also an input (the model's LM {lm[0]}, which goes beside it); "
                              "write the ONNX model to another file")
    desc = json_description(rec)
    desc["metadata"]["onnx"] = {"precision": "int8" if int8 else "fp32", "source": src.name,
                                "opset": onnx_backend.OPSET}
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with copied(lm):
            onnx_backend.export(rec.model, dst, desc, int8)
    except onnx_backend.OnnxError as e:
        raise CheckpointError(str(e)) from e
    except OSError as e:
        raise CheckpointError(f"{dst}: cannot write there ({e.strerror or e})") from e
    return dst.stat().st_size, lm[1] if lm else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asr.export", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write the ONNX model")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint to export (default: the shipped AN4 model)")
    p.add_argument("--int8", action="store_true", help="int8 weights and dynamically quantised activations (ONNX Runtime's quantize_dynamic)")
    return p.parse_args(argv)


@stdout_guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.onnx.strip():
        print("error: --onnx: an empty path; give the file to write", file=sys.stderr)
        return 2
    try:
        size, lm = export_onnx(args.model, args.onnx, args.int8)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.onnx} ({size / 1e6:.1f} MB, {'int8' if args.int8 else 'fp32'} weights)"
          + (f" and its LM {lm}" if lm else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
