"""The files a door writes for its inputs: each input's output name, and the check that no output replaces an
input, nor a transcript of the user's own lying beside its audio (clip.txt beside clip.flac: the layout
`python -m asr.data import` reads as a corpus)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from asr.audio.samples import ONE_LINE
from asr.cli import OutputError

if TYPE_CHECKING:
    from asr.longform import Input

TRANSCRIPT_SUFFIX = ".txt"  # the text format's files, and a transcript's beside its audio
# What a field of a tab-separated line may not hold as it is, and how it is written (PostgreSQL's text COPY escapes).
TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def tsv_line(*fields: str) -> str:
    """The fields joined by tabs, each with its backslashes, tabs and line breaks written as \\\\, \\t, \\n, \\r: one
    line of len(fields) fields whatever a file name holds ("a<TAB>b.flac" -> "a\\tb.flac")."""
    return "\t".join(field.translate(TSV_ESCAPES) for field in fields)


def error_line(error: object) -> str:
    """The line "error: MESSAGE", one line whatever names the message holds: their tabs and line breaks written as
    tsv_line writes them ("new<LF>line.flac: ..." -> "new\\nline.flac: ..."); a backslash as it is, since a person
    reads this line (an ARPA file's \\data\\, a Windows path)."""
    return f"error: {str(error).translate(ONE_LINE)}"


def output_names(inputs: list[Input]) -> list[Path]:
    """Each input's output name (no suffix): its stem (with its place below a folder given), or where inputs of
    different extensions share a stem, each of them its file name (clip.mp3, clip.ogg -> clip.mp3, clip.ogg, for
    clip.mp3.json, ...: no name depends on the order given); names still the same (one file name in two
    folders) get -2, -3, ... in the order given."""
    suffixes = {inp.name: set() for inp in inputs}
    for inp in inputs:
        suffixes[inp.name].add(Path(inp.given or inp.path).suffix)
    names, used = [], set()
    for inp in inputs:
        suffix = Path(inp.given or inp.path).suffix if len(suffixes[inp.name]) > 1 else ""
        base = inp.name.with_name(inp.name.name + suffix)
        name, k = base, 1
        while name in used:
            k += 1
            name = base.with_name(f"{base.name}-{k}")
        used.add(name)
        names.append(name)
    return names


def file_key(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of a file that is there (a link or another spelling of it has the same), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_outputs(inputs: list[Input], bases: list[Path], suffixes: list[str], overwrite: bool = False) -> None:
    """OutputError unless every output BASE + SUFFIX may be written: none is an input, and none replaces a
    transcript beside its own audio input (FOLDER/NAME.txt beside FOLDER/NAME.flac) unless `overwrite`."""
    sources = [Path(inp.path) for inp in inputs if inp.error is None and inp.given is None]
    by_key = {key: path for path in sources if (key := file_key(path)) is not None}
    by_stem = {(file_key(path.parent), path.stem): path for path in sources}
    from asr.corpora.textfolder import transcript_files  # here, not at the top: 7 ms of importers, for --output-dir

    beside: dict[Path, list[Path]] | None = None  # the transcripts beside the inputs (asr.data import's rule)
    for base in bases:
        for suffix in suffixes:
            out = base.with_name(base.name + suffix)
            key = file_key(out)
            audio = by_stem.get((file_key(out.parent), out.stem)) if suffix == TRANSCRIPT_SUFFIX else None
            if key is None:
                beside = transcript_files(sources) if audio is not None and beside is None else beside
                other = [t for t in beside.get(audio.with_suffix(""), []) if t.name != out.name] if audio else []
                if other and not overwrite:
                    raise OutputError(f"{out}: a transcript beside its audio {audio} would sit beside its reference "
                                      f"{other[0]}; --overwrite writes it anyway")
                continue
            if key in by_key:
                raise OutputError(f"{by_key[key]}: an output would replace this input; use another --output-dir")
            if audio is not None and not overwrite:
                raise OutputError(f"{out}: a transcript beside its audio {audio} would be replaced; "
                                  "--overwrite replaces it")


def read_files(args) -> dict[str, str | None]:
    """The files besides the audio that a transcribe or evaluate run reads, by flag."""
    flags = {"--model": "model", "--lm": "lm", "--grammar": "grammar", "--hotwords-file": "hotwords_file",
             "--manifest": "manifest"}
    return {flag: getattr(args, name, None) for flag, name in flags.items()}


def check_not_read(outputs: list[Path], read: dict[str, str | Path | None]) -> None:
    """OutputError when an output is a file the run reads (flag -> path: --grammar, --manifest, --model...): the
    run would replace it with its report, as a link or another spelling of it would."""
    keys = {key: (flag, path) for flag, path in read.items() if path and (key := file_key(path)) is not None}
    for out in outputs:
        if (key := file_key(out)) in keys:
            flag, path = keys[key]
            raise OutputError(f"{out}: an output would replace {flag} {path}, which this run reads; use another "
                              f"folder")
