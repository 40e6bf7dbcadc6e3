"""The files corpora list their utterances in, read with line numbers for the error messages: CSV/TSV tables with a
header row, JSON lines (plain or gzip), Kaldi's "key value" files. Each problem is a CorpusError naming file and
line."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import TextIO

from asr.corpora.rows import CorpusError
from asr.manifest import json_objects, not_utf8


def open_text(path: Path) -> TextIO:
    """A text file, gunzipped when it starts with gzip's magic bytes (whatever its name)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic == b"\x1f\x8b":
            return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")  # -sig: a byte-order mark (Excel, Notepad) is dropped
    except OSError as e:
        raise CorpusError(f"{path}: cannot read it ({e.strerror or e})") from e


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line without its end) for every line that is not blank."""
    try:
        with open_text(path) as f:
            return [(n, line.rstrip("\r\n")) for n, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError:
        raise CorpusError(not_utf8(path) + "; save it as UTF-8") from None
    except (OSError, EOFError) as e:  # a cut-short gzip
        raise CorpusError(f"{path}: cannot read it as UTF-8 text ({e})") from e


def read_table(path: Path, delimiter: str, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict]]]:
    """(the header's column names, (line number, {column: value}) per row) of a CSV or TSV file with a header row.
    Missing columns, or a row with more or fewer fields than the header, raise CorpusError naming the line."""
    lines = read_lines(path)
    if not lines:
        raise CorpusError(f"{path}: empty (expected a header row with the columns {', '.join(required)})")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL  # Common Voice's TSVs hold bare quotes
    parsed = csv.reader((line for _, line in lines), delimiter=delimiter, quoting=quoting)
    try:
        records = list(parsed)
    except csv.Error as e:
        raise CorpusError(f"{path}:{lines[min(parsed.line_num, len(lines)) - 1][0]}: not valid CSV ({e})") from e
    if len(records) != len(lines):  # a quoted field over several lines: number the records by their first line
        raise CorpusError(f"{path}: a quoted field runs over several lines; write one row a line")
    columns = [c.strip() for c in records[0]]
    if twice := next((c for i, c in enumerate(columns) if c and c in columns[:i]), None):  # the last would win
        raise CorpusError(f"{path}:{lines[0][0]}: the column {twice!r} is in the header twice")
    missing = [c for c in required if c not in columns]
    if missing:
        raise CorpusError(f"{path}:{lines[0][0]}: missing column(s) {', '.join(missing)} "
                          f"(the header has: {', '.join(columns) or 'nothing'})")
    rows = []
    for (lineno, _), record in zip(lines[1:], records[1:]):
        if len(record) != len(columns):
            raise CorpusError(f"{path}:{lineno}: {len(record)} fields, the header has {len(columns)}")
        rows.append((lineno, dict(zip(columns, record))))
    return columns, rows


def read_json_lines(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, object) per line of a JSON-lines file (plain or gzip); each object must hold `required`."""
    return json_objects(path, read_lines(path), required, CorpusError)


def read_kaldi(path: Path, fields: int = 2, unique: bool = False) -> list[tuple[int, str, str]]:
    """(line number, key, the rest of the line) of a Kaldi file of `key value...` lines; a line with fewer than
    `fields` whitespace-separated fields raises CorpusError (a `text` line may hold its key alone: fields=1), as does
    a key listed twice where `unique` (a table whose second line would silently win)."""
    out, first = [], {}
    for lineno, line in read_lines(path):
        parts = line.strip().split(maxsplit=1)
        if len(parts) < min(fields, 2) or (fields > 1 and len(parts[1].split()) < fields - 1):
            raise CorpusError(f"{path}:{lineno}: expected {fields} fields (key value...), got {line.strip()!r}")
        if unique and first.setdefault(parts[0], lineno) != lineno:
            raise CorpusError(f"{path}:{lineno}: {parts[0]!r} is listed twice (first on line {first[parts[0]]})")
        out.append((lineno, parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return out


def seconds(value, what: str, where: str) -> float | None:
    """A number of seconds from a manifest field (None where absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CorpusError(f"{where}: {what} must be a number of seconds, got {json.dumps(value)[:40]}")
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise CorpusError(f"{where}: {what} must be a number of seconds, got an integer of {len(str(value))} "
                          "digits") from None


def string_field(row: dict, key: str | None, where: str, integers: bool = False) -> str:
    """row[key] as text ("" where the row has no such field or it is null, as a Hugging Face export writes a value
    not known, or key is None); CorpusError naming the field for a value of another type (an array, an object...),
    except an integer where `integers` (ids and speakers such as 1034)."""
    if key is None or row.get(key) is None:
        return ""
    value = row[key]
    if isinstance(value, str):
        return value
    if integers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    expected = "a string or an integer" if integers else "a string"
    raise CorpusError(f"{where}: {key} must be {expected}, got {json.dumps(value)[:40]}")


def first_of(columns: list[str] | dict, names: tuple[str, ...]) -> str | None:
    """The first of `names` that is one of the columns (or keys), or None."""
    return next((n for n in names if n in columns), None)
