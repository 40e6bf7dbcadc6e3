"""Kaldi data directories: `wav.scp` (recording -> audio file), `text` (utterance -> transcript), optionally
`segments` (utterance -> recording, start and end in s; end -1: to the end; cut to files of their own) and `utt2spk`
(utterance -> speaker). SRC is one data directory (set "all") or a folder of them (data/train, data/test: a set
each, named by its folder). Piped commands in wav.scp (`sph2pipe -f wav a.sph |`) and archive offsets (`a.ark:12`)
are refused with a message: write the audio to files first. Recordings (or segments) without a line in text are
left out, with a note. Relative paths are read from the current folder (Kaldi
recipes run from s5/), or else from the data directory or the folder two above it (s5/ for s5/data/train).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from asr.corpora.rows import CorpusError, ImportSettings, Row, prepare_sets, resolve
from asr.corpora.tables import read_kaldi
from asr.manifest import Utterance

Recording = tuple[Path, str]  # (audio file, "wav.scp:line" listing it)
ARCHIVE = re.compile(r"\.(ark|scp)(:\d+)?(\[[^\]]*\])?$")  # a.ark:123, a.ark:123[0:100]: not an audio file


def is_data_dir(path: Path) -> bool:
    return (path / "wav.scp").is_file() and (path / "text").is_file()


def data_dirs(src: Path) -> dict[str, Path]:
    """Set name -> data directory: SRC itself ("all"), or its folders that are data directories."""
    if is_data_dir(src):
        return {"all": src}
    found = {d.name: d for d in sorted(src.iterdir()) if d.is_dir() and is_data_dir(d)} if src.is_dir() else {}
    if not found:
        raise CorpusError(f"{src}: not a Kaldi data directory (wav.scp and text), nor a folder of them")
    return found


def audio_files(data: Path) -> dict[str, Recording]:
    """wav.scp's recording -> (audio file, "wav.scp:line"); piped commands and archives raise CorpusError naming
    the line."""
    out = {}
    for lineno, reco, value in read_kaldi(data / "wav.scp", unique=True):
        where = f"{data / 'wav.scp'}:{lineno}"
        if value.endswith("|"):
            command = value[:-1].strip()
            raise CorpusError(f"{where}: recording {reco!r} is a piped command ({command!r}); only audio files are "
                              f"read: write its audio to a file first (e.g. {command} > {shlex.quote(reco + '.wav')})"
                              f" and list the file")
        if ARCHIVE.search(value):
            raise CorpusError(f"{where}: recording {reco!r} is in an archive ({value!r}); only audio files are read")
        out[reco] = (resolve(Path.cwd(), value, data, data.parent.parent), where)
    return out


Segment = tuple[Recording, float, float | None, str]  # (its recording, start s, duration s or None, "segments:line")


def segment_table(data: Path, recordings: dict[str, Recording]) -> dict[str, Segment]:
    """segments' utterance -> (its recording, start s, duration s or None for "to the end", "segments:line")."""
    out = {}
    for lineno, utt, value in read_kaldi(data / "segments", fields=4, unique=True):
        where = f"{data / 'segments'}:{lineno}"
        reco, start, end = value.split()[:3]
        if reco not in recordings:
            raise CorpusError(f"{where}: recording {reco!r} is not in wav.scp")
        try:
            a, b = float(start), float(end)
        except ValueError:
            raise CorpusError(f"{where}: start and end must be seconds, got {start!r} {end!r}") from None
        if not 0 <= a < float("inf") or (b != -1 and not a < b < float("inf")):
            raise CorpusError(f"{where}: segment {utt!r} must start at 0 s or later and end after it (or at -1: the "
                              f"recording's end), got {start} {end}")
        out[utt] = (recordings[reco], a, None if b == -1 else b - a, where)
    return out


def read_data_dir(data: Path) -> list[Row]:
    """The rows of one data directory, in the order of its text file."""
    recordings = audio_files(data)
    segments = segment_table(data, recordings) if (data / "segments").is_file() else None
    speakers = {u: s for _, u, s in read_kaldi(data / "utt2spk", unique=True)} if (data / "utt2spk").is_file() else {}
    rows = []
    for lineno, utt, text in read_kaldi(data / "text", fields=1):
        where = f"{data / 'text'}:{lineno}"
        if segments is not None:
            if utt not in segments:
                raise CorpusError(f"{where}: utterance {utt!r} has no line in segments")
            (audio, audio_at), start, duration, extent_at = segments[utt]
            rows.append(Row(where, utt, audio, text, speakers.get(utt, ""), duration, start, extent_at=extent_at,
                            audio_at=audio_at))
        elif utt not in recordings:
            raise CorpusError(f"{where}: utterance {utt!r} is not in wav.scp (without a segments file, an utterance "
                              f"is a whole recording, under the same id)")
        else:
            audio, audio_at = recordings[utt]
            rows.append(Row(where, utt, audio, text, speakers.get(utt, ""), audio_at=audio_at))
    listing, listed, what = (("segments", segments, "utterances") if segments is not None
                             else ("wav.scp", recordings, "recordings"))
    told = {row.id for row in rows}
    untold = [utt for utt in listed if utt not in told]
    if untold:  # as Kaldi's fix_data_dir.sh would drop them, but said
        print(f"note: {data / listing}: {len(untold)} of {len(listed)} {what} {'has' if len(untold) == 1 else 'have'} "
              f"no line in text (e.g. {untold[0]!r}), so no transcript: not imported", file=sys.stderr)
    return rows


def read_kaldi_dirs(src: str | Path) -> dict[str, list[Row]]:
    """Set name -> the rows of its data directory."""
    return {name: read_data_dir(d) for name, d in data_dirs(Path(src)).items()}


def prepare_kaldi(src: str | Path, out_dir: str | Path | None = None,
                  settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """Kaldi data director(ies) at `src` as checked manifests (set name -> utterances), written to OUT_DIR/<set>.jsonl;
    segments are cut into OUT_DIR/segments/<set>/."""
    return prepare_sets(read_kaldi_dirs(src), Path(out_dir) if out_dir is not None else None, settings, src)
