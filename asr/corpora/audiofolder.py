"""Hugging Face "audiofolder": a metadata.csv or metadata.jsonl beside the audio, whose `file_name` column gives each
file relative to it, a transcript column (transcription, text, sentence...) and optionally a speaker column; in SRC
itself (one set, "all") or in one folder per split (SRC/train/, SRC/test/...: a set each).

    SRC/metadata.csv     file_name,transcription,speaker
                         recordings/0_george_0.wav,zero,george
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from asr.audio import scan_folder
from asr.corpora.rows import CorpusError, ImportSettings, Row, path_id, prepare_sets, resolve
from asr.corpora.shared import file_key
from asr.corpora.tables import first_of, read_json_lines, read_table, string_field
from asr.manifest import Utterance

METADATA = ("metadata.csv", "metadata.jsonl")
TEXT_COLUMNS = ("transcription", "text", "sentence", "transcript", "normalized_text")  # the first one present
SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id")


def metadata_files(src: Path) -> dict[str, Path]:
    """Set name -> its metadata file: SRC's own ("all"), else those of SRC's folders (named as the folder)."""
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder (an audiofolder holds {' or '.join(METADATA)} and the audio)")
    own = [src / name for name in METADATA if (src / name).is_file()]
    if len(own) > 1:
        raise CorpusError(f"{src}: holds both {' and '.join(METADATA)}; keep one")
    if own:
        return {"all": own[0]}
    splits = {}
    for folder in sorted(d for d in src.iterdir() if d.is_dir()):
        found = [folder / name for name in METADATA if (folder / name).is_file()]
        if found:
            splits[folder.name] = found[0]
    if not splits:
        raise CorpusError(f"{src}: no {' or '.join(METADATA)} in it or in a folder of it (one per split)")
    return splits


def metadata_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a metadata file, whose columns include file_name and a transcript."""
    if path.suffix == ".csv":
        columns, rows = read_table(path, ",", required=("file_name",))
    else:
        rows = read_json_lines(path, required=("file_name",))
        columns = list(rows[0][1]) if rows else []
    if first_of(columns, TEXT_COLUMNS) is None:
        raise CorpusError(f"{path}:1: no transcript column (expected one of {', '.join(TEXT_COLUMNS)}; "
                          f"found {', '.join(columns) or 'none'})")
    return rows


def read_audiofolder(src: str | Path) -> dict[str, list[Row]]:
    """Set name -> the rows its metadata file lists (audio relative to the metadata file's folder)."""
    sets = {}
    for name, path in metadata_files(Path(src)).items():
        rows = []
        for lineno, row in metadata_rows(path):
            text_key, speaker_key = first_of(row, TEXT_COLUMNS), first_of(row, SPEAKER_COLUMNS)
            if text_key is None:
                raise CorpusError(f"{path}:{lineno}: no transcript (expected one of {', '.join(TEXT_COLUMNS)})")
            where = f"{path}:{lineno}"
            audio = resolve(path.parent, string_field(row, "file_name", where))
            uid = string_field(row, "id", where, integers=True) or path_id(audio, path.parent)
            rows.append(Row(where, uid, audio, string_field(row, text_key, where),
                            string_field(row, speaker_key, where, integers=True)))
        sets[name] = rows
        note_unlisted(path, [row.audio for row in rows])
    return sets


def note_unlisted(path: Path, audio: list[Path]) -> None:
    """A note on stderr for the audio files in the metadata file's folder that it does not list (not imported);
    `audio`: the absolute paths it lists. Paths compare as written (normalised), then as files (links)."""
    listed = {os.path.normpath(str(a)) for a in audio}
    unlisted = [a for a in scan_folder(path.parent.absolute()).audio
                if str(a) not in listed and os.path.normpath(str(a)) not in listed]
    if unlisted:  # a row may name one of them through a link
        listed_files = {file_key(a) for a in audio}
        unlisted = [a for a in unlisted if file_key(a) not in listed_files]
    if unlisted:
        count = f"{len(unlisted)} audio files in its folder are" if len(unlisted) > 1 else \
            "1 audio file in its folder is"
        print(f"note: {path}: {count} not listed in it, so not imported (e.g. "
              f"{unlisted[0].relative_to(path.parent.absolute()).as_posix()})", file=sys.stderr)


def prepare_audiofolder(src: str | Path, out_dir: str | Path | None = None,
                        settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """The audiofolder at `src` as checked manifests (set name -> utterances), written to OUT_DIR/<set>.jsonl."""
    return prepare_sets(read_audiofolder(src), Path(out_dir) if out_dir is not None else None, settings, src)
