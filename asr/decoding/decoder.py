"""Choosing a decoder: greedy, or beam search with an optional word LM, from flags or the model's metadata.

A model may recommend its decoding in its metadata, e.g. the shipped AN4 model:
    {"decoding": {"decoder": "beam", "beam_size": 32, "lm": "an4_lm.arpa.gz", "alpha": 0.1, "beta": 1.0}}
with "lm" relative to the checkpoint's folder and the other fields those of DecodingConfig and
BeamSearchConfig. Flags override each field; `--lm none` turns the LM off. Steering (--hotword, --hotwords-file,
--hotword-score, --grammar) is not the model's: the flags give it per run, Decoder.steer checks it for a call.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from asr.decoding.beam import CTCBeamSearch
from asr.decoding.config import BeamSearchConfig, DecodingConfig
from asr.decoding.greedy import Alignment, check_log_probs, greedy_alignments
from asr.decoding.search import Hypothesis
from asr.decoding.steering import (DEFAULT_HOTWORD_SCORE, MAX_HOTWORD_SCORE, Steering, SteeringError, make_steering,
                                   parse_hotword, read_grammar, read_hotwords, read_steering_file)
from asr.lm import LanguageModel, load_lm
from asr.text import Vocab, transcript

_BEAM_FIELDS = {f.name for f in dataclasses.fields(BeamSearchConfig)}
_FLAGS = ("decoder", "lm", "beam_size", "alpha", "beta")  # what add_decoding_flags offers


def add_decoding_flags(p: argparse.ArgumentParser, number=float, count=int) -> None:
    """--decoder, --beam-size, --lm, --alpha, --beta; unset ones fall back to the model's metadata.
    number, count: the argparse types of --alpha/--beta and --beam-size (the doors pass range-checked ones)."""
    p.add_argument("--decoder", choices=["greedy", "beam"], help="default: what the model recommends, else greedy")
    p.add_argument("--beam-size", type=count, help="beam width (default: the model's, else 32)")
    p.add_argument("--lm", help="word n-gram LM (ARPA, .arpa.gz or KenLM binary) for beam search, or 'none' "
                                "(default: the model's)")
    p.add_argument("--alpha", type=number, help="LM weight (default: the model's)")
    p.add_argument("--beta", type=number, help="word insertion bonus (default: the model's)")


def add_steering_flags(p: argparse.ArgumentParser, number=float) -> None:
    """--hotword (repeatable), --hotwords-file, --hotword-score, --grammar: steering for the beam search."""
    p.add_argument("--hotword", action="append", metavar="PHRASE[:SCORE]",
                   help="a word or phrase to favour (repeatable); SCORE: its bonus per token (natural log; a token "
                        "is a character with a character model), default --hotword-score")
    p.add_argument("--hotwords-file", metavar="FILE", help="hotwords, one PHRASE[:SCORE] a line (# comments)")
    p.add_argument("--hotword-score", type=number,
                   help=f"bonus per token (character) of a hotword given without a score (default {DEFAULT_HOTWORD_SCORE:g})")
    p.add_argument("--grammar", metavar="FILE", help="keep to these phrases: a JSON list as Vosk's phrase_list, "
                                                    '"[unk]" among them for any other word')


def steering_from_args(args: argparse.Namespace, decoder: Decoder) -> Steering | None:
    """The steering the flags of add_steering_flags ask for (None: none); SteeringError naming what is wrong."""
    hotwords = [(*parse_hotword(h), "--hotword") for h in args.hotword or []]
    if args.hotwords_file:
        hotwords += read_hotwords(args.hotwords_file)
    phrase_list = None
    if args.grammar:
        text = read_steering_file(args.grammar, f"--grammar {args.grammar}")
        phrase_list = read_grammar(text, f"--grammar {args.grammar}")
    given = args.hotword is not None or bool(args.hotwords_file)
    score = DEFAULT_HOTWORD_SCORE if args.hotword_score is None else args.hotword_score
    if args.hotword_score is not None and not given:  # a score alone would be taken and change nothing
        raise SteeringError("--hotword-score", "scores --hotword and --hotwords-file phrases given without a score; "
                                               "none are given")
    if given and not (math.isfinite(score) and 0 < score <= MAX_HOTWORD_SCORE):
        raise SteeringError("--hotword-score", f"{score:g}; a score is a bonus per token (character) in "
                                               f"(0, {MAX_HOTWORD_SCORE:g}]")
    names = ("--hotword" if not args.hotwords_file else args.hotwords_file, f"--grammar {args.grammar}")
    return decoder.steer(hotwords if given else None, phrase_list, score, names)


def ignored_by_greedy(args: argparse.Namespace, cfg: DecodingConfig) -> str | None:
    """One warning line naming the beam-search flags given that greedy decoding (cfg) ignores; None if none."""
    given = [f"--{name.replace('_', '-')}" for name in ("lm", "alpha", "beta", "beam_size")
             if getattr(args, name, None) is not None and not (name == "lm" and str(args.lm).lower() == "none")]
    if cfg.decoder != "greedy" or not given:
        return None
    return (f"warning: {', '.join(given)} {'is' if len(given) == 1 else 'are'} ignored with greedy decoding "
            "(the LM and its weights are used only by beam search: add --decoder beam)")


def decoding_config(args: argparse.Namespace, metadata: dict, model_path: str | Path) -> DecodingConfig:
    """Flags first, then the model's recommended decoding, then DecodingConfig's defaults. ValueError naming the
    model where its recommended decoding itself cannot be used (a value out of range, of another type)."""
    values = dict(metadata.get("decoding") or {})
    try:
        BeamSearchConfig(**{k: v for k, v in values.items() if k in _BEAM_FIELDS})
        DecodingConfig(values.get("decoder", DecodingConfig.decoder), None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{model_path}: the decoding it recommends cannot be used ({e})") from None
    if values.get("lm"):
        values["lm"] = str(Path(model_path).parent / values["lm"])
    for name in _FLAGS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    if str(values.get("lm", "")).lower() == "none":
        values["lm"] = None
    beam = BeamSearchConfig(**{k: v for k, v in values.items() if k in _BEAM_FIELDS})
    return DecodingConfig(values.get("decoder", DecodingConfig.decoder), values.get("lm"), beam)


class Decoder:
    """(B, T, V) log-probs + (B,) lengths -> one Alignment (tokens and the frame of each) per utterance:
    greedy, or the best hypothesis of the beam search. The LM is loaded once, here; steering (hotwords, a
    grammar: `steer`) is passed per call."""

    def __init__(self, cfg: DecodingConfig, vocab: Vocab, lm: LanguageModel | None = None):
        """`lm`: cfg.lm already loaded (a grid over alpha and beta reads the file once), else it is read here."""
        self.cfg, self.vocab = cfg, vocab
        self.search = self.nbest_search = None
        if cfg.decoder == "beam":
            lm = lm if lm is not None or not cfg.lm else load_lm(cfg.lm)
            self.search = CTCBeamSearch(vocab, dataclasses.replace(cfg.beam, nbest=1), lm)
            # The alternatives of an n-best list come from a search without recombination: recombining keeps
            # one text of those that differ only where the LM no longer looks, and so drops the alternatives a
            # list is for. Under pruning the two searches can end on different bests, so the list's first is
            # always the recombining search's (the transcript, asked for alternatives or not).
            self.nbest_search = self.search.replace(recombine=False)

    def with_alternatives(self, best: list[Hypothesis], log_probs: np.ndarray, steering: Steering | None,
                          nbest: int) -> list[Hypothesis]:
        """`best` (the beam search's one best of an utterance's (T, V) log-probs, or none) followed by up to
        nbest - 1 other texts of the search without recombination, in its order. The confidences are that
        search's (its beam's shares: at most 1 in all); the best's where it has no such text, at most what the
        others leave. Almost always the two agree and this is that search's list as it is. nbest 1: the best with
        that confidence (the recombining search's own is near 1: it merged the rivals away)."""
        # The whole final beam, so that the best finds its own share there whatever nbest is (its order and
        # the confidences do not depend on how many are listed).
        listed = self.nbest_search(log_probs, steering, max(nbest, self.nbest_search.cfg.beam_size))
        if not best or (listed and listed[0].text == best[0].text):
            return listed[:nbest]
        others = [h for h in listed if h.text != best[0].text][: nbest - 1]
        same = [h.confidence for h in listed if h.text == best[0].text]
        confidence = same[0] if same else min(best[0].confidence, max(0.0, 1.0 - sum(h.confidence for h in others)))
        return [dataclasses.replace(best[0], confidence=confidence)] + others

    def steer(self, hotwords: list[tuple[str, float | None]] | None = None, phrase_list: list[str] | None = None,
              default_score: float = DEFAULT_HOTWORD_SCORE,
              names: tuple[str, str] = ("hotwords", "phrase_list")) -> Steering | None:
        """Checked steering for calls of this decoder (None if neither is given); SteeringError if it is bad,
        or if this decoder is greedy (only the beam search can be steered)."""
        if hotwords is None and phrase_list is None:
            return None
        if self.search is None:
            raise SteeringError(names[0] if hotwords is not None else names[1], "hotwords and grammars need the "
                                "beam search: this decoding is greedy (--decoder beam)")
        return make_steering(self.vocab, hotwords, phrase_list, default_score=default_score, names=names)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor,
                 steering: Steering | Sequence[Steering | None] | None = None) -> list[Alignment]:
        """steering: one for the batch, or one per utterance."""
        if self.search is None:
            return greedy_alignments(log_probs, lengths, self.vocab.blank)
        return [hyps[0].alignment() if hyps else Alignment((), ())
                for hyps in self.hypotheses(log_probs, lengths, 1, steering)]

    def hypotheses(self, log_probs: torch.Tensor, lengths: torch.Tensor, nbest: int = 1,
                   steering: Steering | Sequence[Steering | None] | None = None) -> list[list[Hypothesis]]:
        """Per utterance up to `nbest` hypotheses, best first, each with its confidence (greedy: the one
        path, confidence 1). nbest 1 is the transcript alone, without the second search: its confidence is its
        share of a beam that merged its rivals away, near 1 (with_alternatives(..., 1) gives the one to show)."""
        if self.search is None:
            return [[Hypothesis(transcript(self.vocab, a.tokens), 0.0, a.tokens, a.frames, 0.0, 0.0)]
                    for a in greedy_alignments(log_probs, lengths, self.vocab.blank)]
        check_log_probs(log_probs, lengths)
        per_utterance = steering if isinstance(steering, (list, tuple)) else [steering] * len(lengths)
        lp = log_probs.detach().to("cpu", torch.float64).numpy()  # (B, T, V)
        bests = [self.search(lp[b, :n], per_utterance[b], 1) for b, n in enumerate(lengths.tolist())]
        if nbest <= 1:
            return bests
        return [self.with_alternatives(best, lp[b, :n], per_utterance[b], nbest)
                for b, (best, n) in enumerate(zip(bests, lengths.tolist()))]

    def best(self, log_probs: np.ndarray, steering: Steering | None = None) -> Alignment:
        """The beam search's best hypothesis of one utterance's (T, V) log-probs, as an Alignment."""
        hyps = self.search(log_probs, steering, 1)
        return hyps[0].alignment() if hyps else Alignment((), ())

    def texts(self, log_probs: torch.Tensor, lengths: torch.Tensor, steering: Steering | None = None) -> list[str]:
        """Transcripts, spaces tidied (with a grammar, [unk] for the words only it spells)."""
        if self.search is None:
            return [transcript(self.vocab, a.tokens) for a in self(log_probs, lengths)]
        return [hyps[0].text if hyps else "" for hyps in self.hypotheses(log_probs, lengths, 1, steering)]

    def transcripts(self, log_probs: list[torch.Tensor], steering: Steering | None = None) -> list[str]:
        """Transcripts of per-utterance (T_i, V) log-probs (asr.recognizer.utterance_log_probs), in order."""
        return [self.texts(lp[None], torch.tensor([len(lp)]), steering)[0] for lp in log_probs]
