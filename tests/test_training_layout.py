"""asr.training.layout: threads and workers from the cores, and --precision auto."""

from __future__ import annotations

import pytest
import torch

from asr.training import layout
from asr.training.layout import Layout, choose_layout, choose_precision, cpu_has_bf16


@pytest.mark.parametrize("cores, expected", [(1, Layout(1, 0)), (2, Layout(1, 1)), (3, Layout(2, 1)),
                                             (4, Layout(3, 1)), (8, Layout(6, 2)), (64, Layout(48, 16))])
def test_a_quarter_of_the_cores_compute_features_and_the_rest_train(cores, expected):
    assert choose_layout(cores, "cpu") == expected
    assert sum(vars(expected).values()) == cores  # every core used, none twice


def test_processes_on_one_machine_share_its_cores():
    assert choose_layout(8, "cpu", processes=4) == Layout(1, 1)
    assert choose_layout(2, "cpu", processes=4) == Layout(1, 0)  # fewer cores than processes: one each at least


def test_a_gpu_process_drives_it_with_one_thread_and_feeds_it_with_the_other_cores():
    assert choose_layout(16, "cuda") == Layout(1, 8)
    assert choose_layout(16, "cuda", processes=8) == Layout(1, 1)
    assert choose_layout(1, "cuda") == Layout(1, 1)


def test_nonsense_is_refused():
    with pytest.raises(ValueError, match="cores"):
        choose_layout(0, "cpu")
    with pytest.raises(ValueError, match="precision"):
        choose_precision("fp8", "cpu", 32, 1)


def test_bf16_units_are_told_by_the_cpu_flags():
    assert cpu_has_bf16({"avx2", "avx512f", "avx512_bf16"}) and cpu_has_bf16({"amx_bf16"})
    assert not cpu_has_bf16({"avx2", "avx512f", "avx512_vnni"})


def rates(fp32: float, bf16: float):
    return lambda hidden, dtype, threads: bf16 if dtype == torch.bfloat16 else fp32


def test_auto_on_a_cpu_without_bf16_is_fp32_without_measuring(monkeypatch):
    monkeypatch.setattr(layout, "cpu_flags", lambda: {"avx2", "fma"})
    never = lambda *a: pytest.fail("measured on a CPU without bf16")  # noqa: E731
    assert choose_precision("auto", "cpu", 320, 1, measure=never)[0] == "fp32"


def test_auto_on_a_cpu_with_bf16_takes_it_only_where_it_measures_faster(monkeypatch):
    monkeypatch.setattr(layout, "cpu_flags", lambda: {"avx512_bf16"})
    precision, why = choose_precision("auto", "cpu", 320, 1, measure=rates(100.0, 180.0))
    assert precision == "bf16" and "1.80x" in why
    precision, why = choose_precision("auto", "cpu", 320, 1, measure=rates(100.0, 105.0))
    assert precision == "fp32" and "1.05x" in why
    assert choose_precision("auto", "cpu", 320, 1, processes=2, measure=rates(100.0, 105.0))[0] == "bf16"


def test_what_is_asked_for_is_taken_as_asked():
    assert choose_precision("fp32", "cpu", 320, 1) == ("fp32", "as asked")
    assert choose_precision("bf16", "cpu", 320, 1) == ("bf16", "as asked")


def test_the_kernel_rate_is_measured_in_gflops():
    rate = layout.lstm_step_rate(16, torch.float32, 1, frames=20, batch=2, repeats=1)
    assert 0.001 < rate < 10_000
