"""WER of a model on AN4 test clips degraded the ways real recordings are: level, clipping, telephone,
lossy codecs, rooms and noise the model never heard in training.

    python bench/robustness.py [--model asr/assets/an4.pt] [--manifest manifests/an4/test.jsonl]
        [--noise-test manifests/an4/noise/noise_test.jsonl] [--rir-test manifests/an4/noise/rir_test.jsonl]
        [--json OUT.json] [--conditions clean,quiet_10db,...] [--decoders greedy,default]

For each condition, every clip of the manifest is degraded (seeded) and written to a temporary folder as a
file, as a recording would be; each condition's files are transcribed by one `python -m asr.transcribe`
child per decoder (greedy, and the model's default: beam search + its LM), so they go through asr's own
file reading and resampling; WER is scored with asr.metrics. Conditions:
  clean            the clips as they are
  quiet_N db       N = 10/20/30 dB quieter, 16-bit PCM WAV (a quiet recording keeps 16-bit steps)
  loud_10db        10 dB louder, clipped at full scale, 16-bit PCM WAV
  telephone        300-3400 Hz band-pass, ideal (the FFT bins outside the band zeroed), 8 kHz, 8-bit mu-law WAV.
                   The edges matter: on the v1 shipped model, greedy, this gives 44.2% WER (as measured by hand
                   before this bench), asr.augment's band_pass (cosine edges: 200-300 Hz partly kept) 33.3%,
                   a 4th-order Butterworth 30.5%. The ideal band is the one that keeps to the definition.
  mp3_32k, mp3_24k MP3, constant bitrate; opus_15k: Ogg Opus (libsndfile's in-process encoders; the
                   achieved bitrate, from the file sizes, is in the table)
  rt60_0.4s        convolved with a synthetic room: exponentially decaying Gaussian noise, 60 dB down at 0.4 s
  heldout_rooms    convolved with the held-out RIRs (recipes/an4/split_noise.py), assigned round-robin
  snr_N db         N = 20/10/5 dB SNR, held-out noise recordings round-robin, a seeded random stretch each,
                   mixed by asr.augment.mix_at_snr, as training mixes: the SNR is the clip's power on its
                   speech frames (a frame-energy VAD: the 20 ms frames within 30 dB of the 95th-percentile
                   frame) over the power of the noise stretch.
Prints a markdown table (condition | greedy WER | default WER | ratio to clean); last,
`mean_degraded_wer_greedy=<%>` (the mean over the conditions other than clean).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from _manifests import require_manifests, run_main

from asr.audio import SAMPLE_RATE, load_audio, resample
from asr.augment import Reverb, mix_at_snr, read_audio_list
from asr.checkpoint import DEFAULT_MODEL
from asr.data import read_manifest
from asr.metrics import score

SEED = 0
SPLIT_NOISE = "make it with: python recipes/an4/split_noise.py --noise ../shared/data/noise --out manifests/an4/noise"
DECODERS = {"greedy": ["--decoder", "greedy"], "default": []}  # default: what the model's metadata recommends
PHONE_BAND_HZ = (300.0, 3400.0)
PHONE_RATE = 8000
# libsndfile's compression_level picks the bitrate: MP3 (constant mode, 16 kHz = MPEG-2) steps through its
# bitrate table (0.85 -> 32 kbit/s, 0.9 -> 24); Opus (variable bitrate) aims at 6 + (1 - level) * 250 kbit/s:
# 0.97 -> 13.5, which with the Ogg headers and pages of AN4's 3-second clips makes 15.0 kbit/s of file.
MP3 = {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT"}
CODECS = {  # name -> (label, soundfile.write keywords, suffix)
    "mp3_32k": ("MP3 32 kbit/s", {**MP3, "compression_level": 0.85}, ".mp3"),
    "mp3_24k": ("MP3 24 kbit/s", {**MP3, "compression_level": 0.9}, ".mp3"),
    "opus_15k": ("Opus 15 kbit/s", {"format": "OGG", "subtype": "OPUS", "compression_level": 0.97}, ".opus"),
}
LABELS = {
    "clean": "clean", "quiet_10db": "-10 dB (16-bit)", "quiet_20db": "-20 dB (16-bit)", "quiet_30db": "-30 dB (16-bit)",
    "loud_10db": "+10 dB, clipped", "telephone": "telephone (300-3400 Hz, 8 kHz mu-law)",
    **{name: label for name, (label, _, _) in CODECS.items()},
    "rt60_0.4s": "reverb RT60 0.4 s (synthetic)", "heldout_rooms": "held-out rooms (4 RIRs)",
    "snr_20db": "held-out noise 20 dB SNR", "snr_10db": "held-out noise 10 dB SNR", "snr_5db": "held-out noise 5 dB SNR",
}


def add_noise(wave: np.ndarray, noise: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """wave + a random stretch of noise (looped if short) at `snr` dB on wave's speech frames."""
    if len(noise) < len(wave):
        noise = np.tile(noise, len(wave) // len(noise) + 1)
    start = int(rng.integers(len(noise) - len(wave) + 1))
    return mix_at_snr(wave, noise[start : start + len(wave)], snr)


def synthetic_rir(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """(N,) exponentially decaying Gaussian noise, 60 dB down (amplitude 1e-3) at rt60 seconds."""
    t = np.arange(int(1.2 * rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    rir = rng.standard_normal(len(t)) * np.exp(-np.log(1000.0) * t / rt60)
    return (rir / np.abs(rir).max()).astype(np.float32)


def telephone(wave: np.ndarray) -> np.ndarray:
    """(N,) 16 kHz -> (M,) 8 kHz after a 300-3400 Hz band-pass, within [-1, 1] for mu-law."""
    spectrum = np.fft.rfft(wave)
    freqs = np.fft.rfftfreq(wave.shape[0], 1.0 / SAMPLE_RATE)
    spectrum[(freqs < PHONE_BAND_HZ[0]) | (freqs > PHONE_BAND_HZ[1])] = 0.0
    band = np.fft.irfft(spectrum, wave.shape[0]).astype(np.float32)
    return np.clip(resample(band, SAMPLE_RATE, PHONE_RATE), -1.0, 1.0)


def make_degrader(name: str, noises: list[Path], rirs: list[Path], tmp: Path):
    """A callable (wave, clip index, rng) -> (samples, sample rate, soundfile.write keywords, suffix)."""
    pcm16, float_wav = {"subtype": "PCM_16"}, {"subtype": "FLOAT"}
    if name.startswith("quiet_"):
        gain = 10.0 ** (-float(name[6:-2]) / 20.0)
        return lambda w, i, rng: (w * gain, SAMPLE_RATE, pcm16, ".wav")
    if name == "loud_10db":
        return lambda w, i, rng: (np.clip(w * 10.0 ** 0.5, -1.0, 1.0), SAMPLE_RATE, pcm16, ".wav")
    if name == "telephone":
        return lambda w, i, rng: (telephone(w), PHONE_RATE, {"format": "WAV", "subtype": "ULAW"}, ".wav")
    if name in CODECS:
        _, kwargs, suffix = CODECS[name]
        return lambda w, i, rng: (w, SAMPLE_RATE, kwargs, suffix)
    if name in ("rt60_0.4s", "heldout_rooms"):
        if name == "rt60_0.4s":  # through a file and asr.augment.Reverb, as the held-out rooms are
            rirs = [tmp / "rt60_0.4s_rir.wav"]
            sf.write(rirs[0], synthetic_rir(0.4, np.random.default_rng(SEED)), SAMPLE_RATE, subtype="FLOAT")
        reverbs = [Reverb([path], p=1.0) for path in rirs]
        return lambda w, i, rng: (reverbs[i % len(reverbs)](w, rng), SAMPLE_RATE, float_wav, ".wav")
    if name.startswith("snr_"):
        snr, recordings = float(name[4:-2]), [load_audio(path) for path in noises]
        return lambda w, i, rng: (add_noise(w, recordings[i % len(recordings)], snr, rng), SAMPLE_RATE, float_wav, ".wav")
    raise ValueError(f"unknown condition {name!r}; known: {', '.join(LABELS)}")


def write_condition(name: str, utts, noises: list[Path], rirs: list[Path], tmp: Path) -> tuple[list[str], float | None]:
    """Each clip degraded and written as a file -> (paths, achieved kbit/s of the files or None)."""
    if name == "clean":
        return [u.audio for u in utts], None
    degrade, rng = make_degrader(name, noises, rirs, tmp), np.random.default_rng([SEED, list(LABELS).index(name)])
    folder = tmp / name
    folder.mkdir()
    paths, seconds = [], 0.0
    for i, u in enumerate(utts):
        samples, rate, kwargs, suffix = degrade(load_audio(u.audio), i, rng)
        path = folder / f"{u.id}{suffix}"
        sf.write(path, samples, rate, **kwargs)
        paths.append(str(path))
        seconds += len(samples) / rate
    kbits = sum(Path(p).stat().st_size for p in paths) * 8 / seconds / 1000.0 if name in CODECS else None
    return paths, kbits


def start_transcribe(model: str, decoder: str, paths: list[str]) -> subprocess.Popen:
    """`python -m asr.transcribe` on the files, one JSON line each, in a child (one thread: two run side by side)."""
    cmd = [sys.executable, "-m", "asr.transcribe", "--model", model, "--format", "jsonl", "--quiet", "--threads", "1",
           *DECODERS[decoder], *paths]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(proc: subprocess.Popen, paths: list[str]) -> list[str]:
    """The hypotheses of a finished child, in the order of paths; a failed file stops the bench."""
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"asr.transcribe exited with {proc.returncode}: {stderr.strip()[-2000:]}")
    texts = {}
    for line in stdout.splitlines():
        row = json.loads(line)
        if "error" in row:
            raise RuntimeError(f"asr.transcribe: {row['audio']}: {row['error']}")
        texts[row["audio"]] = row["text"]
    return [texts[p] for p in paths]


def run_condition(name: str, args, utts, noises, rirs, tmp: Path) -> dict:
    """One condition: files written, every decoder's child run at once, WER per decoder."""
    paths, kbits = write_condition(name, utts, noises, rirs, tmp)
    procs = {d: start_transcribe(args.model, d, paths) for d in args.decoders}
    row = {"condition": name, "label": LABELS[name], "kbit_s": kbits}
    for decoder, proc in procs.items():
        scored = score(utts, collect(proc, paths))
        row[decoder] = {"wer": scored["wer"], "cer": scored["cer"]}
    print(f"{name}: " + ", ".join(f"{d} WER {row[d]['wer']:.2f}%" for d in args.decoders), file=sys.stderr)
    return row


def table(rows: list[dict], decoders: list[str]) -> str:
    """Markdown: condition | WER per decoder | ratio to clean per decoder (where clean was run)."""
    clean = next((r for r in rows if r["condition"] == "clean"), None)
    lines = ["| condition | " + " | ".join(f"{d} WER %" for d in decoders) + " | ratio to clean (" + " / ".join(decoders) + ") |",
             "|---|" + "---:|" * (len(decoders) + 1)]
    for r in rows:
        label = r["label"] + (f" (achieved {r['kbit_s']:.1f} kbit/s)" if r["kbit_s"] else "")
        ratios = " / ".join(f"{r[d]['wer'] / clean[d]['wer']:.2f}" if clean and clean[d]["wer"] else "-" for d in decoders)
        lines.append(f"| {label} | " + " | ".join(f"{r[d]['wer']:.2f}" for d in decoders) + f" | {ratios} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--manifest", default="manifests/an4/test.jsonl")
    p.add_argument("--noise-test", default="manifests/an4/noise/noise_test.jsonl")
    p.add_argument("--rir-test", default="manifests/an4/noise/rir_test.jsonl")
    p.add_argument("--json", help="write the rows here as JSON")
    p.add_argument("--conditions", default=",".join(LABELS), help="comma-separated, from: " + ", ".join(LABELS))
    p.add_argument("--decoders", default="greedy,default", help="comma-separated, from: greedy, default")
    args = p.parse_args(argv)
    args.conditions, args.decoders = args.conditions.split(","), args.decoders.split(",")
    for value, known, flag in ((args.conditions, LABELS, "--conditions"), (args.decoders, DECODERS, "--decoders")):
        unknown = [v for v in value if v not in known]
        if unknown:
            p.error(f"{flag}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_manifests(args.manifest)
    need_noise = any(c.startswith("snr_") for c in args.conditions)
    require_manifests(args.noise_test if need_noise else None, args.rir_test if "heldout_rooms" in args.conditions else None,
                      how=SPLIT_NOISE)
    utts = read_manifest(args.manifest)
    noises = read_audio_list(args.noise_test) if need_noise else []
    rirs = read_audio_list(args.rir_test) if "heldout_rooms" in args.conditions else []
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_condition(name, args, utts, noises, rirs, Path(tmp)) for name in args.conditions]
    print(table(rows, args.decoders))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "manifest": args.manifest, "seed": SEED, "rows": rows},
                                              indent=2) + "\n")
    degraded = [r["greedy"]["wer"] for r in rows if r["condition"] != "clean" and "greedy" in r]
    if degraded:
        print(f"mean_degraded_wer_greedy={np.mean(degraded):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
