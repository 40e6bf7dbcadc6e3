"""Mozilla Common Voice, one language as released: `clips/` (MP3) and tab-separated tables with `path` (the clip's
file name), `sentence` and `client_id` (the speaker). The sets are train.tsv, dev.tsv and test.tsv where they are
there, else validated.tsv (as "all"); `clip_durations.tsv` (clip, duration[ms]), where present, gives durations.

    client_id   path                        sentence              up_votes ...
    4f0c...     common_voice_en_1234.mp3    Turn the lights on.   2
"""

from __future__ import annotations

from pathlib import Path

from asr.corpora.rows import CorpusError, ImportSettings, Row, prepare_sets
from asr.corpora.tables import read_table
from asr.manifest import Utterance

SPLITS = ("train", "dev", "test")  # the tables read as sets, where present; else validated.tsv
DURATIONS = "clip_durations.tsv"


def tables(src: Path) -> dict[str, Path]:
    """Set name -> its table."""
    if not (src / "clips").is_dir():
        raise CorpusError(f"{src}: no clips/ folder (Common Voice: clips/ and train.tsv, dev.tsv, test.tsv)")
    found = {name: src / f"{name}.tsv" for name in SPLITS if (src / f"{name}.tsv").is_file()}
    if not found and (src / "validated.tsv").is_file():
        found = {"all": src / "validated.tsv"}
    if not found:
        raise CorpusError(f"{src}: no train.tsv, dev.tsv, test.tsv or validated.tsv")
    return found


def durations(src: Path) -> dict[str, tuple[float, str]]:
    """clip file name -> (seconds, "clip_durations.tsv:line"), from clip_durations.tsv (empty when it is not there)."""
    path = src / DURATIONS
    if not path.is_file():
        return {}
    out = {}
    for lineno, row in read_table(path, "\t", required=("clip", "duration[ms]"))[1]:
        try:
            out[row["clip"]] = (float(row["duration[ms]"]) / 1000, f"{path}:{lineno}")
        except ValueError:
            raise CorpusError(f"{path}:{lineno}: duration[ms] must be a number, got {row['duration[ms]']!r}") from None
    return out


def read_commonvoice(src: str | Path) -> dict[str, list[Row]]:
    """Set name -> the rows of its table (audio in clips/)."""
    src = Path(src)
    sets, seconds = {}, None
    for name, table in tables(src).items():
        seconds = durations(src) if seconds is None else seconds
        rows = []
        for lineno, row in read_table(table, "\t", required=("path", "sentence"))[1]:
            clip = row["path"]
            duration, extent_at = seconds.get(clip, (None, ""))
            rows.append(Row(f"{table}:{lineno}", Path(clip).stem, (src / "clips" / clip).absolute(), row["sentence"],
                            row.get("client_id", ""), duration, extent_at=extent_at))
        sets[name] = rows
    return sets


def prepare_commonvoice(src: str | Path, out_dir: str | Path | None = None,
                        settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """A Common Voice language folder as checked manifests (set name -> utterances), written to OUT_DIR/<set>.jsonl."""
    return prepare_sets(read_commonvoice(src), Path(out_dir) if out_dir is not None else None, settings, src)
