"""Tiny corpora written by the tests of asr.corpora: short generated WAVs, and each importable layout written
from a list of Utterances (our manifest -> its format), so that an import can be compared with what was written."""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data import Utterance

TEXTS = ["zero", "one two", "three", "four five six", "seven", "eight nine"]
SPEAKERS = ["alice", "bob", "carol"]


def write_tone(path: Path, seconds: float, rate: int = 16000, channels: int = 1) -> Path:
    """A quiet tone of `seconds` as 16-bit PCM WAV (FLAC by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.1 * np.sin(2 * np.pi * 220 * t)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate, subtype="PCM_16")
    return path


def utterances(root: Path, n: int = 6, suffix: str = ".wav") -> list[Utterance]:
    """n utterances of three speakers, their audio written under root/audio/<speaker>/ (0.3-0.8 s)."""
    utts = []
    for i in range(n):
        speaker = SPEAKERS[i % len(SPEAKERS)]
        seconds = 0.3 + 0.1 * i
        audio = write_tone(root / "audio" / speaker / f"{speaker}-{i:03d}{suffix}", seconds)
        utts.append(Utterance(f"{speaker}-{i:03d}", str(audio), seconds, TEXTS[i % len(TEXTS)], speaker))
    return utts


def key(u: Utterance) -> tuple:
    """What an import must give back whatever its id conventions: audio, duration (ms), text, speaker."""
    return (str(Path(u.audio).resolve()), round(u.duration, 2), u.text, u.speaker)


def as_audiofolder(utts: list[Utterance], root: Path, jsonl: bool = False) -> Path:
    rows = [{"file_name": str(Path(u.audio).relative_to(root)), "transcription": u.text, "speaker": u.speaker}
            for u in utts]
    if jsonl:
        (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with open(root / "metadata.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["file_name", "transcription", "speaker"])
            writer.writeheader()
            writer.writerows(rows)
    return root


def as_nemo(utts: list[Utterance], root: Path) -> Path:
    path = root / "train_manifest.json"
    path.write_text("".join(json.dumps({"audio_filepath": str(Path(u.audio).relative_to(root)), "duration": u.duration,
                                        "text": u.text, "speaker": u.speaker}) + "\n" for u in utts))
    return path


def as_lhotse(utts: list[Utterance], root: Path, rate: int = 16000) -> Path:
    recs = [{"id": f"rec-{u.id}", "sources": [{"type": "file", "channels": [0], "source": u.audio}],
             "sampling_rate": rate, "num_samples": int(u.duration * rate), "duration": u.duration, "channel_ids": [0]}
            for u in utts]
    sups = [{"id": u.id, "recording_id": f"rec-{u.id}", "start": 0.0, "duration": u.duration, "channel": 0,
             "text": u.text, "language": "English", "speaker": u.speaker} for u in utts]
    for name, rows in (("recordings", recs), ("supervisions", sups)):
        with gzip.open(root / f"tiny_{name}_train.jsonl.gz", "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return root


def as_kaldi(utts: list[Utterance], data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    (data / "wav.scp").write_text("".join(f"{u.id} {u.audio}\n" for u in utts))
    (data / "text").write_text("".join(f"{u.id} {u.text}\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u.id} {u.speaker}\n" for u in utts))
    return data


def as_commonvoice(utts: list[Utterance], root: Path) -> Path:
    """clips/ (the WAVs moved there) and train.tsv; clip_durations.tsv for all but the first clip."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    lines, durations = ["client_id\tpath\tsentence\tup_votes"], ["clip\tduration[ms]"]
    for u in utts:
        clip = Path(u.audio).rename(root / "clips" / Path(u.audio).name)
        lines.append(f"{u.speaker}\t{clip.name}\t{u.text}\t2")
        durations.append(f"{clip.name}\t{round(u.duration * 1000)}")
    (root / "train.tsv").write_text("\n".join(lines) + "\n")
    (root / "clip_durations.tsv").write_text("\n".join(durations[:1] + durations[2:]) + "\n")
    return root


def moved(utts: list[Utterance], root: Path) -> list[Utterance]:
    """The utterances with their audio where as_commonvoice moved it."""
    return [replace(u, audio=str(root / "clips" / Path(u.audio).name)) for u in utts]


def as_textfolder(utts: list[Utterance], root: Path) -> Path:
    """A .txt beside each file (an HTK .lab beside the last)."""
    for u in utts[:-1]:
        Path(u.audio).with_suffix(".txt").write_text(u.text + "\n")
    last = utts[-1]
    lab = "".join(f"{i * 100} {(i + 1) * 100} {w}\n" for i, w in enumerate(["sil", *last.text.split(), "sil"]))
    Path(last.audio).with_suffix(".lab").write_text(lab)
    return root / "audio"


def as_librispeech(root: Path, speakers: dict[str, list[str]]) -> tuple[Path, list[Utterance]]:
    """<root>/dev-clean/<speaker>/7/<speaker>-7-NNNN.flac and the chapters' trans.txt; (split folder, utterances)."""
    split, utts = root / "dev-clean", []
    for speaker, texts in speakers.items():
        chapter = split / speaker / "7"
        lines = []
        for i, text in enumerate(texts):
            uid = f"{speaker}-7-{i:04d}"
            audio = write_tone(chapter / f"{uid}.flac", 0.4 + 0.1 * i)
            utts.append(Utterance(uid, str(audio.resolve()), 0.4 + 0.1 * i, text, speaker))
            lines.append(f"{uid} {text}")
        (chapter / f"{speaker}-7.trans.txt").write_text("\n".join(lines) + "\n")
    return split, utts
