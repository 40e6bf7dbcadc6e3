"""The utterances a run trains and validates on, and what it says about the rest: the training set drops what
it cannot learn from (missing audio, audio longer than a batch holds, a transcript empty after normalisation, one
too long for its audio under CTC), the dev set what it cannot decode (missing audio); each says so in one line
with counts, reasons and the first few ids. An empty or entirely unusable set, or a dev reference that normalises
to nothing (it would score as an infinite or undefined WER), raises ManifestError naming the file."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch

from asr.audio import SAMPLE_RATE, AudioError, audio_info
from asr.data import MISSING, ManifestError, Utterance, drop_line, lossy_text_note, named, read_manifest
from asr.features import num_frames
from asr.model import subsampled_lengths
from asr.text import Vocab, normalize_text

UNREADABLE = "whose audio cannot be read"  # a drop_line reason
SPEED_FACTORS = (0.9, 1.0, 1.1)  # speed perturbation; a factor f plays the audio f times as fast (duration / f)

EMPTY = "with an empty transcript once normalised"
TOO_LONG = "whose transcript is too long for its audio"


def ctc_feasible(utt: Utterance, vocab: Vocab, fastest_speed: float = max(SPEED_FACTORS)) -> bool:
    """Whether the model's output frames can hold the transcript when the audio is played fastest_speed times as
    fast (its duration divided by it): CTC needs one frame per token plus a blank between repeated tokens."""
    ids = vocab.encode(utt.text)
    needed = len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))
    frames = num_frames(int(utt.duration / fastest_speed * SAMPLE_RATE))
    return len(ids) > 0 and int(subsampled_lengths(torch.tensor(frames))) >= needed


def training_set(utts: list[Utterance], vocab: Vocab, name: str, fastest_speed: float = max(SPEED_FACTORS),
                 batch_seconds: float = math.inf) -> tuple[list[Utterance], str | None]:
    """(the utterances to train on, the line saying what was dropped, or None): those whose audio exists, lasts
    no longer than a batch holds (batch_seconds: one longer would be a batch of its own, as large as it is, and
    may not fit in memory), and whose transcript fits CTC at the fastest speed the audio is trained at. Raises
    ManifestError if none is left."""
    missing, over_batch, empty, too_long, kept = [], [], [], [], []
    for u in utts:  # one pass, one stat and one encoding an utterance (LibriSpeech has 281k)
        if not Path(u.audio).is_file():
            missing.append(u)
        elif u.duration > batch_seconds:
            over_batch.append(u)
        elif not vocab.encode(u.text):
            empty.append(u)
        else:
            (kept if ctc_feasible(u, vocab, fastest_speed) else too_long).append(u)
    over = f"longer than --batch-seconds {batch_seconds:g}"
    dropped = {MISSING: missing, over: over_batch, EMPTY: empty, TOO_LONG: too_long}
    line = drop_line(name, len(utts), len(kept), dropped)
    if not utts:
        raise ManifestError(f"{name}: no utterances (the manifest is empty)")
    if not kept:
        raise ManifestError(f"{name}: no usable utterances ({line.split(', dropped ', 1)[1]})")
    return kept, line


def dev_set(utts: list[Utterance], name: str) -> tuple[list[Utterance], str | None]:
    """(the dev utterances to validate on, the line saying what was dropped, or None): those whose audio exists and
    whose header can be read (found now, not when dev is first decoded after an epoch). Raises ManifestError for an
    empty set, one without audio, or references that normalise to nothing."""
    if not utts:
        raise ManifestError(f"{name}: no utterances: the dev set chooses best.pt, it needs at least one")
    empty = [u for u in utts if not normalize_text(u.text)]
    if empty:
        raise ManifestError(f"{name}: dev references empty once normalised: {len(empty)} of {len(utts)} ({named(empty)}; "
                            f"{empty[0].text!r}); their WER is undefined: give them words or remove them")
    kept, missing, bad, reasons = [], [], [], []
    for u in utts:
        if not Path(u.audio).is_file():
            missing.append(u)
        elif reason := header_problem(u.audio):
            bad.append(u)
            reasons.append(reason)
        else:
            kept.append(u)
    line = drop_line(name, len(utts), len(kept), {MISSING: missing, UNREADABLE: bad})
    if reasons:
        line += f"; {reasons[0]}"
    if not kept:
        raise ManifestError(f"{name}: no usable utterances ({line.split(', dropped ', 1)[1]})")
    return kept, line


def header_problem(audio: str) -> str | None:
    """Why the audio file's header cannot be read (AudioError's message), or None when it can."""
    try:
        audio_info(audio)
    except AudioError as e:
        return str(e)
    return None


def usable_utterances(utts: list[Utterance], vocab: Vocab, name: str, quiet: bool = False,
                      fastest_speed: float = max(SPEED_FACTORS)) -> list[Utterance]:
    """training_set's utterances, its line printed on stderr unless quiet."""
    kept, line = training_set(utts, vocab, name, fastest_speed)
    if line and not quiet:
        print(line, file=sys.stderr)
    return kept


def trained_on(dev_utts: list[Utterance], train_utts: list[Utterance], dev: str, train: str) -> str | None:
    """The warning when dev utterances' audio files (however their paths are written) are in another manifest's
    training set: best.pt would be chosen on what the run learns from, a leak the command line does not show;
    None when dev is apart, or is the training manifest itself (a check that a tiny set can be learnt, as typed)."""
    if os.path.realpath(dev) == os.path.realpath(train):
        return None
    training = {os.path.realpath(u.audio) for u in train_utts}
    shared = [u for u in dev_utts if os.path.realpath(u.audio) in training]
    if not shared:
        return None
    return (f"warning: {dev}: {len(shared)} of {len(dev_utts)} dev utterances' audio is in {train} too "
            f"({named(shared)}): best.pt is chosen on what the run trains on; hold them out of --train")


def read_sets(train: str, dev: str, vocab: Vocab, fastest_speed: float, batch_seconds: float,
              say: bool) -> tuple[list, list]:
    """(training utterances, dev utterances) of the two manifests, as training_set and dev_set choose them. Once
    both are found usable, and if `say` (rank 0), prints on stderr what each set dropped and which of its
    transcripts lose characters the vocabulary cannot spell (asr.data.lossy_text_note)."""
    train_utts, dev_utts = read_manifest(train), read_manifest(dev)
    kept_train, train_line = training_set(train_utts, vocab, train, fastest_speed, batch_seconds)
    kept_dev, dev_line = dev_set(dev_utts, dev)
    lines = (train_line, lossy_text_note(train_utts, train), dev_line, lossy_text_note(dev_utts, dev),
             trained_on(kept_dev, kept_train, dev, train) if say else None)  # (a path resolved per utterance)
    for line in lines if say else ():
        if line:
            print(line, file=sys.stderr)
    return kept_train, kept_dev
