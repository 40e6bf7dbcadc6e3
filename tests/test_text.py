"""asr.text: normalisation, the character vocabulary, encode/decode."""

from __future__ import annotations

import pytest

from asr.text import BLANK, CHARACTERS, CharVocab, lost_characters, normalize_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("HELLO World", "hello world"),
        ("Hello, world! How are you?", "hello world how are you"),
        ("  lots   of\tspace\n", "lots of space"),
        ("DON'T stop", "don't stop"),
        ("the cat's toy", "the cat's toy"),
        ("'quoted' words", "quoted words"),
        ("rock-n-roll", "rock n roll"),
        ("room 101 please", "room please"),
        ("A4 B12", "a b"),
        ("x...y", "x y"),
        ("", ""),
        ("123 !!!", ""),
        ("Café naïve", "cafe naive"),  # accents stripped (NFKD), not words split
        ("ÉLAN Ångström", "elan angstrom"),
        ("don’t", "don't"),  # a typographic apostrophe is an apostrophe
        ("ﬁne", "fine"),  # compatibility forms: the ligature is two letters
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_is_idempotent():
    for raw in ("It's 5 O'CLOCK -- 'really'?", "RUBOUT G M E F THREE NINE"):
        once = normalize_text(raw)
        assert normalize_text(once) == once


def test_blank_is_index_zero():
    vocab = CharVocab()
    assert vocab.blank == 0 and vocab.tokens[0] == BLANK == CHARACTERS[0]
    assert len(vocab) == 29  # blank, space, apostrophe, a-z
    assert vocab.index[" "] == 1 and vocab.index["'"] == 2 and vocab.index["a"] == 3 and vocab.index["z"] == 28


@pytest.mark.parametrize("text", ["hello world", "don't stop", "RUBOUT G M E F THREE NINE", "Ab, c!  d"])
def test_encode_decode_round_trip(text):
    vocab = CharVocab()
    ids = vocab.encode(text)
    assert 0 not in ids
    assert all(isinstance(i, int) and 0 < i < len(vocab) for i in ids)
    assert vocab.decode(ids) == normalize_text(text)


def test_encode_known_ids():
    assert CharVocab().encode("Ab c'") == [3, 4, 1, 5]  # the trailing quote is punctuation, dropped


def test_decode_skips_blanks_but_does_not_collapse():
    vocab = CharVocab()
    assert vocab.decode([0, 3, 3, 0, 0, 4, 1, 0]) == "aab "


def test_vocabulary_must_start_with_blank():
    with pytest.raises(ValueError, match="<blank>"):
        CharVocab(["a", "b"])
    with pytest.raises(ValueError):
        CharVocab([])
    assert CharVocab([BLANK, "x"]).encode("xyx") == [1, 1]  # out-of-vocabulary characters are dropped


@pytest.mark.parametrize(
    "raw, lost",
    [
        ("6 8 3 3 0 7 5", "683075"),  # digits are not spelt: the whole reference goes
        ("room 101", "10"),
        ("Straße 日本", "ß日本"),
        ("Café naïve, don't!", ""),  # accents, punctuation and apostrophes lose nothing
        ("", ""),
    ],
)
def test_lost_characters_names_what_normalisation_cannot_spell(raw, lost):
    assert lost_characters(raw) == lost
