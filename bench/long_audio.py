"""Long recordings: accuracy, word timing, memory and speed of the long-file path of `transcribe`.

    nice -n 19 python bench/long_audio.py [--model asr/assets/an4.pt] [--minutes 10] [--tile 6] [--no-hour] [--threads 1]

Builds a recording by joining AN4 test utterances (manifests/an4/test.jsonl, seeded order, cycled to
--minutes) with seeded silences of --pause 0.8 2.5 s between them, and writes it, with where each utterance
lies, to a temporary folder. Parts 1-3 decode as `transcribe` does by default: what the model recommends (the
shipped model: beam search + its word LM); --decoder, --lm, --beam-size, --alpha, --beta override it. Then:
  1. WER of the long-file transcript (words given to utterances by time) vs each utterance transcribed
     on its own: the long-file path should lose at most 0.5 points absolute.
  2. Timing: for each utterance, is the first word's start and the last word's end within 0.2 s of
     where its speech starts and ends? Speech in a clip: from the first to the last 10 ms frame whose
     RMS (25 ms window) is within 30 dB of the clip's loudest, counting only runs of at least 50 ms
     (AN4 clips often begin with a click). Also reported against the clip's edges, which include the
     0.1-0.4 s of silence recorded around the speech. The utterances outside 0.2 s are listed with their
     signed errors: in seven AN4 test clips this measure takes a click and breath 0.1-0.65 s before the
     first word (60-150 ms, 17-28 dB below the clip's loudest, no harmonics) for the start of the speech.
  3. Clips back to back (--join N, default 12; 0 skips it): the test utterances in groups of N consecutive
     clips, each group joined without gaps into one file (12 AN4 clips: about 50 s, where the pauses
     between utterances are only the clips' own 0.1-0.4 s of recorded silence). WER of the joined files
     (words given to clips by time) vs the clips one by one, and where the segmenter cut (between the
     segments' kept parts): how many cuts fall inside a clip's speech (speech_extent), and how many clip
     edges lie inside a segment. --overlap S decodes every meeting of two segments S s into each other.
  4. The recording tiled --tile times (an hour by default) and the recording itself, each transcribed by
     `python -m asr.transcribe` in a child process: its peak RSS (getrusage(RUSAGE_CHILDREN).ru_maxrss,
     read in a small go-between process) and wall seconds per audio second (imports and model load
     included). Target: peak RSS < 1.5 GB, no slower per audio second.
Prints `name=value` lines; the last is the headline: the long file's WER minus the utterances' one by one
(points; target <= 0.5; the timing target, timing_within_0.2s_fraction >= 0.95, is printed with part 2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.cli import apply_threads, positive_float, positive_int
from asr.decoding import Decoder, add_decoding_flags, decoding_config
from asr.data import read_manifest
from asr.longform import PipelineConfig, transcribe_paths
from asr.longform.segment import SegmentConfig, file_segments
from asr.metrics import wer
from asr.text import normalize_text

from _manifests import require_manifests, run_main  # bench/_manifests.py

TOLERANCE_S = 0.2


def speech_extent(wave: np.ndarray, top_db: float = 30.0, min_run: int = 5) -> tuple[float, float]:
    """(start, end) seconds of the speech in a clip: frames within top_db of the loudest, in runs of at
    least min_run 10 ms frames."""
    import librosa

    rms = librosa.feature.rms(y=wave, frame_length=400, hop_length=160)[0]  # (F,) centred frames
    loud = 20 * np.log10(rms + 1e-10) > 20 * np.log10(rms.max() + 1e-10) - top_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_run] or [(0, len(loud))]
    return runs[0][0] * 0.01, min(len(wave) / SAMPLE_RATE, runs[-1][1] * 0.01)


def build_recording(manifest: str, minutes: float, seed: int, out: Path,
                    pause: tuple[float, float] = (0.8, 2.5)) -> list[dict]:
    """Write out/long.wav: the utterances, each after a pause of uniform(*pause) seconds. Returns the utterances
    in it: id, audio, text, start/end (clip edges, s) and speech_start/speech_end (s, the clip's speech_extent)."""
    utts = read_manifest(manifest)
    rng = np.random.default_rng(seed)
    pieces, placed, t = [], [], 0.0
    order = []
    while t < minutes * 60:
        for i in rng.permutation(len(utts)):
            if t >= minutes * 60:
                break
            gap = rng.uniform(*pause)
            wave = load_audio(utts[i].audio)
            lo, hi = speech_extent(wave)
            start = t + gap
            pieces += [np.zeros(round(gap * SAMPLE_RATE), np.float32), wave]
            placed.append({"id": utts[i].id, "audio": utts[i].audio, "text": normalize_text(utts[i].text),
                           "start": start, "end": start + len(wave) / SAMPLE_RATE,
                           "speech_start": start + lo, "speech_end": start + hi})
            order.append(i)
            t = start + len(wave) / SAMPLE_RATE
    pieces.append(np.zeros(SAMPLE_RATE, np.float32))  # one second of silence at the end
    sf.write(out / "long.wav", np.concatenate(pieces), SAMPLE_RATE, subtype="PCM_16")
    (out / "utterances.json").write_text(json.dumps(placed, indent=1))
    return placed


def assign_words(segments: list[dict], utts: list[dict]) -> list[list[dict]]:
    """Give each word of the segments to the utterance whose stretch (clip edges, out to the middle of the
    gaps) holds its centre."""
    bounds = [(a["end"] + b["start"]) / 2 for a, b in zip(utts, utts[1:])]
    out: list[list[dict]] = [[] for _ in utts]
    for w in (w for seg in segments for w in seg["words"]):
        out[int(np.searchsorted(bounds, (w["start"] + w["end"]) / 2))].append(w)
    return out


def timing_errors(per_utt: list[list[dict]], utts: list[dict], start_key: str, end_key: str) -> np.ndarray:
    """(n, 2) |first word start - utterance start|, |last word end - utterance end| for utterances with words."""
    return np.array([[abs(ws[0]["start"] - u[start_key]), abs(ws[-1]["end"] - u[end_key])]
                     for ws, u in zip(per_utt, utts) if ws])


# Runs a command and reports its wall seconds, CPU seconds and peak RSS (KB). It is a small process of its
# own because a child's ru_maxrss counts the parent's pages it was forked with, and this script holds a
# model and audio.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run_child(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run a command; returns (wall seconds, CPU seconds, peak RSS in MB, its stdout)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    wall, cpu, max_rss_kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), float(cpu), float(max_rss_kb) / 1024, proc.stdout  # ru_maxrss is in KB on Linux


def accuracy_and_timing(model: str, work: Path, utts: list[dict], decoding: argparse.Namespace) -> float:
    """Parts 1 and 2, in this process; returns the long file's WER minus the utterances' one by one (points)."""
    rec = load_model(model)
    decoder = Decoder(decoding_config(decoding, rec.metadata, model), rec.vocab)
    seconds = sf.info(str(work / "long.wav")).duration
    t0 = time.perf_counter()
    (long_result,) = transcribe_paths(rec, [str(work / "long.wav")], decoder=decoder)
    long_seconds = time.perf_counter() - t0
    per_utt = assign_words(long_result.to_dict()["segments"], utts)
    alone = [r.text for r in transcribe_paths(rec, [u["audio"] for u in utts], decoder=decoder)]
    refs = [u["text"] for u in utts]
    wer_long = wer(refs, [" ".join(w["word"] for w in ws) for ws in per_utt])
    wer_alone = wer(refs, alone)
    print(f"decoding: {decoder.cfg.to_dict()}")
    print(f"long file in process: {long_seconds:.1f} s ({seconds / long_seconds:.0f}x real time), "
          f"{len(long_result.segments)} segments")
    print(f"WER: long file {wer_long:.2f}% (all words as one sequence: "
          f"{wer([' '.join(refs)], [long_result.text]):.2f}%), utterances alone {wer_alone:.2f}%")

    (unsnapped,) = transcribe_paths(rec, [str(work / "long.wav")], PipelineConfig(snap_to_speech=False), decoder)
    per_utt_unsnapped = assign_words(unsnapped.to_dict()["segments"], utts)
    speech = ("speech_start", "speech_end")
    for label, keys, words_of in (("speech", speech, per_utt),
                                  ("speech, CTC frames only (no snap_to_speech)", speech, per_utt_unsnapped),
                                  ("clip edges", ("start", "end"), per_utt)):
        err = timing_errors(words_of, utts, *keys)
        ok = (err <= TOLERANCE_S).all(axis=1).mean()
        print(f"timing vs {label}: {ok:.1%} of {len(err)} utterances with both edges within {TOLERANCE_S} s; "
              f"start error median {np.median(err[:, 0]):.3f} max {err[:, 0].max():.3f} s, "
              f"end error median {np.median(err[:, 1]):.3f} max {err[:, 1].max():.3f} s")
        if label == "speech":
            speech_ok, speech_err = ok, err
            signed = [(u["id"], ws[0]["start"] - u["speech_start"], ws[-1]["end"] - u["speech_end"])
                      for ws, u in zip(per_utt, utts) if ws]  # the order of timing_errors' rows
            outside = [f"{uid} {a:+.2f}/{b:+.2f}" for uid, a, b in signed if max(abs(a), abs(b)) > TOLERANCE_S]
            print(f"  outside {TOLERANCE_S} s (first word start - speech start / last word end - speech end, s): "
                  f"{', '.join(outside) or 'none'}")
    print(f"wer_long={wer_long:.2f}")
    print(f"wer_utterances_alone={wer_alone:.2f}")
    print(f"wer_delta_abs={abs(wer_long - wer_alone):.2f}")
    print(f"timing_within_0.2s_fraction={speech_ok:.3f}")
    print(f"timing_median_error_s={np.median(speech_err):.3f}")
    print(f"timing_max_error_s={speech_err.max():.3f}")
    return wer_long - wer_alone


def build_joined(manifest: str, join: int, out: Path) -> list[list[dict]]:
    """Write out/joined_K.wav, K = 0, 1, ...: each the next `join` utterances of the manifest back to back,
    no gaps (an incomplete last group is left out). Returns the clips of each file as build_recording does."""
    utts = read_manifest(manifest)
    groups = []
    for k in range(len(utts) // join):
        waves, placed, t = [], [], 0.0
        for u in utts[k * join : (k + 1) * join]:
            wave = load_audio(u.audio)
            lo, hi = speech_extent(wave)
            placed.append({"id": u.id, "audio": u.audio, "text": normalize_text(u.text), "start": t,
                           "end": t + len(wave) / SAMPLE_RATE, "speech_start": t + lo, "speech_end": t + hi})
            waves.append(wave)
            t = placed[-1]["end"]
        sf.write(out / f"joined_{k}.wav", np.concatenate(waves), SAMPLE_RATE, subtype="PCM_16")
        groups.append(placed)
    return groups


def cut_counts(spans: list[tuple[float, float]], clips: list[dict]) -> tuple[int, int, int]:
    """(cuts, cuts inside a clip's speech, clip edges not cut) for segment spans (s, in order) over clips back
    to back. A cut is the middle of the gap between neighbouring segments (or where they meet); a clip edge
    is not cut when no cut lies between the end of one clip's speech and the start of the next one's."""
    cuts = [(a[1] + b[0]) / 2 for a, b in zip(spans, spans[1:])]
    inside = sum(any(c["speech_start"] < cut < c["speech_end"] for c in clips) for cut in cuts)
    merged = sum(not any(a["speech_end"] <= cut <= b["speech_start"] for cut in cuts) for a, b in zip(clips, clips[1:]))
    return len(cuts), inside, merged


def joined_clips(model: str, work: Path, manifest: str, join: int, seg_cfg: SegmentConfig,
                 decoding: argparse.Namespace) -> None:
    """Part 3, in this process."""
    rec = load_model(model)
    decoder = Decoder(decoding_config(decoding, rec.metadata, model), rec.vocab)
    groups = build_joined(manifest, join, work)
    if not groups:
        print(f"part 3 skipped: {manifest} has fewer than --join {join} clips")
        return
    paths = [str(work / f"joined_{k}.wav") for k in range(len(groups))]
    results = list(transcribe_paths(rec, paths, PipelineConfig(segment=seg_cfg), decoder))
    clips = [c for group in groups for c in group]
    refs = [c["text"] for c in clips]
    joined = [" ".join(w["word"] for w in ws) for r, group in zip(results, groups)
              for ws in assign_words(r.to_dict()["segments"], group)]
    alone = [r.text for r in transcribe_paths(rec, [c["audio"] for c in clips], decoder=decoder)]
    counts = np.array([cut_counts([(s.keep_start_s, s.keep_end_s) for s in file_segments(p, seg_cfg)], group)
                       for p, group in zip(paths, groups)]).sum(0)  # (3,) over the files
    wer_joined, wer_alone = wer(refs, joined), wer(refs, alone)
    seconds = np.mean([group[-1]["end"] for group in groups])
    print(f"{len(groups)} files of {join} clips back to back (mean {seconds:.1f} s): WER {wer_joined:.2f}% "
          f"vs {wer_alone:.2f}% clip by clip; {counts[0]} cuts, {counts[1]} inside a clip's speech, "
          f"{counts[2]} of {len(clips) - len(groups)} clip edges not cut")
    print(f"join_clips={join}")
    print(f"join_files={len(groups)}")
    print(f"wer_joined={wer_joined:.2f}")
    print(f"wer_joined_clips_alone={wer_alone:.2f}")
    print(f"wer_joined_delta={wer_joined - wer_alone:.2f}")
    print(f"join_cuts={counts[0]}")
    print(f"join_cuts_inside_speech={counts[1]}")
    print(f"join_edges_not_cut={counts[2]}")


def memory_and_speed(model: str, work: Path, utts: list[dict], tile: int, threads: int | None) -> None:
    """Part 4: the recording and the recording tiled, each by the command line in a child process."""
    seconds = sf.info(str(work / "long.wav")).duration
    tiled = work / "tiled.wav"
    with sf.SoundFile(str(tiled), "w", SAMPLE_RATE, 1, subtype="PCM_16") as f:
        for _ in range(tile):  # block by block, so this script stays small too
            for block in sf.blocks(str(work / "long.wav"), blocksize=SAMPLE_RATE * 60, dtype="float32"):
                f.write(block)
    tiled_seconds = sf.info(str(tiled)).duration
    cli = [sys.executable, "-m", "asr.transcribe", "--model", model, "--format", "jsonl", "--quiet"]
    cli += ["--threads", str(threads)] if threads else []
    short_wall, short_cpu, short_rss, _ = run_child(cli + [str(work / "long.wav")])
    long_wall, long_cpu, long_rss, long_out = run_child(cli + [str(tiled)])
    refs = " ".join(u["text"] for u in utts)
    wer_tiled = wer([" ".join([refs] * tile)], [json.loads(long_out.splitlines()[0])["text"]])
    for label, wall, cpu, rss, audio in (("short", short_wall, short_cpu, short_rss, seconds),
                                         ("long", long_wall, long_cpu, long_rss, tiled_seconds)):
        print(f"child, {label}, {audio / 60:.0f} min: {wall:.1f} s wall ({wall / audio * 1000:.2f} ms per audio s), "
              f"{cpu:.1f} s CPU ({cpu / audio * 1000:.2f} ms per audio s), peak RSS {rss:.0f} MB")
    print(f"the long child's WER: {wer_tiled:.2f}% (copies after the first lie a fraction of a 10 ms frame later "
          f"than the first, which changes a few words)")
    print(f"wall_ms_per_audio_s_short={short_wall / seconds * 1000:.2f}")
    print(f"wall_ms_per_audio_s_long={long_wall / tiled_seconds * 1000:.2f}")
    print(f"cpu_ms_per_audio_s_short={short_cpu / seconds * 1000:.2f}")
    print(f"cpu_ms_per_audio_s_long={long_cpu / tiled_seconds * 1000:.2f}")
    print(f"peak_rss_mb_short={short_rss:.0f}")
    print(f"peak_rss_mb_long={long_rss:.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--minutes", type=positive_float, default=10.0, help="length of the recording built from utterances")
    p.add_argument("--pause", type=float, nargs=2, default=(0.8, 2.5), metavar=("MIN", "MAX"),
                   help="seconds of silence before each utterance: uniform between MIN and MAX")
    p.add_argument("--tile", type=int, default=6, help="the long child transcribes the recording this many times over")
    p.add_argument("--no-hour", action="store_true", help="skip the child processes (memory and speed)")
    p.add_argument("--join", type=int, default=12, help="clips per file in the back-to-back part (0: skip it)")
    p.add_argument("--overlap", type=float, default=0.0,
                   help="back-to-back part: segments that meet are decoded this far (s) into each other")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int,
                   help="torch threads, here and in part 4's children (default: what torch picks)")
    add_decoding_flags(p)
    p.add_argument("--workdir", help="where to write the recordings (default: a temporary folder)")
    args = p.parse_args()
    require_manifests(args.manifest)
    apply_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="long_audio_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        utts = build_recording(args.manifest, args.minutes, args.seed, work, tuple(args.pause))
        print(f"recording: {sf.info(str(work / 'long.wav')).duration / 60:.1f} min, {len(utts)} utterances, "
              f"pauses {args.pause[0]}-{args.pause[1]} s, in {work}")
        delta = accuracy_and_timing(args.model, work, utts, args)
        if args.join > 0:
            seg_cfg = SegmentConfig(overlap_s=args.overlap, clear_pause_s=2.0)  # 2 s: every meeting (pauses < 0.8 s)
            joined_clips(args.model, work, args.manifest, args.join, seg_cfg, args)
        if not args.no_hour:
            memory_and_speed(args.model, work, utts, args.tile, args.threads)
    print(f"wer_long_minus_alone={delta:.2f}")  # the headline, last


if __name__ == "__main__":
    sys.exit(run_main(main))
