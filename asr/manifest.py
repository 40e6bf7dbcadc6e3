"""Manifests: JSONL files of utterances, one a line, read and checked (read_manifest: `path:line: reason`) and
written atomically (write_manifest; several all whole or none, write_manifests); the one-line reports of what a set drops (drop_line) or cannot spell
(lossy_text_note). asr.data re-exports all of it beside the dataset; asr.corpora writes it.

A manifest has one utterance a line: {"id": str, "audio": path, "duration": seconds, "text": str} and, where the
corpus says who speaks, "speaker": str; "audio" is absolute or relative to the manifest's folder.
"""

from __future__ import annotations

import errno
import gzip
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asr.text import lost_characters, normalize_text


DURATION_DECIMALS = 3  # digits of seconds a manifest keeps (ms)
MIN_DURATION_S = 0.001  # s: the shortest utterance a manifest holds (shorter would be written as 0 s, or about it)
MAX_DURATION_S = 24 * 3600.0  # s: the longest utterance a manifest holds (past any recording; 1e308 s overflows later)


class ManifestError(Exception):
    """A manifest line is malformed; the message starts with `path:line`."""


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str  # absolute path
    duration: float  # seconds
    text: str
    speaker: str = ""  # who speaks, where the corpus says ("": not known); splits by speaker use it


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> list[dict]:
    """JSON objects, one a line; relative "audio" paths made absolute against the file's folder."""
    return [row for _, row in numbered_rows(path, required)]


def parse_json(text: str | bytes) -> object:
    """json.loads(text), with every way it can fail as ValueError and a short reason: the decoder's message and
    where, a number past Python's 4300 digits, or arrays and objects nested too deeply to parse (RecursionError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at character {e.pos}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion: ..."
        raise ValueError(str(e).split(":")[0]) from None


def json_text(obj: object, indent: int | None = None) -> str:
    """JSON with characters as they are, but for a file name's undecodable bytes (os.fsdecode's lone surrogates),
    written as \\udcXX escapes: UTF-8 that a JSON reader takes back to the same name."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return re.sub("[\udc80-\udcff]", lambda m: f"\\u{ord(m.group()):04x}", text)


def json_object(text: str, what: str) -> dict:
    """`text` (a flag's value, a manifest's line, a stream's message) parsed as a JSON object; ValueError naming
    `what` for anything else."""
    try:
        value = parse_json(text)
    except ValueError as e:
        raise ValueError(f"{what}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a JSON object, got {text[:60]!r}")
    return value


def json_objects(path: str | Path, lines: list[tuple[int, str]], required: tuple[str, ...] = (),
                 error: type[Exception] = ManifestError) -> list[tuple[int, dict]]:
    """(line number, JSON object) for each of a JSON-lines file's (line number, line); `error` ("path:line: why")
    for a line that is not a JSON object holding `required`."""
    rows = []
    for lineno, line in lines:
        try:
            row = json_object(line, f"{path}:{lineno}")
        except ValueError as e:
            raise error(str(e)) from e
        if missing := [k for k in required if k not in row]:
            raise error(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
        rows.append((lineno, row))
    return rows


def not_utf8(path: str | Path) -> str:
    """Where a file (plain or gzip) stops being UTF-8, for the error that names it: "PATH:LINE: not UTF-8 text
    (byte 0xE9 at column 4)" (a decoder's own message gives an offset in its buffer, no line)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02X} at column {e.start + 1})"
    return f"{path}: not UTF-8 text"


def numbered_rows(path: str | Path, required: tuple[str, ...] = ()) -> list[tuple[int, dict]]:
    """(line number, JSON object) for each non-blank line, checked and resolved as in read_jsonl."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a byte-order mark is dropped
    except UnicodeDecodeError:
        raise ManifestError(not_utf8(path) + "; save it as UTF-8") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read manifest ({e})") from e
    rows = json_objects(path, [(n, line) for n, line in enumerate(lines, 1) if line.strip()], required)
    for lineno, row in rows:
        if "audio" in row:
            if not isinstance(row["audio"], str) or not row["audio"]:
                raise ManifestError(f"{path}:{lineno}: \"audio\" must be a non-empty string")
            try:
                row["audio"] = str((path.parent / row["audio"]).resolve())
            except (ValueError, OSError, RuntimeError) as e:  # a NUL byte, a lone surrogate, a symlink loop
                raise ManifestError(f"{path}:{lineno}: \"audio\" is not a usable path ({e})") from e
    return rows


def id_problem(value: object) -> str | None:
    """What is wrong with an utterance id, or None: it must be a non-empty string without control characters or
    line breaks (an id is one field of a line in evaluate's hypotheses.txt)."""
    if not isinstance(value, str) or not value:
        return f"id must be a non-empty string, got {json.dumps(value)[:40]}"
    if bad := next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None):
        return f"id must hold no control character or line break, got {value[:40]!r} (holds {bad!r})"
    return None


def utterance_id(value: object, where: str) -> str:
    """A row's "id" as it is (id_problem); ManifestError naming `where` for anything else."""
    if problem := id_problem(value):
        raise ManifestError(f"{where}: {problem}")
    return value


def read_manifest(path: str | Path) -> list[Utterance]:
    """Utterances of a manifest; a malformed line, or an id used twice, raises ManifestError naming file and line."""
    utts, first_line = [], {}  # id -> the line that used it first
    for lineno, row in numbered_rows(path, required=("id", "audio", "duration", "text")):
        where = f"{path}:{lineno}"
        uid = utterance_id(row["id"], where)
        if uid in first_line:
            raise ManifestError(f"{where}: duplicate id {uid!r} (first used on line {first_line[uid]}); ids must be unique")
        first_line[uid] = lineno
        duration, text = row["duration"], row["text"]
        try:
            seconds = float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else 0.0
        except OverflowError:  # an integer too large for a float
            seconds = math.inf
        if not 0 < seconds < math.inf:
            raise ManifestError(f"{where}: duration must be a positive number, got {f'{duration!r}'[:40]}")
        if seconds > MAX_DURATION_S:
            limit = f"{MAX_DURATION_S:g} s ({MAX_DURATION_S / 3600:g} h)"
            raise ManifestError(f"{where}: duration must be at most {limit}, got {seconds:.4g}")
        if not isinstance(text, str):
            raise ManifestError(f"{where}: text must be a string, got {type(text).__name__}")
        speaker = row.get("speaker", "")
        if not isinstance(speaker, str):
            raise ManifestError(f"{where}: speaker must be a string, got {type(speaker).__name__}")
        utts.append(Utterance(uid, row["audio"], seconds, text, speaker))
    return utts


MISSING = "whose audio is missing"  # the reason drop_line gives for utterances without their audio file
SHOW = 3  # ids named per reason in a report


def named(utts: list[Utterance], show: int = SHOW) -> str:
    """The first `show` ids, "a, b, c and 4 more"."""
    more = f" and {len(utts) - show} more" if len(utts) > show else ""
    return ", ".join(u.id for u in utts[:show]) + more


def not_found(audio: str | Path) -> str:
    """Why an utterance's audio is not a file, in words: "not found", or "is a folder, not an audio file"."""
    return "is a folder, not an audio file" if Path(audio).is_dir() else "not found"


def drop_line(name: str, total: int, kept: int, dropped: dict[str, list[Utterance]]) -> str | None:
    """One line: how many of a set's utterances are kept, and how many were dropped for each reason (with the
    first ids, and for missing audio the first path); None when nothing was dropped."""
    parts = []
    for reason, utts in dropped.items():
        if utts:
            where = f"; {utts[0].audio} {not_found(utts[0].audio)}" if reason == MISSING else ""
            parts.append(f"{len(utts)} {reason} ({named(utts)}{where})")
    if not parts:
        return None
    return f"warning: {name}: kept {kept} of {total} utterances, dropped {', '.join(parts)}"


def spells_nothing(text: str) -> bool:
    """Whether a transcript holds nothing the vocabulary can spell ("...", "42", another script): nothing to learn."""
    return not normalize_text(text)


def control_character(text: str) -> str | None:
    """The first control character in a transcript that is not whitespace (NUL, BEL, DEL...), or None."""
    return next((c for c in text if unicodedata.category(c) == "Cc" and not c.isspace()), None)


def holds_duration(seconds: float) -> bool:
    """Whether an utterance of `seconds` is long enough for a manifest: MIN_DURATION_S or more, to the microsecond
    (1.001 - 1.0 is 1 ms), so that write_manifest never rounds it to the 0 s that read_manifest refuses."""
    return round(seconds, 6) >= MIN_DURATION_S


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same once normalised as training reads them ("Zero." and "ZERO" do)."""
    return normalize_text(a) == normalize_text(b)


def lossy_text_note(utts: list[Utterance], where: str, show: int = 3) -> str | None:
    """One line naming the utterances whose text loses characters the vocabulary cannot spell (digits,
    other scripts: asr.text.lost_characters), with the first `show` of them; None when no text does."""
    lossy = [(u.id, lost) for u in utts if (lost := lost_characters(u.text))]
    if not lossy:
        return None
    named = ", ".join(f"{uid} (drops {lost!r})" for uid, lost in lossy[:show])
    more = f" and {len(lossy) - show} more" if len(lossy) > show else ""
    return (f"note: {where}: {len(lossy)} of {len(utts)} transcripts lose characters the vocabulary cannot spell, "
            f"e.g. {named}{more}; write numbers as words")


def manifest_text(utts: list[Utterance]) -> str:
    """Utterances as JSONL: one JSON object a line (audio paths as given; "speaker" where known)."""
    lines = []
    for u in utts:
        row = {"id": u.id, "audio": u.audio, "duration": round(u.duration, DURATION_DECIMALS), "text": u.text}
        lines.append(json.dumps({**row, "speaker": u.speaker} if u.speaker else row) + "\n")
    return "".join(lines)


def replace_files(files: dict[Path, str], before_renames: Callable[[], None] | None = None) -> None:
    """Write each text to its path, all whole or none at all: every path checked first (a folder in the way), every
    text written to a temporary file beside its path, then each renamed over its path. OSError whose filename is the
    path that fails (a folder in the way, a full disk); then no file there before is touched, and no temporary file
    is left. before_renames() runs once every text is written (an import's cuts moved into place with them): what it
    raises leaves the files as they were too."""
    tmps = {path: path.with_name(path.name + ".tmp") for path in files}
    path = None
    try:
        for path in files:  # a rename over a folder (or a pipe) fails: found now, before any file is replaced
            if path.exists() and not path.is_file():
                kind = "folder" if path.is_dir() else "non-file"
                raise OSError(errno.EISDIR if path.is_dir() else errno.EINVAL, f"a {kind} is in its place")
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmps[path].write_text(text, encoding="utf-8", errors="surrogateescape")  # a file name's own bytes
        if before_renames is not None:
            before_renames()
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    except BaseException as e:  # OSError, or Ctrl-C part way: no temporary file is left either way
        for tmp in tmps.values():
            if tmp.is_file():
                tmp.unlink()
        if isinstance(e, OSError):
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


def write_manifests(sets: dict[Path, list[Utterance]], before_renames: Callable[[], None] | None = None) -> None:
    """Write each manifest (manifest_text), all whole or none at all (replace_files, with before_renames)."""
    replace_files({Path(path): manifest_text(utts) for path, utts in sets.items()}, before_renames)


def write_manifest(path: str | Path, utts: list[Utterance]) -> None:
    """Write utterances as JSONL (audio paths as given; "speaker" where known), atomically."""
    write_manifests({Path(path): utts})


def file_in_the_way(folder: Path) -> Path | None:
    """The first of `folder` and the folders above it that is a file, not a folder (so `folder` cannot be made or
    written in), or None. Doors that write files check their output folders with it before any work."""
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same file on disk (a link, another spelling), or the same resolved
    path (one of them not there yet). Doors that write files check their outputs against their inputs with it."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()
