"""Streamed words get file mode's extents: their edges snapped to the speech around the CTC spikes (asr.streaming.
voicing), not the spikes' frames. With the shipped models on the AN4 clips (which the two modes read alike but
for a letter or two), each word starts and ends within 0.1 s of where `python -m asr.transcribe` puts it (spikes alone: 45% of AN4 test's words
are, and words last half as long)."""

from __future__ import annotations

from argparse import Namespace

import numpy as np
import pytest

from asr.audio import audio_blocks
from asr.checkpoint import DEFAULT_MODEL, DEFAULT_STREAM_MODEL, load_recognizer
from asr.decoding import Decoder, decoding_config
from asr.longform import transcribe_paths
from asr.streaming import Final, Transcriber
from asr.streaming.voicing import Voicing


def recogniser(path):
    rec = load_recognizer(str(path), "torch", "cpu")
    return rec, Decoder(decoding_config(Namespace(), rec.metadata, str(path)), rec.vocab)


def test_streamed_words_have_the_extents_file_mode_gives_them(clips):
    paths = [u.audio for u in clips]
    full, stream = recogniser(DEFAULT_MODEL), recogniser(DEFAULT_STREAM_MODEL)
    agreed, durations = [], ([], [])
    for path, result in zip(paths, transcribe_paths(full[0], paths, decoder=full[1])):
        streamed = [w for e in Transcriber(*stream).events(audio_blocks(path)) if isinstance(e, Final) for w in e.words]
        durations[0].extend(w.end - w.start for w in result.words)
        durations[1].extend(w.end - w.start for w in streamed)
        if len(streamed) == len(result.words):  # the same words, or a letter heard as another ("m" / "n")
            agreed += [(s.start - f.start, s.end - f.end) for f, s in zip(result.words, streamed)]
    assert len(agreed) == 27  # all 5 clips: 3 read alike, 2 with a letter heard otherwise
    assert np.abs(np.array(agreed)).max() <= 0.1, agreed
    assert np.mean(durations[1]) == pytest.approx(np.mean(durations[0]), rel=0.15)


def test_voicing_keeps_the_energies_of_the_utterance_only():
    voicing = Voicing(hop=160)
    tone = 0.3 * np.sin(np.arange(16000) * 0.2).astype(np.float32)
    for block in np.split(np.concatenate([np.zeros(8000, np.float32), tone]), 12):  # blocks of 2000 samples
        voicing.accept(block)
    assert voicing.voiced(0, 150).tolist() == [False] * 50 + [True] * 100  # hops of 10 ms: 0.5 s silence, 1 s tone
    voicing.forget_before(40)
    assert len(voicing.energies) == 110 and voicing.voiced(40, 60).tolist() == [False] * 10 + [True] * 10
