"""asr.metrics: word and character error counts and rates on cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from asr.metrics import ErrorCounts, cer, char_errors, error_rate, wer, word_errors


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("a b c", "a b c", ErrorCounts(0, 0, 0, 3)),
        ("a b c", "a x c", ErrorCounts(1, 0, 0, 3)),  # substitution
        ("a b c", "a b c d", ErrorCounts(0, 0, 1, 3)),  # insertion
        ("a b c", "a c", ErrorCounts(0, 1, 0, 3)),  # deletion
        ("a b c d", "a c d e", ErrorCounts(0, 1, 1, 4)),  # a shift: one deletion + one insertion
        ("a b c", "", ErrorCounts(0, 3, 0, 3)),  # empty hypothesis: all deleted
        ("", "a b", ErrorCounts(0, 0, 2, 0)),  # empty reference: all inserted
        ("", "", ErrorCounts(0, 0, 0, 0)),
        ("  a   b ", "a b", ErrorCounts(0, 0, 0, 2)),  # whitespace is not a word
    ],
)
def test_word_errors(ref, hyp, expected):
    got = word_errors(ref, hyp)
    assert got == expected
    assert got.errors == expected.substitutions + expected.deletions + expected.insertions


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("abc", "abc", ErrorCounts(0, 0, 0, 3)),
        ("abc", "abd", ErrorCounts(1, 0, 0, 3)),
        ("ab c", "abc", ErrorCounts(0, 1, 0, 4)),  # the space counts
        ("ab", "abcd", ErrorCounts(0, 0, 2, 2)),
        ("ab  c", "ab c", ErrorCounts(0, 0, 0, 4)),  # runs of spaces are one space
        ("abc", "", ErrorCounts(0, 3, 0, 3)),
        ("", "xy", ErrorCounts(0, 0, 2, 0)),
    ],
)
def test_char_errors(ref, hyp, expected):
    assert char_errors(ref, hyp) == expected


def test_corpus_rates_pool_errors_over_reference_length():
    refs = ["a", "b c d e"]
    hyps = ["x", "b c d e"]
    assert wer(refs, hyps) == pytest.approx(20.0)  # 1 error / 5 words, not the mean of 100% and 0%
    assert cer(refs, hyps) == pytest.approx(100.0 / 8)  # 1 error / (1 + 7) characters
    assert wer(["a b c d"], ["a x c"]) == pytest.approx(50.0)  # one substitution, one deletion
    assert wer(["a b"], ["a b c d e f"]) == pytest.approx(200.0)  # insertions can take WER above 100


def test_error_rate_edge_cases():
    assert error_rate([]) == 0.0
    assert error_rate([ErrorCounts(0, 0, 0, 0)]) == 0.0
    assert math.isinf(error_rate([ErrorCounts(0, 0, 3, 0)]))
    assert wer([""], [""]) == 0.0


def test_mismatched_lists_are_an_error():
    with pytest.raises(ValueError):
        wer(["a", "b"], ["a"])
