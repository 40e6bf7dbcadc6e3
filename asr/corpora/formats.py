"""The layouts that can be imported, each by its prepare_* function, and telling which one a folder (or file) is in."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from asr.corpora.audiofolder import METADATA, prepare_audiofolder
from asr.corpora.commonvoice import prepare_commonvoice
from asr.corpora.kaldi import is_data_dir, prepare_kaldi
from asr.corpora.lhotse import PATTERN, prepare_lhotse
from asr.corpora.librispeech import corpus_root, is_split, prepare_librispeech
from asr.corpora.nemo import is_nemo_manifest, prepare_nemo
from asr.corpora.rows import CorpusError
from asr.corpora.textfolder import has_transcripts, prepare_textfolder

FORMATS: dict[str, tuple[Callable, str]] = {  # name -> (prepare_* function, what the layout holds)
    "audiofolder": (prepare_audiofolder, "Hugging Face audiofolder: metadata.csv or metadata.jsonl beside the audio"),
    "nemo": (prepare_nemo, "NeMo manifest(s): JSON lines with audio_filepath, duration, text"),
    "lhotse": (prepare_lhotse, "lhotse recordings + supervisions (JSON lines, plain or gzip)"),
    "kaldi": (prepare_kaldi, "Kaldi data director(ies): wav.scp and text; segments and utt2spk where there"),
    "commonvoice": (prepare_commonvoice, "Common Voice: clips/ and train/dev/test.tsv (or validated.tsv)"),
    "librispeech": (prepare_librispeech, "LibriSpeech: <split>/<speaker>/<chapter>/ with .flac and .trans.txt"),
    "textfolder": (prepare_textfolder, "a folder of audio files, each with a same-named .txt or .lab transcript"),
}


def _folders(src: Path) -> list[Path]:
    """SRC and the folders in it (where layouts with a folder per split keep their files)."""
    return [src, *sorted(d for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))]


def detect_format(src: str | Path) -> str:
    """The name of the layout SRC is in (a key of FORMATS); CorpusError saying what was looked for when none fits."""
    src = Path(src)
    if src.is_file():
        if is_nemo_manifest(src):
            return "nemo"
        raise CorpusError(f"{src}: a file that is not a NeMo manifest (JSON lines with audio_filepath); give the "
                          f"corpus folder, or --from FORMAT")
    if not src.is_dir():
        raise CorpusError(f"{src}: no such file or folder")
    folders = _folders(src)
    checks = [
        ("audiofolder", lambda: any((d / name).is_file() for d in folders for name in METADATA)),
        ("kaldi", lambda: any(is_data_dir(d) for d in folders)),
        ("lhotse", lambda: any(PATTERN.match(p.name) for p in src.iterdir())),
        ("commonvoice", lambda: (src / "clips").is_dir() and any(src.glob("*.tsv"))),
        ("nemo", lambda: any(is_nemo_manifest(p) for p in src.iterdir() if p.suffix in (".json", ".jsonl"))),
        ("librispeech", lambda: any(is_split(d) for d in folders + _folders(corpus_root(src))[1:])),
        ("textfolder", lambda: has_transcripts(src)),
    ]
    for name, found in checks:
        if found():
            return name
    raise CorpusError(f"{src}: cannot tell its layout (looked for {', '.join(METADATA)}, wav.scp + text, "
                      f"*recordings*.jsonl[.gz], clips/ + *.tsv, a NeMo *.json manifest, LibriSpeech's *.trans.txt, "
                      f"audio with same-named .txt or .lab); give --from FORMAT ({', '.join(FORMATS)})")
