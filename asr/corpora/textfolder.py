"""A folder of audio files, each with its transcript beside it in a text file of the same name: `clip01.wav` with
`clip01.txt`, or `clip01.lab` (plain text as the Montreal Forced Aligner reads it, or HTK's "start end word" lines,
whose words are taken). Subfolders are read too, the first folder level taken for the speaker (SRC/alice/a.wav:
speaker "alice"); audio straight in SRC has no speaker. One set, "all"; ids are paths without extension ("alice/a").
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from asr.audio import CONVERT_HINT, scan_folder
from asr.corpora.rows import CorpusError, ImportSettings, Row, path_id, prepare_sets
from asr.manifest import Utterance, same_words

TRANSCRIPTS = (".txt", ".lab")  # beside the audio: one of them, or both with the same words (the .txt's kept)
HTK_LINE = re.compile(r"^\s*\d+(\.\d+)?\s+\d+(\.\d+)?\s+(?P<word>\S+)")  # start end word [score]
SILENCES = {"sil", "sp", "spn", "<s>", "</s>", "<sil>"}  # HTK labels that are no words


def transcript(path: Path) -> str:
    """The words of a transcript file: its text, or the words of HTK label lines."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{path}: cannot read it as UTF-8 text ({e})") from e
    htk = [HTK_LINE.match(line) for line in lines]
    if lines and path.suffix.lower() == ".lab" and all(htk):
        return " ".join(m["word"] for m in htk if m["word"].lower() not in SILENCES)
    return " ".join(" ".join(lines).split())


def transcript_files(audio: list[Path]) -> dict[Path, list[Path]]:
    """{an audio file's path without its extension: the transcript files beside it}, their extensions matched in any
    case (b.TXT as b.txt), a .txt before a .lab; each folder listed once."""
    found: dict[Path, list[Path]] = {}
    for folder in {path.parent for path in audio}:
        try:
            texts = [Path(e.path) for e in os.scandir(folder)
                     if Path(e.name).suffix.lower() in TRANSCRIPTS and e.is_file()]
        except OSError:
            continue  # its audio says so when read
        for path in sorted(texts, key=lambda p: (TRANSCRIPTS.index(p.suffix.lower()), p.name)):
            found.setdefault(path.with_suffix(""), []).append(path)
    return found


def has_transcripts(src: Path) -> bool:
    """Whether some audio file under SRC has a transcript beside it."""
    audio = scan_folder(src).audio[:50]
    beside = transcript_files(audio)
    return any(path.with_suffix("") in beside for path in audio)


def textfolder_row(src: Path, audio: Path, beside: dict[Path, list[Path]]) -> Row:
    found = beside.get(audio.with_suffix(""), [])
    if not found:  # a filesystem that ignores case (B.wav and b.txt) lists the names as they are stored
        found = [path for s in TRANSCRIPTS if (path := audio.with_suffix(s)).is_file()]
    parts = audio.relative_to(src).parts
    speaker = parts[0] if len(parts) > 1 else ""
    if not found:
        names = " or ".join(audio.with_suffix(s).name for s in TRANSCRIPTS)
        return Row(f"{audio} (no {names} beside it)", path_id(audio, src), audio.absolute(), "", speaker)
    texts = [transcript(path) for path in found]
    clash = ""
    other = next((i for i, text in enumerate(texts) if not same_words(texts[0], text)), None)  # "Zero." = "ZERO"
    if other is not None:
        said = " / ".join(repr(shortened(text)) for text in (texts[0], texts[other]))
        clash = f"{found[other].name} beside it says otherwise ({said}); keep one"
    return Row(f"{found[0]}:1", path_id(audio, src), audio.absolute(), texts[0], speaker, clash=clash)


def shortened(text: str, most: int = 60) -> str:
    """The text, or its words within `most` characters and "..."."""
    return text if len(text) <= most else text[:most + 1].rsplit(" ", 1)[0][:most] + "..."


def read_textfolder(src: str | Path) -> dict[str, list[Row]]:
    """{"all": a row per audio file under SRC}."""
    src = Path(src)
    if not src.is_dir():
        raise CorpusError(f"{src}: not a folder")
    scan = scan_folder(src)
    if scan.problems:
        raise CorpusError(scan.problems[0][1])
    if scan.unreadable:
        print(f"note: {src}: {len(scan.unreadable)} files in formats that cannot be read are left out "
              f"(e.g. {scan.unreadable[0]}); convert them first, e.g. {CONVERT_HINT}", file=sys.stderr)
    if scan.special:
        print(f"note: {src}: {len(scan.special)} named pipes, sockets or devices are left out (e.g. "
              f"{scan.special[0]}): not files", file=sys.stderr)
    if not scan.audio:
        raise CorpusError(f"{src}: no audio files in it")
    beside = transcript_files(scan.audio)
    return {"all": [textfolder_row(src, audio, beside) for audio in scan.audio]}


def prepare_textfolder(src: str | Path, out_dir: str | Path | None = None,
                       settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """A folder of audio with transcripts beside it as a checked manifest ({"all": utterances}), written to
    OUT_DIR/all.jsonl."""
    return prepare_sets(read_textfolder(src), Path(out_dir) if out_dir is not None else None, settings, src)
