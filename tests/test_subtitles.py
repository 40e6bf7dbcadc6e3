"""Subtitle cues from timed words, and SRT/WebVTT text that parses back to the same cues."""

from __future__ import annotations

import re

import numpy as np
import pytest

from asr.longform.subtitles import (
    Cue,
    SubtitleConfig,
    format_timestamp,
    make_cues,
    to_srt,
    to_vtt,
    wrap,
)
from asr.longform.timestamps import Word

SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[Cue]:
    cues = []
    for number, block in enumerate(text.strip("\n").split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(number), f"cue {number} is numbered {lines[0]!r}"
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, f"bad timing line {lines[1]!r}"
        cues.append(Cue(seconds(*m.groups()[:4]), seconds(*m.groups()[4:]), tuple(lines[2:])))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    header, *blocks = text.strip("\n").split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        lines = block.split("\n")
        m = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", lines[0])
        assert m, f"bad timing line {lines[0]!r}"
        cues.append(Cue(seconds(*m.groups()[:4]), seconds(*m.groups()[4:]), tuple(lines[1:])))
    return cues


def speech(n_words: int, seed: int = 0) -> list[Word]:
    """Words of 1-9 letters, 0.2-0.6 s long, with pauses of 0.05-0.3 s and one of 2 s in the middle."""
    rng = np.random.default_rng(seed)
    words, t = [], 0.5
    for i in range(n_words):
        length = rng.uniform(0.2, 0.6)
        words.append(Word("x" * int(rng.integers(1, 10)), t, t + length, 0.9))
        t += length + (2.0 if i == n_words // 2 else rng.uniform(0.05, 0.3))
    return words


def test_format_timestamp():
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(3661.5) == "01:01:01,500"
    assert format_timestamp(59.9996, ".") == "00:01:00.000"
    assert format_timestamp(100 * 3600 + 0.25) == "100:00:00,250"


def test_wrap_fills_lines_at_word_boundaries():
    assert wrap(["aaa", "bb", "c"], 6) == ["aaa bb", "c"]
    assert wrap(["a" * 50, "b"], 42) == ["a" * 50, "b"]  # a word longer than a line gets its own


def test_cues_are_readable_and_keep_every_word_in_order():
    words = speech(200)
    cfg = SubtitleConfig()
    cues = make_cues(words, cfg)
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(w.word for w in words)
    for c in cues:
        assert 1 <= len(c.lines) <= cfg.max_lines
        assert all(len(line) <= cfg.max_line_chars for line in c.lines)
        assert 0 < c.end - c.start <= cfg.max_cue_s
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))


def test_a_long_pause_starts_a_new_cue():
    words = [Word("one", 0.0, 0.3, 1.0), Word("two", 0.4, 0.7, 1.0), Word("three", 3.0, 3.4, 1.0)]
    cues = make_cues(words)
    assert [c.lines for c in cues] == [("one two",), ("three",)]
    assert cues[0].start == 0.0 and cues[0].end == pytest.approx(1.0)  # shown for min_cue_s


def test_min_cue_time_never_runs_into_the_next_cue():
    words = [Word("a", 0.0, 0.1, 1.0), Word("b", 1.3, 1.4, 1.0)]
    cues = make_cues(words, SubtitleConfig(max_gap_s=1.0, min_cue_s=2.0))
    assert cues[0].end == pytest.approx(1.3) and cues[1].end == pytest.approx(3.3)


@pytest.mark.parametrize("render, parse", [(to_srt, parse_srt), (to_vtt, parse_vtt)])
def test_srt_and_vtt_parse_back_to_the_cues(render, parse):
    cues = make_cues(speech(80, seed=1))
    parsed = parse(render(cues))
    assert len(parsed) == len(cues)
    for got, want in zip(parsed, cues):
        assert got.lines == want.lines
        assert got.start == pytest.approx(want.start, abs=5e-4) and got.end == pytest.approx(want.end, abs=5e-4)
        assert got.end > got.start


def test_no_words_no_cues():
    assert to_srt(make_cues([])) == ""
    assert to_vtt(make_cues([])) == "WEBVTT\n\n"


def test_a_cue_shorter_than_a_millisecond_still_has_an_end_after_its_start():
    (cue,) = parse_srt(to_srt([Cue(1.0, 1.0002, ("x",))]))
    assert cue.end > cue.start


def test_the_last_cue_does_not_run_past_the_end_of_the_audio():
    """A 0.572 s clip (FSDD's 7_george_3) whose word starts at 0.08 s: its cue stays up to the audio's end, not for
    min_cue_s past it (00:00:00,080 --> 00:00:01,080)."""
    words = [Word("seven", 0.08, 0.5, 0.9)]
    (cue,) = make_cues(words, end_s=0.572)
    assert (cue.start, cue.end) == (0.08, 0.572)
    assert make_cues(words)[0].end == pytest.approx(1.08)  # length unknown: min_cue_s as before
    (longer,) = make_cues(words, end_s=10.0)
    assert longer.end == pytest.approx(1.08)
    (past,) = make_cues([Word("seven", 0.08, 0.6, 0.9)], end_s=0.572)  # a word's own end is kept
    assert past.end == 0.6
