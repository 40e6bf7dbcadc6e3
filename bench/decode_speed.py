"""Decoding speed and WER of our CTC beam search + word LM, against pyctcdecode 0.5.0 (and flashlight-text) where
they are installed.

    python bench/decode_speed.py                        # the shipped model, its LM and weights, AN4 test
    python bench/decode_speed.py --lm exp/an4_lm/3gram.arpa --alpha 0.3 --beta 2.0 --model exp/an4/best.pt

The model's log-probs are computed once; every decoder then decodes the same (T, V) arrays, one
utterance at a time, on one thread. Times are CPU seconds of this process (time.process_time,
fastest of --repeats passes), so that other work on the machine disturbs them less. The LM, alpha and beta
default to the model's recommended decoding (the shipped model: asr/assets/an4_lm.arpa.gz, 0.1, 2.0); our
search reads the LM with the pure-Python ARPA scorer (asr.lm), so nothing beyond the `.[dev]` install is needed.

Rows: "ours" uses asr.decoding's defaults for pruning; "ours, pyctcdecode pruning" uses pyctcdecode's
(token_min_logp -5, beam_prune_logp -10, no top-k). Only where pyctcdecode is installed (with kenlm, which it
needs for an LM) a "pyctcdecode 0.5.0" row runs `decode()` with its defaults; all share the beam width, the LM,
alpha, beta and the unknown-word offset (-10). Where flashlight-text is installed its lexicon-free decoder runs
without an LM (it would read our word LM as a character LM), next to "ours, no LM". The first lines say which rows
run. Last line: `speedup_vs_pyctcdecode=<x>` (pyctcdecode's time over ours at the first beam) where pyctcdecode
ran, else `ours_ms_per_utterance=<ms>` (ours, the first beam, with the LM).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from asr.checkpoint import DEFAULT_MODEL, load_model
from asr.data import read_manifest
from asr.decoding import BeamSearchConfig, CTCBeamSearch, decoding_config, greedy_decode
from asr.lm import load_lm
from asr.lm.arpa import arpa_vocabulary
from asr.metrics import wer
from asr.recognizer import utterance_log_probs
from asr.text import CharVocab, normalize_text, transcript

from _manifests import require_manifests, run_main  # bench/_manifests.py

DecodeFn = Callable[[np.ndarray], str]  # (T, V) log-probs -> text


@dataclass(frozen=True)
class BenchConfig:
    model: str = str(DEFAULT_MODEL)  # checkpoint
    manifest: str = "manifests/an4/test.jsonl"  # utterances with reference texts
    lm: str | None = None  # ARPA file; None: no LM (main() fills in the model's recommended one)
    alpha: float = 0.1  # LM weight (natural-log LM probabilities); the shipped model's, tuned on AN4 dev
    beta: float = 2.0  # word insertion bonus
    beams: tuple[int, ...] = (32, 100)  # beam widths to compare
    unk_offset: float = -10.0  # pyctcdecode's unk_score_offset; our unk_penalty
    repeats: int = 5  # timed passes per decoder; the fastest counts


def ours(vocab: CharVocab, cfg: BeamSearchConfig, lm_path: str | None) -> DecodeFn:
    decoder = CTCBeamSearch(vocab, cfg, load_lm(lm_path, "python") if lm_path else None)
    return lambda lp: decoder(lp)[0].text


def pyctcdecode_decoder(vocab: CharVocab, bench: BenchConfig, beam: int, lm_path: str | None) -> DecodeFn:
    from pyctcdecode import build_ctcdecoder

    labels = ["" if i == vocab.blank else t for i, t in enumerate(vocab.tokens)]
    # pyctcdecode reads the unigram list from a plain ARPA file only; give it ours so it is not handicapped.
    unigrams = sorted(arpa_vocabulary(lm_path) - {"<s>", "</s>", "<unk>"}) if lm_path else None
    decoder = build_ctcdecoder(labels, kenlm_model_path=lm_path, unigrams=unigrams, alpha=bench.alpha,
                               beta=bench.beta, unk_score_offset=bench.unk_offset)
    return lambda lp: decoder.decode(lp, beam_width=beam)


def flashlight_decoder(vocab: CharVocab, beam: int) -> DecodeFn:
    from flashlight.lib.text.decoder import (
        CriterionType,
        LexiconFreeDecoder,
        LexiconFreeDecoderOptions,
        ZeroLM,
    )

    opts = LexiconFreeDecoderOptions(beam_size=beam, beam_size_token=len(vocab), beam_threshold=10.0,
                                     lm_weight=0.0, sil_score=0.0, log_add=True, criterion_type=CriterionType.CTC)
    decoder = LexiconFreeDecoder(opts, ZeroLM(), vocab.index[" "], vocab.blank, [])

    def decode(lp: np.ndarray) -> str:
        emissions = np.ascontiguousarray(lp, dtype=np.float32)  # (T, V)
        tokens = decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])[0].tokens
        ids = [c for t, c in enumerate(tokens) if c >= 0 and (t == 0 or c != tokens[t - 1])]
        return transcript(vocab, ids)

    return decode


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def decoders(vocab: CharVocab, bench: BenchConfig, lm_path: str | None) -> list[tuple[str, int, Callable[[], DecodeFn]]]:
    """(name, beam, factory) of every decoder to compare: pyctcdecode's only where it is installed and can use the
    LM (kenlm installed, or no LM), flashlight-text's where it is installed."""
    with_pyctcdecode = installed("pyctcdecode") and (installed("kenlm") or not lm_path)
    out = []
    for beam in bench.beams:
        cfg = BeamSearchConfig(beam_size=beam, alpha=bench.alpha, beta=bench.beta, unk_penalty=bench.unk_offset,
                               nbest=1)
        same = dataclasses.replace(cfg, token_min_logprob=-5.0, beam_threshold=10.0, token_top_k=len(vocab) - 1)
        out.append(("ours", beam, lambda cfg=cfg: ours(vocab, cfg, lm_path)))
        out.append(("ours, pyctcdecode pruning", beam, lambda cfg=same: ours(vocab, cfg, lm_path)))
        if with_pyctcdecode:
            out.append(("pyctcdecode 0.5.0", beam, lambda beam=beam: pyctcdecode_decoder(vocab, bench, beam, lm_path)))
        if installed("flashlight"):
            out.append(("ours, no LM", beam, lambda cfg=cfg: ours(vocab, cfg, None)))
            out.append(("flashlight lexicon-free, no LM", beam, lambda beam=beam: flashlight_decoder(vocab, beam)))
    return out


def run(decode: DecodeFn, log_probs: list[np.ndarray], repeats: int) -> tuple[float, list[str]]:
    """(CPU milliseconds per utterance, fastest of `repeats` passes; the texts)."""
    decode(log_probs[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        texts = [decode(lp) for lp in log_probs]
        best = min(best, time.process_time() - start)
    return 1000.0 * best / len(log_probs), texts


def model_log_probs(model: str, manifest: str) -> tuple[list[np.ndarray], list[str], CharVocab]:
    """Per utterance (T, V) float64 log-probs, the normalised references, the vocabulary."""
    rec = load_model(model)
    utts = read_manifest(manifest)
    log_probs = [lp.double().numpy() for lp in utterance_log_probs(rec, utts)]
    return log_probs, [normalize_text(u.text) for u in utts], rec.vocab


def what_runs(lm_path: str | None) -> str:
    """The first line: which decoders this run compares, and why others do not run."""
    rows = ["ours", "ours with pyctcdecode's pruning"]
    if not installed("pyctcdecode"):
        rows.append("(no pyctcdecode row: pip install pyctcdecode kenlm)")
    elif lm_path and not installed("kenlm"):
        rows.append("(no pyctcdecode row: pyctcdecode needs kenlm for the LM: pip install kenlm)")
    else:
        rows.append("pyctcdecode 0.5.0")
    rows.append("flashlight-text lexicon-free and ours, no LM" if installed("flashlight") else "(no flashlight-text row)")
    return "compares: " + ", ".join(rows)


def report(bench: BenchConfig, log_probs: list[np.ndarray], refs: list[str], vocab: CharVocab) -> None:
    lm_path = bench.lm
    print(what_runs(lm_path))
    greedy = [greedy_decode(torch.from_numpy(lp)[None], torch.tensor([len(lp)]), vocab)[0] for lp in log_probs]
    frames = sum(len(lp) for lp in log_probs) / len(log_probs)
    print(f"{len(log_probs)} utterances, {frames:.0f} frames on average; LM {lm_path or 'none'} (alpha={bench.alpha}, "
          f"beta={bench.beta}); greedy WER {wer(refs, greedy):.2f}%; CPU ms per utterance, best of {bench.repeats}")
    print(f"{'decoder':<32}{'beam':>6}{'ms/utt':>10}{'WER %':>9}")
    times = {}
    for name, beam, factory in decoders(vocab, bench, lm_path):
        ms, texts = run(factory(), log_probs, bench.repeats)
        times[name, beam] = ms
        print(f"{name:<32}{beam:>6}{ms:>10.3f}{wer(refs, texts):>9.2f}", flush=True)
    for beam in bench.beams:
        if ("pyctcdecode 0.5.0", beam) in times:
            base = times["pyctcdecode 0.5.0", beam]
            print(f"beam {beam}: pyctcdecode / ours = {base / times['ours', beam]:.2f} (our defaults), "
                  f"{base / times['ours, pyctcdecode pruning', beam]:.2f} (pyctcdecode's pruning)")
    first = bench.beams[0]
    if ("pyctcdecode 0.5.0", first) in times:
        print(f"speedup_vs_pyctcdecode={times['pyctcdecode 0.5.0', first] / times['ours', first]:.2f}")
    else:
        print(f"ours_ms_per_utterance={times['ours', first]:.3f}")


def main(argv: list[str] | None = None) -> int:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default=d.model, help="checkpoint (default: the shipped AN4 model)")
    p.add_argument("--manifest", default=d.manifest)
    p.add_argument("--lm", help="ARPA word LM, or none (default: the model's, e.g. asr/assets/an4_lm.arpa.gz)")
    p.add_argument("--alpha", type=float, help="LM weight (default: the model's)")
    p.add_argument("--beta", type=float, help="word insertion bonus (default: the model's)")
    p.add_argument("--beams", type=int, nargs="+", default=list(d.beams))
    p.add_argument("--repeats", type=int, default=d.repeats)
    a = p.parse_args(argv)
    require_manifests(a.manifest)
    recommended = decoding_config(argparse.Namespace(lm=a.lm, alpha=a.alpha, beta=a.beta),
                                  load_model(a.model).metadata, a.model)  # flags first, then the model's metadata
    bench = BenchConfig(a.model, a.manifest, recommended.lm, recommended.beam.alpha, recommended.beam.beta,
                        tuple(a.beams), d.unk_offset, a.repeats)
    torch.set_num_threads(1)
    report(bench, *model_log_probs(bench.model, bench.manifest))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
