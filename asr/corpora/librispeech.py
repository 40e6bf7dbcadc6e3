"""LibriSpeech in its original layout: <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac and one
<speaker>-<chapter>.trans.txt per chapter ("<utterance-id> TRANSCRIPT" lines). SRC is a split folder (a set named
after it) or the folder holding the split folders (LibriSpeech/: a set each). Transcripts are kept as they are (upper
case); durations come from the FLAC headers, chapters read in parallel processes. recipes/librispeech/prepare.py
reads the corpus with read_split too.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from asr.audio import AudioError, audio_duration
from asr.corpora.rows import CorpusError, ImportSettings
from asr.corpora.tables import read_lines
from asr.manifest import (MIN_DURATION_S, Utterance, control_character, holds_duration, lossy_text_note, spells_nothing,
                          write_manifests)


def read_chapter(chapter_dir: Path) -> list[Utterance]:
    """Utterances of one <speaker>/<chapter> folder, in the order of its transcript file."""
    speaker, chapter = chapter_dir.parent.name, chapter_dir.name
    trans = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    if not trans.is_file():
        raise CorpusError(f"{trans}: transcript file missing")
    utts, seen = [], {}
    for lineno, line in read_lines(trans):
        utt_id, _, text = line.strip().partition(" ")
        if not utt_id.startswith(f"{speaker}-{chapter}-") or not text.strip():
            raise CorpusError(f"{trans}:{lineno}: expected '{speaker}-{chapter}-NNNN TRANSCRIPT', "
                              f"got {line.strip()!r}")
        if control := control_character(text):
            raise CorpusError(f"{trans}:{lineno}: transcript for {utt_id!r} holds a control character ({control!r})")
        if spells_nothing(text):
            raise CorpusError(f"{trans}:{lineno}: transcript for {utt_id!r} holds no word the vocabulary can spell "
                              f"({text.strip()[:40]!r})")
        if utt_id in seen:
            raise CorpusError(f"{trans}:{lineno}: duplicate id {utt_id!r} (also line {seen[utt_id]})")
        seen[utt_id] = lineno
        audio = chapter_dir / f"{utt_id}.flac"
        if not audio.is_file():
            raise CorpusError(f"{trans}:{lineno}: {audio.name} is listed but not there")
        try:
            seconds = audio_duration(audio)
        except AudioError as e:
            raise CorpusError(f"{trans}:{lineno}: {e}") from e
        if not holds_duration(seconds):
            raise CorpusError(f"{trans}:{lineno}: {audio} lasts {seconds:.4f} s, shorter than "
                              f"{MIN_DURATION_S * 1000:g} ms")
        utts.append(Utterance(utt_id, str(audio.resolve()), seconds, text.strip(), speaker))
    return utts


def chapters_of(split_dir: Path) -> list[Path]:
    """The split's <speaker>/<chapter> folders, in (speaker, chapter) order."""
    return sorted((d for d in split_dir.glob("*/*") if d.is_dir()), key=lambda d: (d.parent.name, d.name))


def read_split(split_dir: Path, workers: int) -> list[Utterance]:
    """All utterances of a split folder, chapters read by `workers` processes, in (speaker, chapter) order."""
    if not split_dir.is_dir():
        raise CorpusError(f"{split_dir}: no such folder (download and extract the split first)")
    chapters = chapters_of(split_dir)
    if not chapters:
        raise CorpusError(f"{split_dir}: no <speaker>/<chapter> folders")
    if workers <= 1:
        per_chapter = [read_chapter(d) for d in chapters]
    else:
        with ProcessPoolExecutor(workers) as pool:
            chunk = max(1, len(chapters) // (8 * workers))
            per_chapter = list(pool.map(read_chapter, chapters, chunksize=chunk))
    return [u for utts in per_chapter for u in utts]


def is_split(folder: Path) -> bool:
    return any(folder.glob("*/*/*.trans.txt"))


def corpus_root(src: Path) -> Path:
    """SRC, or SRC/LibriSpeech where SRC holds no split but that folder (as the corpus's tarballs extract) does."""
    inner = src / "LibriSpeech"
    if inner.is_dir() and not is_split(src) and not any(is_split(d) for d in src.iterdir() if d.is_dir()):
        return inner
    return src


def split_folders(src: Path) -> dict[str, Path]:
    """Set name -> split folder: SRC itself, or its folders that are splits (SRC/LibriSpeech's: corpus_root)."""
    if is_split(src):
        return {src.name: src}
    src = corpus_root(src) if src.is_dir() else src
    found = {d.name: d for d in sorted(src.iterdir()) if d.is_dir() and is_split(d)} if src.is_dir() else {}
    if not found:
        raise CorpusError(f"{src}: no LibriSpeech split in it (<speaker>/<chapter>/<speaker>-<chapter>.trans.txt)")
    return found


def prepare_librispeech(src: str | Path, out_dir: str | Path | None = None,
                        settings: ImportSettings = ImportSettings()) -> dict[str, list[Utterance]]:
    """LibriSpeech split(s) at `src` as manifests (split name -> utterances), written to OUT_DIR/<split>.jsonl;
    chapters are read by up to settings.workers processes (no more than the cores)."""
    workers = min(settings.workers, os.cpu_count() or 1)
    sets = {name: read_split(folder, workers) for name, folder in split_folders(Path(src)).items()}
    for name, utts in sets.items():
        note = lossy_text_note(utts, name)
        if note:
            print(note, file=sys.stderr)
    if out_dir is not None:  # every set, and those a split makes of one (settings.more_sets), or none
        more = settings.more_sets(sets) if settings.more_sets is not None else {}
        write_manifests({Path(out_dir) / f"{name}.jsonl": utts for name, utts in {**sets, **more}.items()})
    return sets
