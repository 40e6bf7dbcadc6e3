"""Evaluate a model on a manifest: WER/CER and a per-utterance report.

    python -m asr.evaluate --model M --manifest manifests/an4/test.jsonl --out DIR
    python -m asr.evaluate --model M --manifest manifests/an4/dev.jsonl --decoder beam --lm LM --tune-lm

--tune-lm searches alpha (LM weight) x beta (word bonus) on the manifest given (use dev, never test)
and prints and saves (OUT/lm_weights.json) the pair with the lowest WER. --hotword, --hotwords-file and --grammar
steer the beam search as in asr.transcribe: what a phrase list does on your own recordings.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import torch

from asr import __version__
from asr.audio import AudioError
from asr.checkpoint import DEFAULT_MODEL, CheckpointError, load_recognizer
from asr.cli import (Formatter, OutputError, add_backend_flag, add_runtime_flags, apply_threads, finite_float,
                     default_threads, positive_float, positive_int, prepare_output_dir, progress_bar,
                     stdout_guarded, torch_beside_onnx, write_whole)
from asr.data import MISSING, ManifestError, Utterance, drop_line, lossy_text_note, read_manifest
from asr.manifest import not_found
from asr.outputs import error_line
from asr.decoding import Decoder, DecodingConfig, add_decoding_flags, decoding_config
from asr.decoding.decoder import add_steering_flags, ignored_by_greedy, steering_from_args
from asr.decoding.steering import DEFAULT_HOTWORD_SCORE
from asr.lm import LMError, load_lm
from asr.metrics import score
from asr.outputs import check_not_read, read_files
from asr.recognizer import utterance_log_probs
from asr.text import Vocab, normalize_text

__all__ = ["frequent_errors", "main", "tune_lm", "write_report"]


REPORT_FILES = ("hypotheses.txt", "errors.jsonl", "summary.json", "lm_weights.json")  # what --out may hold


def write_report(result: dict, out_dir: str | Path, extra: dict | None = None) -> None:
    """hypotheses.txt (id<TAB>hyp), errors.jsonl (one row an utterance, worst first), summary.json."""
    out = Path(out_dir)
    rows = result["utterances"]
    worst_first = sorted(rows, key=lambda r: (-r["word_errors"], r["id"]))
    summary = {
        "wer": round(result["wer"], 3), "cer": round(result["cer"], 3), "utterances": len(rows),
        "words": sum(r["words"] for r in rows), "word_errors": sum(r["word_errors"] for r in rows),
        "sentences_with_errors": sum(r["word_errors"] > 0 for r in rows), **(extra or {}),
    }
    write_whole({out / "hypotheses.txt": "".join(f"{r['id']}\t{r['hyp']}\n" for r in rows),
                 out / "errors.jsonl": "".join(json.dumps(r) + "\n" for r in worst_first),
                 out / "summary.json": json.dumps(summary, indent=2) + "\n"})  # the report of one run, whole


def frequent_errors(out_dir: str | Path, top: int = 3) -> str:
    """The `top` most frequent errors among the utterances a report (write_report's folder) has wrong, most frequent
    first, ties in the report's order: "three -> eight 27, two -> (nothing) 3", or "none" (also without
    errors.jsonl). Raises ValueError naming the file and line where errors.jsonl is not write_report's."""
    path = Path(out_dir) / "errors.jsonl"
    counts: collections.Counter = collections.Counter()
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                try:
                    row = json.loads(line) if line.strip() else None
                    if row is not None and row["word_errors"]:
                        counts[row["ref"], row["hyp"]] += 1
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{i}: not a row of asr.evaluate's report ({type(e).__name__})") from e
    pairs = counts.most_common(top)
    return ", ".join(f"{ref} -> {hyp or '(nothing)'} {n}" for (ref, hyp), n in pairs) or "none"


ALPHAS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # LM weights tried by --tune-lm
BETAS = (0.0, 0.5, 1.0, 2.0, 3.0)  # word bonuses tried by --tune-lm


def tune_lm(utts: list[Utterance], log_probs: list[torch.Tensor], cfg: DecodingConfig, vocab: Vocab) -> tuple[dict, list]:
    """WER of every (alpha, beta) on the grid; returns the best {alpha, beta, wer} and all rows."""
    rows, lm = [], load_lm(cfg.lm) if cfg.lm else None  # read once for the whole grid
    for alpha, beta in itertools.product(ALPHAS, BETAS):
        beam = dataclasses.replace(cfg.beam, alpha=alpha, beta=beta)
        decoder = Decoder(dataclasses.replace(cfg, decoder="beam", beam=beam), vocab, lm)
        rows.append({"alpha": alpha, "beta": beta, "wer": round(score(utts, decoder.transcripts(log_probs))["wer"], 3)})
    return min(rows, key=lambda r: (r["wer"], r["alpha"], r["beta"])), rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asr.evaluate", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter, epilog="\n".join(__doc__.strip().splitlines()[1:]))
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("--model", default=str(DEFAULT_MODEL),
                   help="checkpoint, or .onnx with --backend onnx (default: the shipped AN4 model)")
    p.add_argument("--manifest", required=True, help="JSONL manifest with reference texts")
    p.add_argument("--out", help="folder for hypotheses.txt, errors.jsonl, summary.json (default: print only the rates)")
    add_runtime_flags(p)
    add_backend_flag(p)
    p.add_argument("--batch-seconds", type=positive_float, default=200.0, help="padded audio seconds per batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar (shown only where stderr is a terminal)")
    add_decoding_flags(p, finite_float, positive_int)
    add_steering_flags(p, finite_float)
    p.add_argument("--tune-lm", action="store_true", help="grid-search --alpha/--beta on this manifest (dev only)")
    return p.parse_args(argv)


def steered(args: argparse.Namespace) -> dict:
    """The steering flags given, as the report keeps them."""
    given = {"hotword": args.hotword, "hotwords_file": args.hotwords_file, "grammar": args.grammar}
    if args.hotword or args.hotwords_file or args.hotword_score is not None:  # a score alone: refused, not dropped
        given["hotword_score"] = DEFAULT_HOTWORD_SCORE if args.hotword_score is None else args.hotword_score
    return {k: v for k, v in given.items() if v}


def ignored_by_tuning(args: argparse.Namespace) -> str | None:
    """The warning line for --alpha/--beta given with --tune-lm (the grid replaces them); None if neither is."""
    given = [flag for flag in ("--alpha", "--beta") if getattr(args, flag[2:]) is not None]
    if not given:
        return None
    verb = "is" if len(given) == 1 else "are"
    return f"warning: {' and '.join(given)} {verb} ignored by --tune-lm, which searches alpha and beta"


def read_references(path: str) -> tuple[list[Utterance], list[str]]:
    """(the manifest's utterances that have audio, the ids of those without, said in one warning line);
    refuses an empty manifest, references empty after normalisation and a manifest without any audio, and
    notes on stderr the references that lose characters the vocabulary cannot spell."""
    utts = read_manifest(path)
    if not utts:
        raise ManifestError(f"{path}: no utterances: there is nothing to score")
    empty = [u.id for u in utts if not normalize_text(u.text)]
    if empty:
        raise ManifestError(f"{path}: {len(empty)} reference(s) empty after normalisation, a WER over them is "
                            f"undefined: {', '.join(empty[:3])}{' ...' if len(empty) > 3 else ''}")
    if note := lossy_text_note(utts, path):
        print(note, file=sys.stderr)
    has_audio = [Path(u.audio).is_file() for u in utts]
    kept = [u for u, ok in zip(utts, has_audio) if ok]
    missing = [u for u, ok in zip(utts, has_audio) if not ok]
    if not kept:
        first = missing[0].audio
        raise ManifestError(f"{path}: no utterance has its audio (e.g. {first} {not_found(first)})")
    if line := drop_line(path, len(utts), len(kept), {MISSING: missing}):
        print(line, file=sys.stderr)
    return kept, [u.id for u in missing]


def readable_log_probs(rec, utts: list[Utterance], args: argparse.Namespace,
                       progress) -> tuple[list[Utterance], list[torch.Tensor], list[str]]:
    """(the utterances whose audio can be read, their log-probs, the ids of those whose audio cannot): one of those
    is dropped, said in one warning line with the first one's reason, as a missing file is, and the rest scored
    (it ended the whole run); AudioError when none can be read."""
    bad: dict[int, AudioError] = {}
    log_probs = utterance_log_probs(rec, utts, args.batch_seconds, on_progress=progress.update,
                                    on_unreadable=bad.__setitem__)
    if len(bad) == len(utts):
        raise AudioError(f"{args.manifest}: no utterance's audio can be read (e.g. {bad[min(bad)]})")
    kept = [i for i in range(len(utts)) if i not in bad]
    if bad:
        dropped = [utts[i] for i in sorted(bad)]
        line = drop_line(args.manifest, len(utts), len(kept), {"whose audio cannot be read": dropped})
        print(f"{line}; {bad[min(bad)]}", file=sys.stderr)
    return [utts[i] for i in kept], [log_probs[i] for i in kept], [utts[i].id for i in sorted(bad)]


@stdout_guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apply_threads(args.threads or default_threads())
    try:
        if args.tune_lm and args.decoder == "greedy":
            raise ValueError("--tune-lm tunes the LM weights of beam search: leave out --decoder greedy")
        if args.out:
            check_not_read([Path(args.out) / name for name in REPORT_FILES], read_files(args))
            prepare_output_dir(args.out, "--out")
        rec = load_recognizer(args.model, args.backend, args.device)
        torch_beside_onnx(args.backend)
        cfg = decoding_config(args, rec.metadata, args.model)
        if args.tune_lm and not cfg.lm:
            raise ValueError("--tune-lm needs a language model: give --lm PATH")
        if args.tune_lm and steered(args):
            raise ValueError("--tune-lm searches the LM weights without steering: leave out --hotword, "
                             "--hotwords-file, --hotword-score and --grammar")
        if not args.tune_lm:  # (tuning makes its own decoders) a bad grammar or hotword is said before the model runs
            decoder = Decoder(cfg, rec.vocab)
            steering = steering_from_args(args, decoder)
        if warning := ignored_by_greedy(args, cfg) if not args.tune_lm else ignored_by_tuning(args):
            print(warning, file=sys.stderr)
        utts, missing = read_references(args.manifest)
        with progress_bar(sum(u.duration for u in utts), "evaluating", args.quiet) as progress:
            utts, log_probs, unreadable = readable_log_probs(rec, utts, args, progress)
        if args.tune_lm:
            return report_tuning(*tune_lm(utts, log_probs, cfg, rec.vocab), args.out)
        result = score(utts, decoder.transcripts(log_probs, steering))
    except (OutputError, CheckpointError, ManifestError, LMError, AudioError, ValueError) as e:
        print(error_line(e), file=sys.stderr)
        return 2
    try:
        if args.out:
            write_report(result, args.out, {"model": str(args.model), "manifest": str(args.manifest),
                                            "decoder": cfg.decoder, "decoding": cfg.to_dict(),
                                            "missing_audio": missing, "unreadable_audio": unreadable,
                                            "steering": steered(args)})
    except OutputError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    print(f"WER={result['wer']:.2f} CER={result['cer']:.2f}")
    return 0


def report_tuning(best: dict, rows: list[dict], out: str | None) -> int:
    for r in rows:
        print(f"alpha={r['alpha']} beta={r['beta']} WER={r['wer']:.2f}")
    if out:
        try:
            write_whole({Path(out) / "lm_weights.json": json.dumps({**best, "grid": rows}, indent=2) + "\n"})
        except OutputError as e:
            print(error_line(e), file=sys.stderr)
            return 2
    if len(rows) > 1 and len({r["wer"] for r in rows}) == 1:  # e.g. dev of the training speakers, all but solved
        print(f"note: every alpha and beta of the grid scores WER={best['wer']:.2f} here: this manifest cannot tell them "
              "apart, so the least LM weight is kept; a larger --alpha favours the LM's words", file=sys.stderr)
    print(f"best: alpha={best['alpha']} beta={best['beta']} WER={best['wer']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
