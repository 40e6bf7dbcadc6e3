"""`python -m asr`: what the commands are and how to get help on each. It runs none of them (and imports
none: nothing imports a door), so it answers at once."""

from __future__ import annotations

import argparse
import sys

from asr import __version__

COMMANDS = {  # command -> one line on what it does
    "transcribe": "audio files or folders -> text, JSON with timed words, or subtitles",
    "evaluate": "WER/CER of a model on a manifest, and a per-utterance report",
    "data": "import a corpus (audiofolder, NeMo, lhotse, Kaldi, Common Voice, LibriSpeech, audio + .txt) as manifests",
    "train": "train a model from JSONL manifests (one process, or several under torchrun)",
    "lm": "build, score or mix word n-gram language models (ARPA)",
    "serve": "an OpenAI-compatible transcription server (HTTP; needs the serve extra)",
    "export": "a model to ONNX, to run with ONNX Runtime (--backend onnx; needs the onnx extra)",
}


def overview() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"asr {__version__}: a compact, hackable speech recogniser (log-mel -> BiLSTM -> CTC)", ""]
    lines += [f"  {name:<{width}}  {what}" for name, what in COMMANDS.items()]
    lines += ["", "Run one with python -m asr.COMMAND (installed: asr-COMMAND). Help on each:"]
    lines += [f"  python -m asr.{name} --help" for name in COMMANDS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr", description=overview(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.parse_args(argv)
    print(overview())
    return 0


if __name__ == "__main__":
    sys.exit(main())
