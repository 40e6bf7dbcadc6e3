"""Weights as a checkpoint stores them: fp32, fp16, or int8 with a float32 scale per row (about half of fp16)."""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "fp16", "int8")


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, ...) float weights -> int8 weights and a float32 scale per row: w ~ q * scale[row]."""
    rows = w.reshape(w.shape[0], -1)  # (rows, columns)
    scale = (rows.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (rows,)
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale.float()


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.reshape(-1, *[1] * (q.ndim - 1))


def stored_weights(state_dict: dict, precision: str) -> tuple[dict, dict]:
    """Weights as stored at `precision` ("int8": matrices per-row int8, the rest fp16), and the int8 scales."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    weights, scales = {}, {}
    for name, v in state_dict.items():
        v = v.detach().cpu()
        if precision == "int8" and v.is_floating_point() and v.ndim >= 2:
            weights[name], scales[name] = quantize_int8(v.float())
        elif precision != "fp32" and v.is_floating_point():
            weights[name] = v.half()
        else:
            weights[name] = v
    return weights, scales
