"""Golden outputs: what the shipped models (asr/assets/an4.pt, an4_stream.pt) compute on the five clips in
tests/data/an4: greedy transcripts and a checksum of the log-probs, measured once and written here.

A change to the model's computation (the LC-BLSTM's windows, the front end, the features, loading the int8
weights) moves these numbers even where a streaming-versus-whole-file comparison cannot see it, since both
sides run the same code. After a deliberate change (a retrained model, new features), regenerate them with
    PYTHONPATH=. python tests/test_golden.py
and paste its output over GOLDEN, saying in the commit why they moved.

Tolerance: the int8 (an4_stream.pt) and fp16 (an4.pt) weights are turned into float32 on loading, so the sums
run in float32 whatever the CPU's kernels (AVX2, AVX-512, NEON) and thread count. Measured: 1, 2 and 4 threads give identical log-probs,
and a clip alone or padded in a batch moves a clip's mean log-prob by 3e-7. MEAN_TOL is 1000 times that and
still 10 times below the smallest change of a broken LC-BLSTM (the right context read from a zero state moves
a clip's mean by 0.01 and more; carrying its state on to the next chunk by 0.03 to 0.8).
"""

from __future__ import annotations

import pytest
import torch

from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL, load_model
from asr.data import read_manifest
from asr.decoding import greedy_decode
from asr.recognizer import utterance_log_probs
from conftest import CLIPS_DIR

MEAN_TOL = 1e-3  # on a clip's mean log-prob (-13.5 to -19.6)
SQUARE_TOL = 1e-2  # on a clip's mean squared log-prob (200 to 420): the same relative tolerance

# model file -> clip id -> (greedy transcript, mean of the (T, V) log-probs, mean of their squares), 4 decimals
GOLDEN = {
    DEFAULT_MODEL.name: {
        "an406-fcaw-b": ("rubout g n e f three nine", -17.1404, 326.3171),
        "an437-mjgm-b": ("e b v j ninety four", -16.5248, 302.1184),
        "an440-mjgm-b": ("stop", -17.9183, 347.7595),
        "cen4-fcaw-b": ("m e l v i n", -19.5586, 415.9579),
        "cen7-mjgm-b": ("six eight three three oh seven five", -15.3215, 261.2860),
    },
    DEFAULT_STREAM_MODEL.name: {
        "an406-fcaw-b": ("rubout g n e f three nine", -16.9639, 320.6737),
        "an437-mjgm-b": ("e b v j ninety four", -16.6380, 305.8620),
        "an440-mjgm-b": ("stop", -18.2361, 360.7111),
        "cen4-fcaw-b": ("m e l v i n", -19.7462, 423.6933),
        "cen7-mjgm-b": ("six eight three three o seven five", -15.5495, 268.9164),
    },
}


def measure(model_path) -> dict[str, tuple[str, float, float]]:
    """clip id -> (greedy transcript, mean log-prob, mean squared log-prob) of the model on the five clips."""
    rec = load_model(model_path)
    clips = read_manifest(CLIPS_DIR / "clips.jsonl")
    out = {}
    for u, lp in zip(clips, utterance_log_probs(rec, clips)):  # (T, V) each
        text = greedy_decode(lp[None], torch.tensor([len(lp)]), rec.vocab)[0]
        lp = lp.double()
        out[u.id] = (text, lp.mean().item(), lp.square().mean().item())
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model_path", [DEFAULT_MODEL, DEFAULT_STREAM_MODEL], ids=lambda p: p.name)
def test_the_shipped_models_compute_what_they_computed(model_path, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = measure(model_path)
    finally:
        torch.set_num_threads(previous)
    golden = GOLDEN[model_path.name]
    assert {k: text for k, (text, _, _) in got.items()} == {k: text for k, (text, _, _) in golden.items()}
    for clip, (_, mean, square) in golden.items():
        assert got[clip][1] == pytest.approx(mean, abs=MEAN_TOL), clip
        assert got[clip][2] == pytest.approx(square, abs=SQUARE_TOL), clip


if __name__ == "__main__":  # prints GOLDEN as measured now (see the module docstring)
    print("GOLDEN = {")
    for path in (DEFAULT_MODEL, DEFAULT_STREAM_MODEL):
        print(f"    {'DEFAULT_MODEL' if path == DEFAULT_MODEL else 'DEFAULT_STREAM_MODEL'}.name: {{")
        for clip, (text, mean, square) in measure(path).items():
            print(f'        "{clip}": ("{text}", {mean:.4f}, {square:.4f}),')
        print("    },")
    print("}")
