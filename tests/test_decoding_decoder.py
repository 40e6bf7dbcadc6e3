"""Decoder choice: flags over the model's recommendation over defaults; the shipped model's default decoding."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.decoding import BeamSearchConfig, Decoder, DecodingConfig, add_decoding_flags, decoding_config, greedy_decode
from asr.evaluate import main as evaluate_main, report_tuning
from asr.text import CharVocab


def flags(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_decoding_flags(p)
    return p.parse_args(list(argv))


RECOMMENDED = {"decoding": {"decoder": "beam", "beam_size": 8, "lm": "lm.arpa", "alpha": 0.4, "beta": 1.0}}


def test_without_flags_the_models_recommendation_is_used_with_its_lm_beside_it(tmp_path):
    cfg = decoding_config(flags(), RECOMMENDED, tmp_path / "model.pt")
    assert cfg == DecodingConfig("beam", str(tmp_path / "lm.arpa"), BeamSearchConfig(beam_size=8, alpha=0.4, beta=1.0))


def test_flags_override_the_recommendation_and_lm_none_turns_it_off(tmp_path):
    cfg = decoding_config(flags("--beam-size", "3", "--lm", "none", "--alpha", "0.9"), RECOMMENDED, tmp_path / "m.pt")
    assert (cfg.decoder, cfg.beam.beam_size, cfg.lm, cfg.beam.alpha, cfg.beam.beta) == ("beam", 3, None, 0.9, 1.0)
    assert decoding_config(flags("--decoder", "greedy"), RECOMMENDED, tmp_path / "m.pt").decoder == "greedy"


def test_a_model_without_a_recommendation_decodes_greedily():
    assert decoding_config(flags(), {}, "m.pt") == DecodingConfig()


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_without_lm_equals_greedy(seed):
    vocab = CharVocab()
    g = torch.Generator().manual_seed(seed)
    log_probs = (3 * torch.randn(3, 40, len(vocab), generator=g)).log_softmax(-1)
    lengths = torch.tensor([40, 17, 1])
    beam = Decoder(DecodingConfig("beam", beam=BeamSearchConfig(beam_size=1)), vocab)
    assert beam.texts(log_probs, lengths) == greedy_decode(log_probs, lengths, vocab)


def test_unknown_decoder_is_rejected():
    with pytest.raises(ValueError, match="greedy"):
        DecodingConfig("viterbi")


def test_tune_lm_reports_the_best_pair_of_its_grid(tiny_checkpoint, clips_manifest, tmp_path, capsys, monkeypatch):
    """...reading the LM once for the whole grid (it was read again for each of its 30 points)."""
    import asr.decoding.decoder
    import asr.evaluate
    from asr.lm import load_lm

    loads = []
    for module in (asr.evaluate, asr.decoding.decoder):
        monkeypatch.setattr(module, "load_lm", lambda *a, **k: loads.append(a) or load_lm(*a, **k))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("stop\nm e l v i n\nrubout g m e f three nine\n")
    from asr.lm.__main__ import main as lm_main

    assert lm_main(["build", "--order", "2", str(corpus), str(tmp_path / "lm.arpa")]) == 0
    code = evaluate_main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--decoder", "beam",
                          "--lm", str(tmp_path / "lm.arpa"), "--tune-lm", "--out", str(tmp_path / "tune")])
    assert code == 0
    result = json.loads((tmp_path / "tune" / "lm_weights.json").read_text())
    assert result["wer"] == min(r["wer"] for r in result["grid"])
    assert len(result["grid"]) > 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"best: alpha={result['alpha']} ")
    assert len(loads) == 1


def test_tune_lm_says_when_its_manifest_cannot_tell_the_grid_apart(capsys):
    flat = [{"alpha": a, "beta": b, "wer": 2.0} for a in (0.1, 0.5) for b in (0.0, 1.0)]
    assert report_tuning(flat[0], flat, None) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "best: alpha=0.1 beta=0.0 WER=2.00"
    assert err == ("note: every alpha and beta of the grid scores WER=2.00 here: this manifest cannot tell them apart, "
                   "so the least LM weight is kept; a larger --alpha favours the LM's words\n")
    uneven = [*flat[:3], {**flat[3], "wer": 2.5}]
    assert report_tuning(uneven[0], uneven, None) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is not in this checkout")
def test_shipped_model_recommends_beam_search_with_its_shipped_lm():
    rec = load_model()
    cfg = decoding_config(flags(), rec.metadata, DEFAULT_MODEL)
    assert cfg.decoder == "beam" and cfg.lm is not None and Path(cfg.lm).is_file()


def test_tune_lm_without_an_lm_is_a_clear_error(tiny_checkpoint, clips_manifest, capsys):
    assert evaluate_main(["--model", str(tiny_checkpoint), "--manifest", str(clips_manifest), "--tune-lm"]) == 2
    assert "--tune-lm needs a language model" in capsys.readouterr().err


def test_asking_for_alternatives_keeps_the_transcript():
    """The first of an n-best list is the transcript without alternatives (the recombining search's best);
    the others follow it, distinct. Random, unpeaky log-probs with the shipped LM are where the two searches
    part: the test counts those cases, and needs some (before, the list began with the other search's best)."""
    vocab = CharVocab()
    decoder = Decoder(DecodingConfig("beam", lm=str(DEFAULT_MODEL.with_name("an4_lm.arpa.gz")),
                                     beam=BeamSearchConfig(alpha=0.1, beta=1.0)), vocab)
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(40, 1, 40, len(vocab), generator=g)
    logits[..., vocab.blank] += 2
    parted = 0
    for lp in logits.log_softmax(-1):  # each (1, 40, V)
        lengths = torch.tensor([40])
        lp64 = lp[0].double().numpy()
        parted += decoder.search(lp64, None, 1)[0].text != decoder.nbest_search(lp64, None, 5)[0].text
        one, five = decoder.hypotheses(lp, lengths, 1)[0], decoder.hypotheses(lp, lengths, 5)[0]
        assert five[0].text == one[0].text and five[0].tokens == one[0].tokens
        assert 1 < len(five) <= 5 and len({h.text for h in five}) == len(five)
        assert all(0 <= h.confidence <= 1 for h in five) and sum(h.confidence for h in five) <= 1 + 1e-9
    assert parted >= 5, parted  # the case the list's first guards against is here, not only in principle


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_lengths_past_the_frames_are_refused_by_either_decoder(decoder):
    vocab = CharVocab()
    log_probs = torch.randn(1, 5, len(vocab)).log_softmax(-1)
    with pytest.raises(ValueError, match="a length of 9 exceeds the 5 frames"):
        Decoder(DecodingConfig(decoder), vocab).texts(log_probs, torch.tensor([9]))
