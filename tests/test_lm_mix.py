"""asr.lm.interpolate and `python -m asr.lm mix`: two back-off models as one, checked against the definition
(weight * p_a + (1 - weight) * p_b on every n-gram either model lists) and normalised for every history."""

from __future__ import annotations

import json
import math

import pytest

from asr.lm import build_kneser_ney, interpolate, read_arpa, write_arpa
from asr.lm.__main__ import main
from asr.lm.arpa import BOS

SHIPPED = ["go to the left", "stop", "enter six two", "rubout t w o", "yes", "no", "repeat the last one"]
MINE = ["turn the lights on", "turn the lights off", "six", "seven", "go to the kitchen", "stop the music"]


def p(lm, history, word) -> float:
    """A model's probability of word after history, 0 for a word it does not know (as the mixture counts it)."""
    return math.exp(lm.logprob(history, word)) if word in lm.ids else 0.0


@pytest.fixture(scope="module")
def models():
    return build_kneser_ney(SHIPPED, order=3), build_kneser_ney(MINE, order=2)


@pytest.mark.parametrize("weight", [0.2, 0.5, 0.9])
def test_every_listed_ngram_is_the_weighted_sum_of_the_two_models(models, weight):
    a, b = models
    mix = interpolate(a, b, weight)
    assert mix.order == 3 and set(mix.words) == set(a.words) | set(b.words)
    for key in mix.logprob10:
        *history, word = [mix.words[i] for i in key]
        if word == BOS:
            continue
        expected = weight * p(a, history, word) + (1 - weight) * p(b, history, word)
        assert math.exp(mix.logprob(history, word)) == pytest.approx(expected, rel=1e-9), (history, word)


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_every_history_sums_to_one(models, weight):
    mix = interpolate(*models, weight)
    predicted = [w for w in mix.words if w != BOS]
    histories = [()] + list(mix.backoff10)
    assert len(histories) > 30
    for history in histories:
        words = [mix.words[i] for i in history]
        assert sum(math.exp(mix.logprob(words, w)) for w in predicted) == pytest.approx(1.0, abs=1e-9), words


def test_a_weight_outside_zero_to_one_is_refused(models):
    with pytest.raises(ValueError, match=r"weight must be in \(0, 1\], got 1.5"):
        interpolate(*models, 1.5)


def test_cli_mixes_and_chooses_the_weight_on_held_out_text(models, tmp_path, capsys):
    write_arpa(models[0], tmp_path / "shipped.arpa")
    write_arpa(models[1], tmp_path / "mine.arpa.gz")
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ["turn the lights on"] * 3))
    assert main(["mix", str(tmp_path / "mine.arpa.gz"), str(tmp_path / "shipped.arpa"), str(tmp_path / "mix.arpa.gz"),
                 "--weights", "0.2", "0.5", "0.8", "--tune-on", str(tmp_path / "dev.jsonl"), "--manifest"]) == 0
    out = capsys.readouterr().out
    assert "weight 0.8: ppl" in out and "chosen weight 0.8" in out  # the held-out text is all "mine"
    mixed = read_arpa(tmp_path / "mix.arpa.gz")
    assert mixed.logprob([], "lights") == pytest.approx(interpolate(models[1], models[0], 0.8).logprob([], "lights"))
    with pytest.raises(SystemExit) as e:  # several weights need held-out text to choose among them
        main(["mix", str(tmp_path / "mine.arpa.gz"), str(tmp_path / "shipped.arpa"), str(tmp_path / "x.arpa"),
              "--weights", "0.2", "0.5"])
    assert e.value.code == 2
    assert "--tune-on" in capsys.readouterr().err
