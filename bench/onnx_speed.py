"""ONNX Runtime against PyTorch on AN4 test: the same log-probs, the same transcripts, and how fast.

    python bench/onnx_speed.py [--model asr/assets/an4.pt] [--manifest manifests/an4/test.jsonl] [--threads N]

The model is exported (python -m asr.export's export_onnx) to fp32 and int8 ONNX in a temporary folder, and
each back-end is loaded with asr.checkpoint.load_recognizer. Measured, with the same number of threads for
all (--threads, default: torch's):
- log-probs: max abs difference, ONNX vs torch (each utterance alone; in padded batches), and each back-end's
  utterances alone vs in padded batches;
- WER with the model's recommended decoding (beam + LM for the shipped model) and greedy, and how many
  transcripts differ from torch's;
- speed: the model alone on precomputed features, and end to end (asr.transcribe.transcribe_files: audio,
  features, model, decoding), at batch 1 (file by file) and batched (the doors' 200 s batches), best of
  --repeats passes, the back-ends taking turns within each pass.
Prints a Markdown table, then `onnx_speedup_batch1=X` last (end to end, default decoding, batch 1, torch
time / ONNX fp32 time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from _manifests import require_manifests, run_main  # bench/_manifests.py
from asr.audio import load_audio
from asr.checkpoint import DEFAULT_MODEL, load_recognizer
from asr.export import export_onnx
from asr.cli import apply_threads
from asr.data import length_batches, read_manifest
from asr.decoding import Decoder, DecodingConfig, decoding_config
from asr.metrics import score
from asr.transcribe import transcribe_files

BATCH_FRAMES = 200 * 100  # the doors' 200 s of padded audio per model call, in 10 ms feature frames


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def model_log_probs(rec, feats: list[torch.Tensor], batched: bool) -> list[torch.Tensor]:
    """Each utterance's (T', V) log-probs from the model alone: one call each, or in length-sorted batches."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(feats)
    groups = length_batches([len(f) for f in feats], BATCH_FRAMES) if batched else [[i] for i in range(len(feats))]
    for idx in groups:
        batch = torch.nn.utils.rnn.pad_sequence([feats[i] for i in idx], batch_first=True)  # (B, T, n_mels)
        log_probs, lengths = rec.model(batch, torch.tensor([len(feats[i]) for i in idx]))
        for b, i in enumerate(idx):
            out[i] = log_probs[b, :int(lengths[b])]
    return out


def max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def outputs(name: str, rec, path: Path, utts, feats, torch_threads: int) -> dict:
    """One back-end's log-probs (alone, batched) and transcripts (default decoding, greedy) with their WERs."""
    default = Decoder(decoding_config(argparse.Namespace(), rec.metadata, path), rec.vocab)
    greedy = Decoder(DecodingConfig("greedy"), rec.vocab)
    row = {"name": name, "alone": model_log_probs(rec, feats, False), "batched": model_log_probs(rec, feats, True),
           "decoder": default.cfg.decoder, "runs": runs(rec, default, utts, feats, torch_threads)}
    row["default"], row["greedy"] = default.transcripts(row["batched"]), greedy.transcripts(row["batched"])
    row["wer_default"], row["wer_greedy"] = (score(utts, row[k])["wer"] for k in ("default", "greedy"))
    return row


def with_threads(n: int, run):
    """run, called with torch on n threads (each back-end as its door sets it: torch on --threads, ONNX Runtime
    on --threads with torch on one, asr.onnx_backend.load)."""
    def timed():
        torch.set_num_threads(n)
        return run()
    return timed


def runs(rec, decoder: Decoder, utts, feats, torch_threads: int) -> dict:
    """What is timed: the model alone on the features, and transcribe end to end, at batch 1 and batched."""
    paths = [u.audio for u in utts]
    torch.set_num_threads(torch_threads)
    transcribe_files(rec, paths[:2], decoder=decoder)  # warm-up: allocators, thread pools
    timed = {"model_b1": lambda: model_log_probs(rec, feats, False),
             "model_batched": lambda: model_log_probs(rec, feats, True),
             "e2e_b1": lambda: [transcribe_files(rec, [p], decoder=decoder) for p in paths],
             "e2e_batched": lambda: transcribe_files(rec, paths, decoder=decoder)}
    return {key: with_threads(torch_threads, run) for key, run in timed.items()}


def time_interleaved(rows: list[dict], repeats: int) -> None:
    """Best of `repeats` passes of each run, the back-ends taking turns within each pass (so that other load on
    the machine falls on all of them alike); sets row[key] to the seconds."""
    for row in rows:
        row.update({key: float("inf") for key in row["runs"]})
    for _ in range(repeats):
        for key in rows[0]["runs"]:
            for row in rows:
                row[key] = min(row[key], best_of(1, row["runs"][key]))


def table(rows: list[dict], audio: float) -> str:
    base = rows[0]
    lines = ["| back-end | WER % default / greedy | transcripts unlike torch's | log-prob max abs diff vs torch "
             "| alone vs in batches | model, batch 1 / batched (x real time) | end to end, batch 1 / batched "
             "(x real time) | end to end speed-up, batch 1 / batched |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        differ = sum(a != b for a, b in zip(r["default"], base["default"]))
        differ_greedy = sum(a != b for a, b in zip(r["greedy"], base["greedy"]))
        diff = (f"{max_difference(r['alone'], base['alone']):.1e} / {max_difference(r['batched'], base['batched']):.1e}"
                if r is not base else "")
        lines.append(f"| {r['name']} | {r['wer_default']:.2f} / {r['wer_greedy']:.2f} | {differ} / {differ_greedy} "
                     f"| {diff} | {max_difference(r['alone'], r['batched']):.1e} | {audio / r['model_b1']:.0f} / {audio / r['model_batched']:.0f} "
                     f"| {audio / r['e2e_b1']:.0f} / {audio / r['e2e_batched']:.0f} "
                     f"| {base['e2e_b1'] / r['e2e_b1']:.2f}x / {base['e2e_batched'] / r['e2e_batched']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--threads", type=int, help="threads for torch and ONNX Runtime alike (default: torch's)")
    p.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    args = p.parse_args()
    require_manifests(args.manifest)
    apply_threads(args.threads)  # before the ONNX sessions: they take torch's thread count
    utts = read_manifest(args.manifest)
    audio = sum(u.duration for u in utts)
    with tempfile.TemporaryDirectory(prefix="onnx-speed-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model-int8.onnx"
        export_onnx(args.model, fp32)
        export_onnx(args.model, int8, int8=True)
        backends = [("torch", "torch", Path(args.model)), ("ONNX fp32", "onnx", fp32), ("ONNX int8", "onnx", int8)]
        threads = torch.get_num_threads()
        recs = []
        for name, kind, path in backends:
            torch.set_num_threads(threads)  # as each door leaves it (asr.cli.torch_beside_onnx): reset per back-end
            recs.append((name, load_recognizer(path, kind), path))
        torch_threads = {name: threads if kind == "torch" else 1 for name, kind, _ in backends}
        feats = [recs[0][1].frontend(load_audio(u.audio)) for u in utts]  # (T, n_mels) each, one frontend for all
        rows = [outputs(name, rec, path, utts, feats, torch_threads[name]) for name, rec, path in recs]
        time_interleaved(rows, args.repeats)
    print(f"\n{len(utts)} utterances, {audio:.1f} s of audio, {threads} threads, "
          f"default decoding: {rows[0]['decoder']}; 'alone / batched' for the log-probs, transcripts default / greedy\n")
    print(table(rows, audio))
    fp32_row = rows[1]
    print(f"\nonnx_fp32_identical_transcripts={sum(a == b for a, b in zip(fp32_row['default'], rows[0]['default']))}"
          f"/{len(utts)}")
    print(f"onnx_speedup_batch1={rows[0]['e2e_b1'] / fp32_row['e2e_b1']:.2f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
