"""How a training process uses the machine: torch threads and DataLoader workers chosen from the cores it may
use, and the precision (fp32, or bf16 autocast where the CPU has bf16 units and a measurement says it is faster).

    layout = choose_layout(asr.cli.usable_cores(), "cpu")  # 2 cores -> Layout(threads=1, workers=1)
    precision, why = choose_precision("auto", "cpu", hidden=320, threads=layout.threads)

On 2 cores, two OpenMP threads plus the data worker oversubscribe them: with anything else running, throughput
collapses 2-5x and swings between runs, while one thread beside one worker holds (bench/train_speed.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch


PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # fp16: GPUs only (with loss scaling)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 matrix instructions
BF16_MIN_GAIN = 1.1  # auto takes bf16 on a CPU only where its LSTM step is at least this much faster


@dataclass(frozen=True)
class Layout:
    threads: int  # torch intra-op threads of the training process
    workers: int  # DataLoader processes computing features (augmentation + log-mel)


def choose_layout(cores: int, device_type: str, processes: int = 1) -> Layout:
    """Threads and workers for each of `processes` training processes sharing `cores`. On a CPU the model's step
    and the data pipeline each want cores: one worker (of about 100 audio s/s) feeds up to three training threads,
    so a quarter of the cores (at least one) compute features and the rest train; a single core does both in turn.
    On a GPU the process needs one thread to drive it, and the other cores compute features (up to 8 workers)."""
    if cores < 1 or processes < 1:
        raise ValueError(f"cores and processes must be >= 1, got {cores}, {processes}")
    share = max(1, cores // processes)
    if device_type != "cpu":
        return Layout(threads=1, workers=min(8, max(1, share - 1)))
    if share == 1:
        return Layout(threads=1, workers=0)
    workers = max(1, share // 4)
    return Layout(threads=share - workers, workers=workers)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU has bf16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    return any(f in (cpu_flags() if flags is None else flags) for f in BF16_CPU_FLAGS)


def lstm_step_rate(hidden: int, dtype: torch.dtype, threads: int | None = None, frames: int = 200, batch: int = 16,
                   repeats: int = 3) -> float:
    """GFLOP/s of one bidirectional-size LSTM layer's forward + backward (input 2 * hidden, as the model's upper
    layers) in `dtype` autocast on the CPU with `threads` threads (None: as torch is set): the kernel's own rate,
    the limit a training step can approach. The best of `repeats` timed runs after one warm-up."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        lstm = torch.nn.LSTM(2 * hidden, hidden, batch_first=True)
        x = torch.randn(batch, frames, 2 * hidden)
        best = float("inf")
        for i in range(repeats + 1):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                out, _ = lstm(x)
            out.float().sum().backward()
            if i:
                best = min(best, time.perf_counter() - start)
    finally:
        if threads is not None:
            torch.set_num_threads(previous)
    return 3 * lstm_flops(2 * hidden, hidden, batch * frames) / best / 1e9  # backward is about twice the forward


def lstm_flops(input_size: int, hidden: int, steps: int) -> float:
    """Forward FLOPs of one LSTM direction over `steps` (batch x frames) steps: 4 gates, input and recurrent."""
    return 2.0 * 4 * hidden * (input_size + hidden) * steps


def choose_precision(requested: str, device_type: str, hidden: int, threads: int | None = None, processes: int = 1,
                     measure=lstm_step_rate) -> tuple[str, str]:
    """(precision, why): `requested` unless it is "auto". On a GPU, auto is bf16 (fp16 where the GPU lacks bf16);
    on a CPU, bf16 where the CPU has bf16 units and the LSTM step measures at least BF16_MIN_GAIN faster in bf16
    (about 2 s of measuring), else fp32. With several processes (torchrun) each would measure for itself and might
    disagree, so there the CPU's bf16 units alone decide."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested != "auto":
        return requested, "as asked"
    if device_type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return ("bf16", "the GPU has bf16") if bf16 else ("fp16", "the GPU lacks bf16")
    if device_type != "cpu":
        return "fp32", f"{device_type}: fp32"
    if not cpu_has_bf16():
        return "fp32", "the CPU has no bf16 instructions (avx512_bf16 / amx_bf16)"
    if processes > 1:
        return "bf16", "the CPU has bf16 (not measured: the processes must agree)"
    fp32 = bf16 = 0.0
    for _ in range(2):  # in turns, the best of each: a busy moment then hurts both alike
        fp32 = max(fp32, measure(hidden, torch.float32, threads))
        bf16 = max(bf16, measure(hidden, torch.bfloat16, threads))
    gain = bf16 / fp32
    if gain >= BF16_MIN_GAIN:
        return "bf16", f"the CPU has bf16 and an LSTM step measured {gain:.2f}x faster in it"
    return "fp32", f"the CPU has bf16, but an LSTM step measured only {gain:.2f}x faster in it"
