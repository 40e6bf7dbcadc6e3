"""lhotse manifests: recordings and supervisions as JSON lines (plain or gzip), paired by name
(`<corpus>_recordings_<split>.jsonl.gz` with `<corpus>_supervisions_<split>.jsonl.gz`: a set each, named by the
split). A supervision is an utterance: `text`, `speaker`, and `start` + `duration` (s) in its recording; one that
covers part of a recording is cut to a file of its own. Recordings must come from files: command, URL and in-memory
sources are refused with a message, as are recordings with transforms (speed perturbation and the like).

    {"id": "r1", "sources": [{"type": "file", "channels": [0], "source": "r1.wav"}], "sampling_rate": 16000,
     "num_samples": 32000, "duration": 2.0}
    {"id": "r1-0", "recording_id": "r1", "start": 0.0, "duration": 2.0, "channel": 0, "text": "hello", "speaker": "s1"}
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.corpora.rows import CorpusError, ImportSettings, Row, prepare_sets, resolve
from asr.corpora.tables import read_json_lines, seconds, string_field
from asr.manifest import Utterance

PATTERN = re.compile(r"^(?P<before>.*)recordings(?P<after>.*)\.jsonl(\.gz)?$")


def pairs(src: Path) -> dict[str, tuple[Path, Path]]:
    """Set name -> (recordings file, supervisions file), from the files in SRC."""
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder (lhotse manifests: *recordings*.jsonl.gz with *supervisions*)")
    found = {}
    for recordings in sorted(p for p in src.iterdir() if PATTERN.match(p.name)):
        supervisions = src / recordings.name.replace("recordings", "supervisions", 1)
        if not supervisions.is_file():
            raise CorpusError(f"{recordings}: no {supervisions.name} beside it (its supervisions: the transcripts)")
        after = PATTERN.match(recordings.name)["after"].strip("_.-")
        found[after or "all"] = (recordings, supervisions)
    if not found:
        raise CorpusError(f"{src}: no lhotse recordings manifest (*recordings*.jsonl or .jsonl.gz)")
    return found


def audio_sources(path: Path) -> dict[str, tuple[list[dict], int | None, str]]:
    """Recording id -> (its file sources, its declared sample rate, "file:line")."""
    out = {}
    for lineno, rec in read_json_lines(path, required=("id", "sources")):
        where = f"{path}:{lineno}"
        rec_id = string_field(rec, "id", where, integers=True)
        if rec_id in out:  # the last would win, and an utterance get another recording's audio
            first = out[rec_id][2].rsplit(":", 1)[1]
            raise CorpusError(f"{where}: recording id {rec_id!r} again (first at line {first})")
        sources = rec["sources"] if isinstance(rec["sources"], list) else []
        if not sources or not all(isinstance(s, dict) for s in sources):
            raise CorpusError(f"{where}: recording {rec['id']!r} has no sources")
        for s in sources:
            if s.get("type") != "file":
                raise CorpusError(f"{where}: recording {rec['id']!r} comes from a {s.get('type')!r} source "
                                  f"({str(s.get('source'))[:60]!r}); only files are read: write the audio to "
                                  f"files first")
        if rec.get("transforms"):
            raise CorpusError(f"{where}: recording {rec['id']!r} has transforms (e.g. speed perturbation); "
                              f"import the recordings without them")
        rate = rec.get("sampling_rate")
        out[rec_id] = (sources, rate if isinstance(rate, int) else None, where)
    return out


def source_for(sources: list[dict], channel, where: str) -> str:
    """The file of the source holding `channel` (the first source when none says). CorpusError for a channel of a
    source that holds several: audio is read as the mean of its channels, so it would be the others' too."""
    source = next((s for s in sources if isinstance(channel, int) and channel in (s.get("channels") or [])), None)
    declared = sorted({c for s in sources if isinstance(s.get("channels"), list) for c in s["channels"]})
    if source is None and isinstance(channel, int) and declared:
        raise CorpusError(f"{where}: channel {channel} is not one of its recording's channels {declared}")
    source = source or sources[0]
    held = source.get("channels") if isinstance(source.get("channels"), list) else []
    if channel is not None and len(held) > 1:
        raise CorpusError(f"{where}: channel {channel} of a recording with channels {held}; audio is read as the mean "
                          f"of its channels: write each channel to a file of its own first")
    return str(source.get("source") or "")


def read_pair(recordings: Path, supervisions: Path) -> list[Row]:
    recs = audio_sources(recordings)
    rows = []
    for lineno, sup in read_json_lines(supervisions, required=("id", "recording_id", "start", "duration")):
        where = f"{supervisions}:{lineno}"
        rec_id = string_field(sup, "recording_id", where, integers=True)
        if rec_id not in recs:
            raise CorpusError(f"{where}: recording {sup['recording_id']!r} is not in {recordings.name}")
        sources, rate, rate_at = recs[rec_id]
        audio = resolve(recordings.parent, source_for(sources, sup.get("channel"), where), Path.cwd())
        rows.append(Row(where, string_field(sup, "id", where, integers=True), audio, string_field(sup, "text", where),
                        string_field(sup, "speaker", where, integers=True),
                        seconds(sup["duration"], "duration", where), seconds(sup["start"], "start", where), rate,
                        rate_at, audio_at=rate_at))
    return rows


def read_lhotse(src: str | Path) -> dict[str, list[Row]]:
    """Set name -> the rows of its supervisions (each in its recording)."""
    return {name: read_pair(*files) for name, files in pairs(Path(src)).items()}


def prepare_lhotse(src: str | Path, out_dir: str | Path | None = None,
                   settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """The lhotse manifests in `src` as checked manifests (set name -> utterances), written to OUT_DIR/<set>.jsonl."""
    return prepare_sets(read_lhotse(src), Path(out_dir) if out_dir is not None else None, settings, src)
