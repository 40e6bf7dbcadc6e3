"""Append a row to recipes/librispeech/RESULTS.md from an evaluation's summary.json.

    python recipes/librispeech/results.py EXP/eval/test-clean.greedy/summary.json --model EXP/best.pt \\
        --split test-clean --decoder greedy
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"
HEADER = "| date | model | split | decoder | WER % | CER % |\n|---|---|---|---|---:|---:|\n"


def cell(text: str) -> str:
    """Text as one Markdown table cell: a bar escaped, so that it does not split the row."""
    return text.replace("|", "\\|")


def result_row(summary: dict, model: str, split: str, decoder: str, date: str | None = None) -> str:
    """One Markdown table row (with its newline)."""
    date = date or datetime.date.today().isoformat()
    names = " | ".join(cell(x) for x in (date, model, split, decoder))
    return f"| {names} | {summary['wer']:.2f} | {summary['cer']:.2f} |\n"


def rates(summary, path: str) -> dict:
    """The summary's WER and CER, checked: ValueError naming what is missing or wrong."""
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not an evaluation's summary (a JSON object with wer and cer)")
    for name in ("wer", "cer"):
        if name not in summary:
            raise ValueError(f"{path}: no {name!r} (python -m asr.evaluate --out DIR writes DIR/summary.json)")
        if isinstance(summary[name], bool) or not isinstance(summary[name], (int, float)):
            raise ValueError(f"{path}: {name!r} is not a number: {json.dumps(summary[name])[:40]}")
    return summary


def append_result(results: Path, row: str) -> None:
    """Append the row to the results file, starting the file with the table header if it has none."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    if HEADER.splitlines()[0] not in text:
        text += ("\n" if text and not text.endswith("\n") else "") + HEADER
    results.write_text(text + row, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("summary", help="summary.json written by python -m asr.evaluate --out DIR")
    p.add_argument("--model", required=True, help="how the model is named in the table (e.g. its checkpoint path)")
    p.add_argument("--split", required=True)
    p.add_argument("--decoder", required=True, help='e.g. "greedy" or "beam 32 + 4-gram (alpha 0.8, beta 1.0)"')
    p.add_argument("--results", default=str(RESULTS), help="the Markdown file to append to")
    args = p.parse_args(argv)
    try:
        summary = json.loads(Path(args.summary).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {args.summary}: {e}", file=sys.stderr)
        return 2
    try:
        summary = rates(summary, args.summary)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    row = result_row(summary, args.model, args.split, args.decoder)
    try:
        append_result(Path(args.results), row)
    except OSError as e:
        print(f"error: {args.results}: cannot be written ({e.strerror or e})", file=sys.stderr)
        return 2
    print(row, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
