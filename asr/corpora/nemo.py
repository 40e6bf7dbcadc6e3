"""NeMo manifests: JSON lines with `audio_filepath` (absolute, or relative to the manifest's folder), `text` and
`duration` (s), optionally `offset` (s: a segment of a longer file, cut to a file of its own) and `speaker`.
SRC is one manifest (its set is named after it: train_manifest.json -> "train", manifest.json -> "all") or a
folder of them. An utterance's id is its audio's path below the manifest's folder without the extension, or the
file's name for audio elsewhere (its path below the folder they share, where files of one name lie in several).

    {"audio_filepath": "wavs/a1.wav", "duration": 2.48, "text": "turn the lights on"}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

from asr.corpora.rows import CorpusError, ImportSettings, Row, path_id, prepare_sets, resolve
from asr.corpora.tables import read_json_lines, read_lines, seconds
from asr.manifest import Utterance

REQUIRED = ("audio_filepath", "text")


def is_nemo_manifest(path: Path) -> bool:
    """Whether the file's first line is a JSON object with an audio_filepath."""
    try:
        lines = read_lines(path)
        return bool(lines) and "audio_filepath" in json.loads(lines[0][1])
    except (CorpusError, ValueError, TypeError):
        return False


def set_name(path: Path) -> str:
    """train_manifest.json -> train, manifest_dev.jsonl -> dev, manifest.json -> all."""
    name = path.name.split(".")[0]
    name = re.sub(r"(^|[_.-])manifests?($|[_.-])", r"\1\2", name).strip("_.-")
    return name or "all"


def manifest_files(src: Path) -> dict[str, Path]:
    if src.is_file():
        return {set_name(src): src}
    if not src.is_dir():
        raise CorpusError(f"{src}: no such file or folder")
    found = sorted(p for p in src.iterdir() if p.suffix in (".json", ".jsonl") and is_nemo_manifest(p))
    if not found:
        raise CorpusError(f"{src}: no NeMo manifest in it (*.json lines with audio_filepath, text, duration)")
    sets = {}
    for path in found:
        if set_name(path) in sets:
            raise CorpusError(f"{path}: its set name {set_name(path)!r} is {sets[set_name(path)].name}'s too")
        sets[set_name(path)] = path
    return sets


def nemo_row(path: Path, lineno: int, row: dict) -> Row:
    where = f"{path}:{lineno}"
    audio = resolve(path.parent, str(row["audio_filepath"] or ""))
    offset = seconds(row.get("offset"), "offset", where)
    uid = path_id(audio, path.parent) + (f"-{offset:.3f}" if offset else "")  # to the ms, as a manifest keeps time
    for field in ("text", "speaker"):
        value = row.get(field)
        if value is not None and not isinstance(value, str):
            raise CorpusError(f"{where}: {field} must be a string, got {json.dumps(value)[:40]}")
    return Row(where, uid, audio, str(row["text"] or ""), str(row.get("speaker") or ""),
               seconds(row.get("duration"), "duration", where), offset)


def distinct_ids(rows: list[Row], root: Path) -> list[Row]:
    """The rows, files of one name in different folders (outside `root`, the manifest's folder, a file's id is its
    name: path_id) told apart by their paths below the folder they share: spk1/001.wav and spk2/001.wav, not 001."""
    files: dict[str, set[str]] = {}
    for row in rows:
        files.setdefault(path_id(row.audio, root), set()).add(os.path.normpath(row.audio))
    shared = {name: Path(os.path.commonpath(list(paths))) for name, paths in files.items() if len(paths) > 1}
    if not shared:
        return rows
    out = []
    for row in rows:
        name = path_id(row.audio, root)
        out.append(replace(row, id=path_id(row.audio, shared[name]) + row.id[len(name):]) if name in shared else row)
    return out


def read_nemo(src: str | Path) -> dict[str, list[Row]]:
    """Set name -> the rows of its manifest."""
    return {name: distinct_ids([nemo_row(path, n, row) for n, row in read_json_lines(path, REQUIRED)], path.parent)
            for name, path in manifest_files(Path(src)).items()}


def prepare_nemo(src: str | Path, out_dir: str | Path | None = None,
                 settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """NeMo manifest(s) at `src` as checked manifests (set name -> utterances), written to OUT_DIR/<set>.jsonl."""
    return prepare_sets(read_nemo(src), Path(out_dir) if out_dir is not None else None, settings, src)
