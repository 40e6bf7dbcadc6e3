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

from asr import __version__
from asr.checkpoint import DEFAULT_MODEL, CheckpointError, export_onnx
from asr.cli import Formatter

__all__ = ["main"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asr.export", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="where to write the ONNX model")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint to export (default: the shipped AN4 model)")
    p.add_argument("--int8", action="store_true", help="int8 weights and dynamically quantised activations (ONNX Runtime's quantize_dynamic)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
