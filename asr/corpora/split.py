"""Splitting one manifest into train, dev and (when asked) test: named speakers held out, or a seeded fraction of
the utterances, either as they come or as whole speakers (speaker-disjoint sets). Utterances keep their order, and
those of one audio file stay together. Speakers are told apart whatever their case ("George" is "george")."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from asr.corpora.rows import CorpusError
from asr.manifest import Utterance, named


@dataclass(frozen=True)
class SplitSettings:
    dev_speakers: tuple[str, ...] = ()  # speakers held out as dev
    test_speakers: tuple[str, ...] = ()  # speakers held out as test
    dev_fraction: float = 0.0  # about this share of what test leaves, held out as dev (0: none)
    test_fraction: float = 0.0  # about this share held out as test (0: none)
    by_speaker: bool = False  # the shares are made of whole speakers (no speaker in two sets)
    seed: int = 0  # which utterances or speakers a share takes

    def __post_init__(self):
        for name in ("dev", "test"):
            share, speakers = getattr(self, f"{name}_fraction"), getattr(self, f"{name}_speakers")
            if not 0 <= share < 1:
                raise ValueError(f"{name}_fraction must be in [0, 1), got {share}")
            if share and speakers:
                raise ValueError(f"{name}: give speakers or a fraction, not both")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        both = sorted(set(map(speaker_key, self.dev_speakers)) & set(map(speaker_key, self.test_speakers)))
        if both:
            raise ValueError(f"speaker(s) {', '.join(both)} named for both dev and test; a speaker goes in one set")

    def asks(self, name: str) -> bool:
        return bool(getattr(self, f"{name}_fraction") or getattr(self, f"{name}_speakers"))


def speaker_key(speaker: str) -> str:
    """What tells speakers apart: a name written by hand as "George" on some rows and "george " on others is one."""
    return speaker.strip().casefold()


def speakers_of(utts: list[Utterance], name: str) -> list[str]:
    """The speakers (speaker_key's), sorted; CorpusError if an utterance has none (a split by speaker cannot place
    it)."""
    unknown = [u for u in utts if not u.speaker]
    if unknown:
        raise CorpusError(f"{name}: {len(unknown)} of {len(utts)} utterances have no speaker ({named(unknown)}); "
                          f"split them by utterance instead (a fraction without --by-speaker)")
    return sorted({speaker_key(u.speaker) for u in utts})


def named_speakers(utts: list[Utterance], speakers: tuple[str, ...], name: str) -> set[str]:
    known = speakers_of(utts, name)
    missing = [s for s in speakers if speaker_key(s) not in known]
    if missing:
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise CorpusError(f"{name}: no utterances of speaker(s) {', '.join(missing)} (its speakers: {shown})")
    return set(map(speaker_key, speakers))


def share_of_speakers(utts: list[Utterance], fraction: float, rng: np.random.Generator, name: str,
                      part: str = "", of: int = 0) -> set[str]:
    """Whole speakers, taken in a seeded order where each brings the share nearer `fraction` of the utterances (at
    least one speaker, the nearest; never all of them): 0.3 of four speakers of 25% each is one of them, not two.
    `part` names the set held out, `of` the manifest's speakers where test has taken some (for the message)."""
    speakers = speakers_of(utts, name)
    if len(speakers) < 2:
        left = f" left once test is held out (of {of})" if of > len(speakers) else ""
        raise CorpusError(f"{name}: {len(speakers)} speaker(s){left}: too few to hold whole speakers out"
                          f"{' for ' + part if part else ''}; split by utterance instead (leave out --by-speaker)")
    counts = {s: sum(speaker_key(u.speaker) == s for u in utts) for s in speakers}
    chosen, total, target = set(), 0, fraction * len(utts)
    for speaker in (speakers[i] for i in rng.permutation(len(speakers))):
        if len(chosen) == len(speakers) - 1:
            break
        if abs(total + counts[speaker] - target) < abs(total - target):
            chosen.add(speaker)
            total += counts[speaker]
    return chosen or {min(speakers, key=lambda s: abs(counts[s] - target))}


def take(utts: list[Utterance], name: str, speakers: tuple[str, ...], fraction: float, by_speaker: bool,
         rng: np.random.Generator, part: str = "", of: int = 0) -> tuple[list[Utterance], list[Utterance]]:
    """(the utterances held out as `part`, the rest; `of`: the manifest's speakers, for a message)."""
    if speakers or by_speaker:
        held = (named_speakers(utts, speakers, name) if speakers
                else share_of_speakers(utts, fraction, rng, name, part, of))
        inside = [speaker_key(u.speaker) in held for u in utts]
        return [u for u, x in zip(utts, inside) if x], [u for u, x in zip(utts, inside) if not x]
    # audio file -> its number: the utterances of one file go to one side (a clip listed twice is in one set only)
    files: dict[str, int] = {}
    group = [files.setdefault(os.path.normpath(u.audio), len(files)) for u in utts]
    if len(files) < 2:
        raise CorpusError(f"{name}: all {len(utts)} utterances left are of one audio file: too few to split")
    n = min(len(files) - 1, max(1, round(fraction * len(files))))
    chosen = set(rng.permutation(len(files))[:n].tolist())
    return [u for u, g in zip(utts, group) if g in chosen], [u for u, g in zip(utts, group) if g not in chosen]


def split_utterances(utts: list[Utterance], settings: SplitSettings, name: str) -> dict[str, list[Utterance]]:
    """{"train", "dev" (when asked), "test" (when asked)}: test is held out first, dev from what is left. Raises
    CorpusError naming the manifest when a set would be empty."""
    rng = np.random.default_rng(settings.seed)
    out, rest = {}, list(utts)
    for part in ("test", "dev"):
        if settings.asks(part):
            if len(rest) < 2:
                raise CorpusError(f"{name}: {len(rest)} utterance(s) left: too few to hold out a {part} set")
            out[part], rest = take(rest, name, getattr(settings, f"{part}_speakers"),
                                   getattr(settings, f"{part}_fraction"), settings.by_speaker, rng, part,
                                   len({speaker_key(u.speaker) for u in utts}))
    if not rest:
        raise CorpusError(f"{name}: no utterances left to train on once dev and test are held out")
    return {"train": rest, **{k: out[k] for k in ("dev", "test") if k in out}}
