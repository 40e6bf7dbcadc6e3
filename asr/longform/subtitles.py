"""Timed words -> subtitle cues of readable size -> SRT or WebVTT text.

    cues = make_cues(words)                   # words: asr.longform.Word, in time order
    Path("talk.srt").write_text(to_srt(cues))

A cue holds whole words on at most `max_lines` lines of at most `max_line_chars` characters (a longer
single word gets a line to itself), shows for at most `max_cue_s` seconds, and a pause of `max_gap_s`
between words starts a new cue. A short cue stays on screen `min_cue_s` when the next one, or the end of the audio,
allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from asr.longform.timestamps import Word


@dataclass(frozen=True)
class SubtitleConfig:
    max_line_chars: int = 42  # characters per line (the usual broadcast limit)
    max_lines: int = 2  # lines per cue
    max_cue_s: float = 7.0  # seconds a cue may span
    max_gap_s: float = 1.0  # a pause between words at least this long starts a new cue
    min_cue_s: float = 1.0  # seconds a cue stays up, if that does not run into the next cue


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float  # seconds, > start
    lines: tuple[str, ...]


def wrap(words: Sequence[str], width: int) -> list[str]:
    """Words -> lines of at most `width` characters, filled greedily; a longer word gets its own line."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def make_cues(words: Sequence[Word], cfg: SubtitleConfig = SubtitleConfig(), end_s: float | None = None) -> list[Cue]:
    """Group words (in time order) into cues, breaking only between words. end_s: the audio's length (s), which
    min_cue_s does not stretch the last cue past (None or 0: unknown)."""
    groups: list[list[Word]] = []
    for word in words:
        group = groups[-1] if groups else None
        if group and (
            word.start - group[-1].end < cfg.max_gap_s
            and word.end - group[0].start <= cfg.max_cue_s
            and len(wrap([w.word for w in group] + [word.word], cfg.max_line_chars)) <= cfg.max_lines
        ):
            group.append(word)
        else:
            groups.append([word])
    cues = []
    for i, group in enumerate(groups):
        start, end = group[0].start, group[-1].end
        next_start = groups[i + 1][0].start if i + 1 < len(groups) else (end_s or float("inf"))
        end = max(end, min(start + cfg.min_cue_s, next_start))
        cues.append(Cue(start, end, tuple(wrap([w.word for w in group], cfg.max_line_chars))))
    return cues


def format_timestamp(seconds: float, separator: str = ",") -> str:
    """Seconds -> "HH:MM:SS,mmm" (SRT) or, with separator ".", "HH:MM:SS.mmm" (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _timing(cue: Cue, separator: str) -> str:
    start_ms = max(0, round(cue.start * 1000))
    end_ms = max(start_ms + 1, round(cue.end * 1000))  # never an empty or reversed cue after rounding
    return f"{format_timestamp(start_ms / 1000, separator)} --> {format_timestamp(end_ms / 1000, separator)}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered cues from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", the lines, a blank line."""
    return "".join(f"{i}\n{_timing(cue, ',')}\n" + "\n".join(cue.lines) + "\n\n" for i, cue in enumerate(cues, 1))


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the "WEBVTT" header, then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm", the lines, a blank line."""
    return "WEBVTT\n\n" + "".join(f"{_timing(cue, '.')}\n" + "\n".join(cue.lines) + "\n\n" for cue in cues)
