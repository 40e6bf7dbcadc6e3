"""asr.decoding.greedy: hand-built log-probs with a known best path."""

from __future__ import annotations

import pytest
import torch

from asr.decoding import greedy_decode, greedy_ids
from asr.text import CharVocab

VOCAB = CharVocab()
V = len(VOCAB)  # 29: blank, space, apostrophe, a..z
_ = 0  # blank


def ids(text: str) -> list[int]:
    return [VOCAB.index[c] for c in text]


def path_log_probs(paths: list[list[int]], frames: int | None = None, seed: int = 0) -> torch.Tensor:
    """(B, T, V) log-probs whose best class at frame t of utterance b is paths[b][t]; frames past a path's
    end are filled with random (junk) distributions."""
    frames = frames or max(map(len, paths))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(paths), frames, V, generator=gen)  # junk everywhere, maxima anywhere
    for b, path in enumerate(paths):
        for t, c in enumerate(path):
            logits[b, t, c] = 10.0  # far above the N(0, 1) junk
    return logits.log_softmax(-1)


def test_known_best_path():
    a, b, c, space = ids("abc ")
    path = [_, a, a, a, _, b, b, _, b, space, space, _, c, c, _]
    log_probs = path_log_probs([path])
    assert greedy_ids(log_probs, torch.tensor([len(path)])) == [[a, b, b, space, c]]
    assert greedy_decode(log_probs, torch.tensor([len(path)]), VOCAB) == ["abb c"]


def test_repeats_collapse_unless_separated_by_blank():
    a = VOCAB.index["a"]
    cases = {
        (a, a, a, a): [a],
        (a, _, a): [a, a],
        (a, _, _, a, a, _, a): [a, a, a],
        (_, _, _): [],
        (a,): [a],
    }
    for path, expected in cases.items():
        assert greedy_ids(path_log_probs([list(path)]), torch.tensor([len(path)])) == [expected], path


def test_frames_past_each_length_are_ignored():
    paths = [ids("hello"), [_, *ids("hi"), _], ids("x")]
    log_probs = path_log_probs(paths, frames=12, seed=3)  # junk after each path
    lengths = torch.tensor([len(p) for p in paths])
    assert greedy_decode(log_probs, lengths, VOCAB) == ["helo", "hi", "x"]
    # a frame past the length that would otherwise extend the output: the same letter after a blank
    log_probs[2, 1:] = path_log_probs([[_, VOCAB.index["x"]] * 5 + [_]])[0]
    assert greedy_decode(log_probs, lengths, VOCAB)[2] == "x"
    assert greedy_decode(log_probs, torch.tensor([5, 4, 0]), VOCAB) == ["helo", "hi", ""]


def test_spaces_are_tidied():
    path = [VOCAB.index[" "], _, *ids("ab"), _, *ids("  "), _, *ids(" c"), VOCAB.index[" "]]
    log_probs = path_log_probs([path])
    assert greedy_ids(log_probs, torch.tensor([len(path)]))[0] == [1, 3, 4, 1, 1, 5, 1]  # "  " collapses to one space
    assert greedy_decode(log_probs, torch.tensor([len(path)]), VOCAB) == ["ab c"]


def test_other_blank_index():
    log_probs = path_log_probs([[2, 2, 5, 5, 2, 5]])
    assert greedy_ids(log_probs, torch.tensor([6]), blank=2) == [[5, 5]]


def test_empty_batch():
    assert greedy_ids(torch.zeros(0, 5, V), torch.zeros(0, dtype=torch.long)) == []


@pytest.mark.parametrize(
    "shape, lengths, message",
    [
        ((10, V), [10], r"log_probs must be \(B, T, V\), got \(10, 29\)"),
        ((1, 1, 10, V), [10], r"log_probs must be \(B, T, V\)"),
        ((2, 10, V), [10], r"lengths must be \(2,\), got \(1,\)"),
        ((2, 10, V), [[10, 10]], r"lengths must be \(2,\), got \(1, 2\)"),
        ((2, 10, V), [10, 11], "a length of 11 exceeds the 10 frames"),
    ],
)
def test_bad_shapes_are_rejected(shape, lengths, message):
    with pytest.raises(ValueError, match=message):
        greedy_ids(torch.zeros(shape), torch.tensor(lengths))
    with pytest.raises(ValueError, match=message):
        greedy_decode(torch.zeros(shape), torch.tensor(lengths), VOCAB)


def test_forced_alignment_finds_the_known_path():
    from asr.decoding.align import forced_alignment

    best = [0, 1, 1, 0, 0, 2, 0, 2, 2, 0]  # a a . . b . b b: tokens 1, 2, 2 with frames (1-2), (5), (7-8)
    log_probs = torch.full((10, 3), -8.0)
    log_probs[torch.arange(10), best] = -0.01
    assert forced_alignment(log_probs, [1, 2, 2]) == [(1, 2), (5, 5), (7, 8)]
    # a text the frames only partly support: token 2 alone keeps to the frames where 2 is likely
    [(first, last)] = forced_alignment(log_probs, [2])
    assert 5 <= first <= last <= 8
    with pytest.raises(ValueError, match="do not fit"):
        forced_alignment(log_probs[:2], [1, 1])  # a repeat needs a blank between: three frames at least
    assert forced_alignment(log_probs, []) == []
    with pytest.raises(ValueError, match="T >= 1"):
        forced_alignment(log_probs[:0], [1])
