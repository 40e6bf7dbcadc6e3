"""Rows as corpora list them, and the one check they all go through on the way in (check_rows): transcripts, ids,
audio files (their headers read against asr.audio's limits, in parallel where storage is slow), durations, segments
cut to files.

Each problem is one line naming the file and line that lists the utterance. By default the first problem stops the
import (and says how many more there are); with skip_bad the utterances at fault are dropped and counted instead.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from asr.audio import AudioError, AudioInfo, audio_info
from asr.corpora.cuts import commit_cuts, cut_segments, drop_cuts
from asr.corpora.notes import no_utterances, rates_note
from asr.corpora.output import MoreSets, read_from, segments_blocked
from asr.corpora.shared import shared_files
from asr.manifest import (MAX_DURATION_S, MIN_DURATION_S, Utterance, control_character, holds_duration, id_problem,
                          lossy_text_note, spells_nothing, write_manifests)

DURATION_SLACK_S = 0.1  # s (plus 1%): a given duration further than this from the file's is wrong
SEGMENT_SLACK_S = 0.05  # s: a segment may end this far past the end of its recording (rounded times)
READ_BATCH = 32  # audio headers read in the importing thread between looks at how long they take
SLOW_READ_S = 0.0005  # s a header: slower than this, reads wait on storage, and the rest go to threads
CHUNKS_PER_WORKER = 4  # header reads are handed to the threads in this many chunks per thread
TOO_SHORT = f"shorter than {MIN_DURATION_S * 1000:g} ms (the least a manifest holds)"


class CorpusError(Exception):
    """A corpus that is not in the layout its importer reads, or an utterance that cannot be used; the message
    starts with the file and line (or the folder) at fault."""


@dataclass(frozen=True)
class Row:
    """One utterance as a corpus lists it, before it is checked."""

    where: str  # "file:line" listing it, for the messages
    id: str
    audio: Path  # the audio file, absolute
    text: str
    speaker: str = ""  # "" where the corpus does not say
    duration: float | None = None  # s, where the corpus gives it (of the segment, for a segment)
    start: float | None = None  # s into the file for a segment of it (duration None: to its end); None: whole file
    rate: int | None = None  # Hz, where the corpus declares it: checked against the file
    rate_at: str = ""  # "file:line" declaring the rate, where that is not `where` (lhotse's recordings)
    extent_at: str = ""  # "file:line" giving the duration or segment, where not `where` (Kaldi's segments, ...)
    clash: str = ""  # transcripts of it that disagree, as the corpus reader found them (a problem, dropped by skip_bad)
    audio_at: str = ""  # "file:line" giving the audio file, where not `where` (Kaldi's wav.scp, lhotse's recordings)


@dataclass(frozen=True)
class ImportSettings:
    workers: int = min(8, 2 * (os.cpu_count() or 1))  # threads cutting segments, and reading headers where slow (probe)
    trust_durations: bool = False  # use durations the corpus gives without opening the audio (only stat it)
    skip_bad: bool = False  # drop the utterances with a problem (one warning line) instead of stopping
    more_sets: MoreSets | None = None  # sets made of the corpus's own (a split), written with them (asr.corpora.output)


@dataclass
class Problems:
    """Problems found, by reason: [(row, message)]."""

    found: dict[str, list[tuple[Row, str]]]

    def add(self, reason: str, row: Row, message: str, at: str = "") -> None:
        """A problem of `row`, said at `at` (the file and line at fault) or else where the row is listed."""
        self.found.setdefault(reason, []).append((row, f"{at or row.where}: {message}"))

    def rows(self) -> set[str]:
        return {row.where for items in self.found.values() for row, _ in items}

    def count(self) -> int:
        return sum(map(len, self.found.values()))


def first_checks(rows: list[Row], problems: Problems) -> None:
    """Transcripts that are empty or hold nothing to spell, ids used twice, audio files that are not there, bad
    durations, segments that start before their recording."""
    first: dict[str, str] = {}
    for row in rows:
        if not row.id:
            problems.add("without an id", row, "no utterance id")
        elif problem := id_problem(row.id):
            problems.add("with a bad id", row, problem)
        elif row.id in first:
            problems.add("listed twice", row, f"duplicate id {row.id!r} (first listed at {first[row.id]})")
        else:
            first[row.id] = row.where
        if row.clash:
            problems.add("whose transcripts disagree", row, row.clash)
        elif not row.text.strip():
            problems.add("with an empty transcript", row, f"empty transcript for {row.id!r}")
        elif control := control_character(row.text):
            problems.add("with a control character", row, f"transcript for {row.id!r} holds a control character "
                         f"({control!r})")
        elif spells_nothing(row.text):
            problems.add("with nothing to spell", row, f"transcript {row.text!r} for {row.id!r} holds nothing "
                         f"the vocabulary can spell (letters, apostrophes; write numbers as words)")
        if not row.audio.is_file():
            what = "is a folder, not an audio file" if row.audio.is_dir() else "no such file"
            problems.add("whose audio is missing", row, f"{row.audio}: {what}", row.audio_at)
        elif row.duration is not None and not 0 < row.duration < float("inf"):
            problems.add("with a bad duration", row, f"duration must be a positive number of seconds, got "
                         f"{row.duration}", row.extent_at)
        elif row.duration is not None and row.duration > MAX_DURATION_S:
            past = f"duration {row.duration:.4g} s is past {MAX_DURATION_S / 3600:g} h"
            problems.add("with a bad duration", row, past, row.extent_at)
        elif row.duration is not None and not holds_duration(row.duration):
            problems.add("with a bad duration", row, f"duration {row.duration:.4g} s is {TOO_SHORT}", row.extent_at)
        if row.start is not None and row.start < 0:
            problems.add("outside their audio", row, f"segment of {row.audio} starts at {row.start:.2f} s, before the "
                         f"recording", row.extent_at)


def needs_header(row: Row, settings: ImportSettings) -> bool:
    return not settings.trust_durations or row.duration is None or row.start is not None or row.rate is not None


def probe(paths: list[Path], workers: int) -> dict[Path, AudioInfo | AudioError]:
    """Each file's header (duration, rate, channels) or the AudioError saying why it cannot be read. Read in this
    thread, READ_BATCH files at a time, while they come quickly (from the page cache, threads would only contend for
    the GIL); once a batch takes over SLOW_READ_S a file (a network or cold disk), the rest go to `workers` threads."""
    def one(path: Path) -> AudioInfo | AudioError:
        try:
            return audio_info(path)
        except AudioError as e:
            return e

    def some(chunk: list[Path]) -> list[AudioInfo | AudioError]:
        return [one(path) for path in chunk]

    infos: list[AudioInfo | AudioError] = []
    while len(infos) < len(paths):
        batch = paths[len(infos):len(infos) + READ_BATCH]
        began = time.perf_counter()
        infos += some(batch)
        if workers > 1 and (time.perf_counter() - began) / len(batch) > SLOW_READ_S:
            break
    rest = paths[len(infos):]
    if rest:
        per_chunk = -(-len(rest) // (CHUNKS_PER_WORKER * workers))  # a few tasks a thread, not one a file
        chunks = [rest[i:i + per_chunk] for i in range(0, len(rest), per_chunk)]
        with ThreadPoolExecutor(workers) as pool:
            infos += [info for part in pool.map(some, chunks) for info in part]
    return dict(zip(paths, infos))


def whole_file(row: Row, info: AudioInfo | AudioError | None) -> Row:
    """The row as a whole file when it is a "segment" from 0 s that covers the file (a segment with no need to cut)."""
    if row.start is None or not 0 <= row.start <= 0.001 or not isinstance(info, AudioInfo):
        return row
    if row.duration is None or abs(row.duration - info.seconds) <= SEGMENT_SLACK_S:
        return replace(row, start=None, duration=info.seconds)
    return row


def shown_s(seconds: float) -> str:
    """Seconds as a message shows them: 2 decimals, or 3 digits of an absurd number (1e+308, not 309 digits)."""
    return f"{seconds:.2f}" if abs(seconds) < 1e6 else f"{seconds:.3g}"


def header_checks(row: Row, info: AudioInfo | AudioError, problems: Problems) -> None:
    """The file against the limits, and against what the row says of it (rate, duration, segment bounds)."""
    if isinstance(info, AudioError):
        problems.add("whose audio cannot be read", row, str(info), row.audio_at)
    elif info.seconds <= 0:
        problems.add("whose audio is empty", row, f"{row.audio}: no samples", row.audio_at)
    elif row.start is None and not holds_duration(info.seconds):
        problems.add("whose audio is empty", row, f"{row.audio}: {info.seconds:.4g} s of audio, {TOO_SHORT}",
                     row.audio_at)
    elif row.start is None and info.seconds > MAX_DURATION_S:
        problems.add("whose audio is too long", row, f"{row.audio}: {info.seconds / 3600:.3g} h of audio, past the "
                     f"{MAX_DURATION_S / 3600:g} h an utterance may last (cut it into segments)", row.audio_at)
    elif row.rate is not None and row.rate != info.sample_rate:
        said = f"{row.rate_at} says" if row.rate_at else "the corpus says"
        problems.add("at another sample rate", row, f"{row.audio}: {said} {row.rate} Hz, the file is "
                     f"{info.sample_rate} Hz")
    elif row.start is not None:
        end = info.seconds if row.duration is None else row.start + row.duration
        if row.start >= info.seconds or end > info.seconds + SEGMENT_SLACK_S or end <= row.start:
            problems.add("outside their audio", row, f"segment {row.start:.2f}-{shown_s(end)} s of {row.audio}, "
                         f"which lasts {info.seconds:.2f} s", row.extent_at)
        elif not holds_duration(min(end, info.seconds) - row.start):
            problems.add("outside their audio", row, f"segment {row.start:.4g}-{shown_s(end)} s of {row.audio} "
                         f"(which lasts {info.seconds:.2f} s) is {TOO_SHORT}", row.extent_at)
    elif row.duration is not None and abs(row.duration - info.seconds) > DURATION_SLACK_S + 0.01 * info.seconds:
        problems.add("with a wrong duration", row, f"the corpus says {row.duration:g} s, {row.audio} lasts "
                     f"{info.seconds:.2f} s", row.extent_at)


def problem_lines(name: str, total: int, problems: Problems, skip_bad: bool) -> str | None:
    """The warning line for the utterances dropped (skip_bad); raises CorpusError with the first problem otherwise."""
    if not problems.count():
        return None
    if not skip_bad:
        first = next(iter(problems.found.values()))[0][1]
        more = problems.count() - 1
        tail = f" ({more} more problem{'s' if more > 1 else ''}; --skip-bad drops such utterances)" if more else ""
        raise CorpusError(first + tail)
    parts = [f"{len(items)} {reason} (first: {items[0][1]})" for reason, items in problems.found.items()]
    kept = total - len(problems.rows())
    return f"warning: {name}: kept {kept} of {total} utterances, dropped {'; '.join(parts)}"


def check_rows(rows: list[Row], name: str, segments_dir: Path | None, settings: ImportSettings = ImportSettings(),
               pending: list[Path] | None = None) -> tuple[list[Utterance], list[str]]:
    """(the utterances, the lines to print about them: what was dropped, differing rates, lossy transcripts).
    Raises CorpusError for the first problem unless settings.skip_bad. Segments are cut into segments_dir (left under
    temporary names, added to `pending`, where that is given: cut_segments)."""
    problems = Problems({})
    first_checks(rows, problems)
    bad = problems.rows()
    wanted = sorted({r.audio for r in rows if r.where not in bad and needs_header(r, settings)})
    infos = probe(wanted, settings.workers)
    rows = [whole_file(r, infos.get(r.audio)) for r in rows]
    for row in rows:
        if row.audio in infos and row.where not in bad:
            header_checks(row, infos[row.audio], problems)
    lines = [problem_lines(name, len(rows), problems, settings.skip_bad), rates_note(name, rows, infos)]
    good = [r for r in rows if r.where not in problems.rows()]
    if any(r.start is not None for r in good) and segments_dir is None:
        raise CorpusError(f"{name}: lists segments of longer recordings; cutting them needs an output folder")
    cuts = cut_segments(good, segments_dir, settings.workers, pending) if segments_dir is not None else {}
    utts = []
    for r in good:
        info = infos.get(r.audio)
        seconds = info.seconds if isinstance(info, AudioInfo) else r.duration
        path, seconds = cuts.get(r.id, (r.audio, seconds))
        utts.append(Utterance(r.id, str(path), seconds, " ".join(r.text.split()), r.speaker))
    lines.append(lossy_text_note(utts, name))
    return utts, [line for line in lines if line]


def path_id(audio: Path, root: Path) -> str:
    """An utterance id from its audio file: the path below `root` without its extension ("spk1/clip03"), or the
    file name without extension when it lies elsewhere."""
    try:
        return audio.absolute().relative_to(root.absolute()).with_suffix("").as_posix()
    except ValueError:
        return audio.stem


def resolve(folder: Path, name: str, *others: Path) -> Path:
    """An audio path as a corpus file gives it: absolute, or relative to `folder` (the corpus file's), or else to
    the first of `others` where it exists (e.g. the current folder, as Kaldi and lhotse paths often are)."""
    if not name:
        return folder / "<no file name>"
    candidates = [(base / name).absolute() for base in (folder, *others)]
    return next((p for p in candidates if p.exists()), candidates[0])


def prepare_sets(sets: dict[str, list[Row]], out_dir: Path | None, settings: ImportSettings = ImportSettings(),
                 source: str | Path = "the corpus") -> dict[str, list[Utterance]]:
    """Each set's rows checked (check_rows; segments cut into OUT_DIR/segments/<set>/), what each drops or notes
    printed on stderr, and once all are found usable, the cuts moved into place and each set (with those that
    settings.more_sets makes of them) written to OUT_DIR/<set>.jsonl, all or none (when out_dir is given). A set
    that lists nothing is named with `source`, the corpus the sets were read from."""
    if error := shared_files(sets):
        raise CorpusError(error)
    out, pending = {}, []
    out_dir = out_dir.absolute() if out_dir is not None else None  # cut segments' paths are absolute, as all are
    files = {at.rsplit(":", 1)[0] for rows in sets.values() for row in rows
             for at in (row.where, row.rate_at, row.extent_at, row.audio_at) if at}
    if out_dir is not None and (error := read_from(list(sets), files, out_dir) or segments_blocked(sets, out_dir)):
        raise CorpusError(error)
    try:
        for name, rows in sets.items():
            where = str(out_dir / f"{name}.jsonl") if out_dir is not None else name
            segments = out_dir / "segments" / name if out_dir is not None else None
            utts, lines = check_rows(rows, where, segments, settings, pending)
            for line in lines:
                print(line, file=sys.stderr)
            if not utts:
                raise CorpusError(no_utterances(name, rows, source))
            out[name] = utts
        more = settings.more_sets(out) if settings.more_sets is not None and out_dir is not None else {}
        if more and (error := read_from(list(more), files, out_dir)):
            raise CorpusError(error)
        if out_dir is not None:  # the cuts moved into place once every manifest is written, before any replaces one
            write_manifests({out_dir / f"{name}.jsonl": utts for name, utts in {**out, **more}.items()},
                            before_renames=lambda: commit_cuts(pending))
    finally:
        drop_cuts(pending)  # what a failed import cut (commit_cuts removes them too)
    return out
