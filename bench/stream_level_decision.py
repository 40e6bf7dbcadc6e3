"""How well a live stream could decide v1's level guard early: for each clip of a manifest, played G dB louder,
whether file mode's level guard brings it up (asr.features.level_guard, from the whole clip) against what a stream
could tell within W seconds of its first speech frame (a 10 ms frame 20 dB over the quietest tenth heard so far,
digital silence left out): "at AN4's levels" when 3 or more frames of that window reach T dBFS.

    python bench/stream_level_decision.py [--manifest manifests/an4/test.jsonl] [--gains 0,-20,-30]
        [--windows 0.2,0.3,0.5] [--thresholds -34.4,-37,-40]

Prints, per window and threshold, how many clips the early decision gets wrong against file mode at each gain: a
stream guard deciding this way would bring up (or leave) those clips unlike file mode. No model is run.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _manifests import require_manifests, run_main

from asr.audio import load_audio
from asr.audio.energy import SILENCE_DB, frame_energies_db
from asr.data import read_manifest
from asr.features import guard_gain, speech_level_db

SPEECH_DB = 20.0  # dB over the quietest tenth of the frames heard so far (digital silence aside): a speech frame
IN_RANGE_FRAMES = 3  # frames at the threshold or louder within the window: the stream is at AN4's levels


def first_speech_frame(energies: np.ndarray) -> int | None:
    """The first 10 ms frame SPEECH_DB over the quietest tenth of the sounding frames up to it (causal), or None."""
    for t in range(len(energies)):
        heard = energies[: t + 1]
        heard = heard[heard > SILENCE_DB + 1.0]
        if len(heard) and energies[t] >= np.percentile(heard, 10) + SPEECH_DB:
            return t
    return None


def clips_at(utts, gain_db: float) -> list[tuple[bool, np.ndarray, int | None]]:
    """Per clip: (file mode brings it up or down, its frame energies, its first speech frame)."""
    out = []
    for u in utts:
        x = load_audio(u.audio) * np.float32(10 ** (gain_db / 20))
        energies = frame_energies_db(x)
        out.append((guard_gain(speech_level_db(x)) != 1.0, energies, first_speech_frame(energies)))
    return out


def wrong(clips, window_s: float, threshold_db: float) -> int:
    """Clips whose early decision differs from file mode's (no speech frame found: counted as left as it is)."""
    n = 0
    for guarded, energies, start in clips:
        window = energies[start : start + round(window_s * 100)] if start is not None else energies
        in_range = start is None or int((window >= threshold_db).sum()) >= IN_RANGE_FRAMES
        n += guarded == in_range
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--gains", default="0,-20,-30", help="dB, comma-separated")
    p.add_argument("--windows", default="0.2,0.3,0.5", help="seconds after the first speech frame, comma-separated")
    p.add_argument("--thresholds", default="-34.4,-37,-40", help="dBFS, comma-separated")
    args = p.parse_args(argv)
    require_manifests(args.manifest)
    utts = read_manifest(args.manifest)
    gains = [float(g) for g in args.gains.split(",")]
    by_gain = {g: clips_at(utts, g) for g in gains}
    shown = " / ".join(f"{g:g} dB" for g in gains)
    print(f"{len(utts)} clips; clips decided unlike file mode's level guard, at {shown}")
    print("| window (s) | threshold (dBFS) | " + " | ".join(f"{g:g} dB" for g in gains) + " |")
    print("|---:|---:|" + "---:|" * len(gains))
    for window in (float(w) for w in args.windows.split(",")):
        for threshold in (float(t) for t in args.thresholds.split(",")):
            cells = " | ".join(str(wrong(by_gain[g], window, threshold)) for g in gains)
            print(f"| {window:g} | {threshold:g} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
