"""Transcribe audio files with a trained model (by default, the AN4 model that ships in the package).

    python -m asr.transcribe file.wav [more.flac ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.checkpoint import DEFAULT_MODEL, CheckpointError, Recognizer, load_model
from asr.decode import greedy_decode


@torch.no_grad()
def transcribe_waves(rec: Recognizer, waves: list[np.ndarray], batch_seconds: float = 200.0) -> list[str]:
    """Greedy transcripts of (N,) 16 kHz waveforms, in order; similar lengths are batched together."""
    device = next(rec.model.parameters()).device
    feats = [rec.frontend(w) for w in waves]  # each (T, n_mels)
    order = sorted(range(len(waves)), key=lambda i: feats[i].shape[0])
    texts: list[str] = [""] * len(waves)
    start = 0
    while start < len(order):
        # Grow the batch while (count x longest) stays within batch_seconds of audio.
        end = start + 1
        while end < len(order) and (end - start + 1) * len(waves[order[end]]) / SAMPLE_RATE <= batch_seconds:
            end += 1
        idx = order[start:end]
        batch = torch.nn.utils.rnn.pad_sequence([feats[i] for i in idx], batch_first=True)  # (B, T, n_mels)
        lengths = torch.tensor([feats[i].shape[0] for i in idx])
        log_probs, out_lengths = rec.model(batch.to(device), lengths.to(device))
        for i, text in zip(idx, greedy_decode(log_probs.cpu(), out_lengths.cpu(), rec.vocab)):
            texts[i] = text
        start = end
    return texts


def transcribe_files(rec: Recognizer, paths: list[str], batch_seconds: float = 200.0) -> list[dict]:
    """One result per path, in order: {"audio", "text"} or {"audio", "error"}. Bad files do not stop the rest."""
    results: list[dict] = []
    waves, good = [], []
    for path in paths:
        try:
            waves.append(load_audio(path))
            good.append(len(results))
            results.append({"audio": path})
        except AudioError as e:
            results.append({"audio": path, "error": str(e)})
    for i, text in zip(good, transcribe_waves(rec, waves, batch_seconds)):
        results[i]["text"] = text
    return results


def format_result(result: dict, fmt: str, with_name: bool) -> str:
    if fmt == "jsonl":
        return json.dumps(result, ensure_ascii=False)
    return f"{result['audio']}\t{result['text']}" if with_name else result["text"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.transcribe", description=__doc__.strip().splitlines()[0])
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, sph, ...; any rate and channel count)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="checkpoint (default: the shipped AN4 model)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--format", default="text", choices=["text", "jsonl"],
                   help="text: the transcript (path<TAB>text for several files); jsonl: one JSON object a file")
    args = p.parse_args(argv)
    try:
        rec = load_model(args.model, args.device)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = 0
    for result in transcribe_files(rec, args.files):
        if "error" in result:
            failed += 1
            print(f"error: {result['error']}", file=sys.stderr)
            if args.format == "jsonl":
                print(format_result(result, "jsonl", True), flush=True)
            continue
        print(format_result(result, args.format, len(args.files) > 1), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
