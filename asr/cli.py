"""What the doors (asr.transcribe, asr.evaluate, asr.train, asr.lm) share: a --help formatter that shows
defaults, typed argparse values that refuse out-of-range input with argparse's one line (exit 2, naming the
flag), --device, --threads and --backend, and an output folder checked before any work. Imports no door."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

from asr.checkpoint import BACKENDS
from asr.manifest import replace_files
from asr.stdio import stdout_guarded  # noqa: F401 (the doors' import of it)

__all__ = ["Formatter", "OutputError", "add_backend_flag", "add_runtime_flags", "apply_threads", "default_threads",
           "device", "epochs_to_average", "finite_float", "fraction_below_one", "non_negative_float",
           "non_negative_int", "positive_float", "positive_int", "prepare_output_dir", "probability", "progress_bar",
           "speed_factor", "stdout_guarded", "thread_count", "usable_cores", "workers_or_auto", "write_whole"]

FEW_CORES = 2  # on this many usable cores or fewer, transcribe and evaluate run torch on one thread by default
# --threads at most MAX_THREADS_PER_CORE a usable core, and never less than MIN_THREADS_CAP: past any use, and torch's
# OpenMP crashes where it cannot make them (--threads 100000: a segfault)
MAX_THREADS_PER_CORE = 4
MIN_THREADS_CAP = 64


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help with each flag's default, the description and epilog as written; not for a help that says its
    default in words, a default of None (a flag whose help says what happens without it) or a switch."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action.default, bool) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def finite_float(text: str) -> float:
    """A float that is not nan or inf."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


def positive_float(text: str) -> float:
    """A finite float > 0."""
    x = finite_float(text)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return x


def non_negative_float(text: str) -> float:
    """A finite float >= 0."""
    x = finite_float(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return x


def _in_unit_interval(text: str, expected: str) -> float:
    """A float in [0, 1]; ArgumentTypeError saying `expected` otherwise."""
    x = finite_float(text)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return x


def probability(text: str) -> float:
    """A float in [0, 1]."""
    return _in_unit_interval(text, "a probability in [0, 1]")


def unit_interval(text: str) -> float:
    """A float in [0, 1], e.g. a weight decay."""
    return _in_unit_interval(text, "a number in [0, 1]")


def learning_rate(text: str) -> float:
    """A learning rate in (0, 1]: AdamW moves every weight by about lr a step, so past 1 a step outgrows the weights
    (and past float32's range torch failed with a traceback)."""
    x = positive_float(text)
    if x > 1:
        raise argparse.ArgumentTypeError(f"expected a learning rate in (0, 1], got {text!r}")
    return x


def lr_ratio(text: str) -> float:
    """A ratio in [0, 1]: where the decay ends, at or below the peak."""
    return _in_unit_interval(text, "a ratio in [0, 1] (the decay ends at or below the peak)")


def fraction_below_one(text: str) -> float:
    """A float in [0, 1), e.g. a dropout rate."""
    x = finite_float(text)
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return x


def _whole_number_at_least(text: str, low: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < low:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}")
    return n


def positive_int(text: str) -> int:
    """An int >= 1."""
    return _whole_number_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An int >= 0."""
    return _whole_number_at_least(text, 0)


def epochs_to_average(text: str) -> int:
    """0 (no averaging) or N >= 2 epochs: the mean of one epoch's weights is that epoch."""
    n = non_negative_int(text)
    if n == 1:
        raise argparse.ArgumentTypeError(f"expected 0 (none) or N >= 2 epochs, got {text!r}")
    return n


def speed_factor(text: str) -> float:
    """A speed or VTLP factor F, 0.5 < F <= 2: the audio played F times as fast, or its formants F times as high
    (a voice still a voice)."""
    x = finite_float(text)
    if not 0.5 < x <= 2:
        raise argparse.ArgumentTypeError(f"expected a factor in (0.5, 2], got {text!r}")
    return x


def workers_or_auto(text: str) -> str | int:
    """--num-workers: "auto" or a whole number >= 0."""
    return "auto" if text == "auto" else non_negative_int(text)


DEVICES = "cpu, cuda, cuda:N or mps"


def thread_count(text: str) -> int:
    """A whole number of threads >= 1, at most MAX_THREADS_PER_CORE a usable core (or MIN_THREADS_CAP)."""
    n, cores = positive_int(text), usable_cores()
    if n > (cap := max(MIN_THREADS_CAP, MAX_THREADS_PER_CORE * cores)):
        raise argparse.ArgumentTypeError(f"expected at most {cap} ({MAX_THREADS_PER_CORE} a usable core, {cores} "
                                         f"here), got {text!r}")
    return n


def device(text: str) -> str:
    """A torch device name that this machine has: cpu, cuda, cuda:N (N < the number of CUDA devices) or mps."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", text):
        raise argparse.ArgumentTypeError(f"expected {DEVICES}, got {text!r}")
    if text.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(text.split(":")[1]) if ":" in text else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available here (use --device cpu)")
        if index >= count:
            raise argparse.ArgumentTypeError(f"{text}: there are only {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if text == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError("mps: no Apple MPS device is available here (use --device cpu)")
    return text


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Torch threads where --threads is left out (transcribe, evaluate): 1 on FEW_CORES usable cores or fewer, where
    a second thread fights whatever else runs (beside another job one thread measured several times faster, idle
    not much slower: README, bench/transcribe_speed.py); else torch's own choice, at most the usable cores."""
    cores = usable_cores()
    return 1 if cores <= FEW_CORES else min(torch.get_num_threads(), cores)


def add_runtime_flags(p: argparse.ArgumentParser, default_device: str = "cpu", threads_default: str = "") -> None:
    """--device (checked against this machine when parsed) and --threads (`threads_default`: what the default is,
    in words, where it is not default_threads())."""
    p.add_argument("--device", type=device, default=default_device, help=f"where the model runs: {DEVICES}")
    default = threads_default or (f"from the usable cores: 1 on {FEW_CORES} or fewer, else what torch picks, at most "
                                  f"the cores; here {default_threads()}")
    p.add_argument("--threads", type=thread_count, metavar="N",
                   help=f"CPU threads for torch's operations (default: {default})")


def add_backend_flag(p: argparse.ArgumentParser) -> None:
    """--backend: what runs the acoustic model (asr.checkpoint.load_recognizer's backend)."""
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="what runs the acoustic model: torch, or onnx (ONNX Runtime; give --model OUT.onnx, "
                        "made by python -m asr.export --onnx OUT.onnx)")


def apply_threads(threads: int | None) -> None:
    """torch.set_num_threads(threads), and as many inter-op threads where torch still allows it; None: leave torch's."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only allowed once, before any inter-op work: the intra-op setting is the one that counts
        pass


def torch_beside_onnx(backend: str) -> None:
    """The CLI doors' thread layout once a model is loaded: with --backend onnx, ONNX Runtime runs the model on the
    threads torch had, and what torch still does (features, the decoders' glue) takes one thread, since a torch
    OpenMP pool spinning between ONNX Runtime's calls slows its threads (AN4 test end to end at batch 1, 2
    threads, bench/onnx_speed.py: 204x -> 233x real time). A server does not: its streams run on torch."""
    if backend == "onnx":
        torch.set_num_threads(1)


class OutputError(ValueError):
    """An output folder that cannot be written; the message names it."""


def prepare_output_dir(path: str | Path, flag: str) -> Path:
    """Create the folder if missing and check that a file can be written in it, before any work; raises
    OutputError naming flag and path when a file is in the way, or it cannot be created or written to."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{flag} {path}: cannot create the folder ({e.strerror or e})") from e
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise OutputError(f"{flag} {path}: cannot write there ({e.strerror or e})") from e
    return path


def write_whole(files: dict[Path, str]) -> None:
    """Write each text to its path, all whole or none at all (asr.manifest.replace_files): OutputError naming the path
    that fails (a folder in the way, a full disk); then no file there before is touched, and no temporary file is
    left."""
    try:
        replace_files(files)
    except OSError as e:
        raise OutputError(f"{e.filename}: cannot be written ({e.strerror or e})") from None


def progress_bar(total_s: float, desc: str, quiet: bool = False):
    """A tqdm bar over `total_s` seconds of audio on stderr, as the doors show their progress; silent (a no-op
    that still takes update() and write()) with `quiet` or where stderr is not a terminal."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=round(total_s, 1), unit="s", desc=desc, file=sys.stderr, disable=disable, leave=False,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")
