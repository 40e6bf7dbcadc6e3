"""What a live stream costs per packet: the endpointer's speech threshold and the features' window are not
recomputed from scratch for every packet, and give what recomputing them would."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from asr.audio.energy import ENERGY_FRAME, ENERGY_FRAME_SECONDS, frame_energies_db
from asr.longform.segment import speech_threshold_from
from asr.streaming import EndpointConfig, Endpointer, FeatureStream
from asr.streaming.endpoint import THRESHOLD_EVERY


def talk(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with tone bursts of changing level and length (speech and pauses, as the endpointer hears them)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * 16000)).astype(np.float32) * 1e-3
    at = 0
    while at < len(x):
        n = int(rng.uniform(0.2, 1.5) * 16000)
        x[at : at + n] += (rng.uniform(0.01, 0.5) * np.sin(np.arange(len(x[at : at + n])) / 3)).astype(np.float32)
        at += n + int(rng.uniform(0.3, 2.0) * 16000)
    return x


def reference_thresholds(x: np.ndarray, cfg: EndpointConfig) -> list[float]:
    """The threshold at every frame as the endpointer renewed it before: np.percentile over the history (of the
    energies it hears speech in: without DC and hum)."""
    history = deque(maxlen=round(cfg.history_s / ENERGY_FRAME_SECONDS))
    out, threshold = [], np.inf
    whole = x[: len(x) // ENERGY_FRAME * ENERGY_FRAME]
    for frame, energy in enumerate(frame_energies_db(whole, highpass=True).tolist(), 1):
        history.append(energy)
        if frame % THRESHOLD_EVERY == 1 or len(history) < THRESHOLD_EVERY:
            values = np.fromiter(history, np.float32, len(history))
            seg = cfg.segment
            levels = (float(np.percentile(values, q)) for q in (seg.speech_percentile, seg.floor_percentile))
            threshold = speech_threshold_from(*levels, cfg.segment)
        out.append(threshold)
    return out


def test_the_endpointer_renews_its_threshold_without_a_percentile_over_the_history(monkeypatch):
    cfg = EndpointConfig(history_s=5.0)  # 500 frames: 30 s of audio renews it long after the history is full
    x = talk(30.0)
    expected = reference_thresholds(x, cfg)
    calls = []
    monkeypatch.setattr(np, "percentile", lambda *a, **k: calls.append(1))  # none may be needed
    endpointer, got, ends = Endpointer(cfg), [], []
    original = endpointer._is_speech

    def noted(energy: float) -> bool:
        speech = original(energy)
        got.append(endpointer.threshold)
        return speech

    endpointer._is_speech = noted
    for i in range(0, len(x), 1600):  # 100 ms packets
        ends += endpointer.accept(x[i : i + 1600])
    assert calls == [] and len(got) == len(expected) == 3000
    assert got == expected  # exactly: the same float32 arithmetic as np.percentile
    assert len(ends) >= 5, ends


def test_a_feature_stream_makes_its_window_once(clips_frontend, monkeypatch):
    made = []
    original = torch.hann_window
    monkeypatch.setattr(torch, "hann_window", lambda *a, **k: made.append(1) or original(*a, **k))
    stream = FeatureStream(clips_frontend)
    x = talk(4.0, seed=1)
    frames = [stream.accept(x[i : i + 640]) for i in range(0, len(x), 640)]  # 40 ms packets
    assert sum(f.shape[0] for f in frames) >= 390 and len(made) <= 1
