"""asr.lm.interpolate and `python -m asr.lm mix`: two back-off models as one, checked against the definition
(weight * p_a + (1 - weight) * p_b on every n-gram either model lists) and normalised for every history."""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
from pathlib import Path

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


def test_tune_on_a_manifest_without_the_flag_reads_its_texts_as_build_and_score_do(models, tmp_path, capsys):
    """`mix --tune-on dev.jsonl` without --manifest scored the JSON lines themselves as sentences (perplexities of
    ~265 instead of ~17) and chose a weight on them, saying nothing (a review)."""
    write_arpa(models[0], tmp_path / "shipped.arpa")
    write_arpa(models[1], tmp_path / "mine.arpa")
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"id": f"u{i}", "audio": "a.wav", "text": t}) + "\n"
                           for i, t in enumerate(["turn the lights on", "the lights", "stop"])))
    runs = []
    for flag in (["--manifest"], []):
        assert main(["mix", str(tmp_path / "mine.arpa"), str(tmp_path / "shipped.arpa"), str(tmp_path / "mix.arpa"),
                     "--weights", "0.2", "0.5", "0.8", "--tune-on", str(dev), *flag]) == 0
        runs.append(capsys.readouterr())
    assert [line for line in runs[1].out.splitlines() if "ppl" in line] == \
        [line for line in runs[0].out.splitlines() if "ppl" in line]
    (note,) = runs[1].err.splitlines()
    assert note.startswith(f"note: {dev} is a JSONL manifest") and runs[0].err == ""


@pytest.fixture
def arpas(models, tmp_path) -> tuple[Path, Path]:
    write_arpa(models[1], tmp_path / "mine.arpa")
    write_arpa(models[0], tmp_path / "shipped.arpa")
    return tmp_path / "mine.arpa", tmp_path / "shipped.arpa"


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_mix_that_fails_part_way_leaves_the_old_model_whole(arpas, tmp_path):
    out = tmp_path / "mix.arpa"
    out.write_text("an old model\n")
    full_disk = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))  # noqa: E731
    done = subprocess.run([sys.executable, "-m", "asr.lm", "mix", *map(str, arpas), str(out)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1], preexec_fn=full_disk)
    assert done.returncode == 2 and str(out) in one_error_line(done.stderr)
    assert out.read_text() == "an old model\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.arpa", "mix.arpa", "shipped.arpa"]


@pytest.mark.parametrize("clash", ["a", "b", "tune-on"])
def test_mix_refuses_to_write_over_an_input(arpas, tmp_path, capsys, clash):
    dev = tmp_path / "dev.txt"
    dev.write_text("turn the lights on\n")
    out = {"a": arpas[0], "b": tmp_path / "." / arpas[1].name, "tune-on": dev}[clash]
    before = {p: p.read_bytes() for p in (*arpas, dev)}
    code = main(["mix", *map(str, arpas), str(out), "--weights", "0.3", "0.6", "--tune-on", str(dev)])
    assert code == 2 and str(out) in one_error_line(capsys.readouterr().err)
    assert {p: p.read_bytes() for p in (*arpas, dev)} == before


@pytest.mark.parametrize("text", ["", "\n \n"])
def test_tune_on_text_without_words_is_refused(arpas, tmp_path, capsys, text):
    dev = tmp_path / "dev.txt"
    dev.write_text(text)
    code = main(["mix", *map(str, arpas), str(tmp_path / "mix.arpa"), "--weights", "0.3", "0.6", "--tune-on", str(dev)])
    captured = capsys.readouterr()
    err = one_error_line(captured.err)
    assert code == 2 and str(dev) in err and "no words" in err and "chosen" not in captured.out
    assert not (tmp_path / "mix.arpa").exists()
