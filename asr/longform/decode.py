"""Segments -> the model in length-sorted batches -> the decoder -> timed words (and alternatives) per segment.

    words = decode_segments(rec, segments, decoder)                              # [[Word]] per segment
    alts = decode_alternatives(rec, segments, decoder, steering=s, nbest=5)      # [[Alternative]] per segment

Steering (hotwords, a grammar: asr.decoding.steering) is per call, one for every segment or one per segment
(the server batches segments of several requests together). With a grammar, a word only its [unk] spells
comes out as the word "[unk]", with its times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from asr.audio import SAMPLE_RATE
from asr.data import length_batches
from asr.decoding import Alignment, Decoder, DecodingConfig, Hypothesis, Steering
from asr.decoding.grammar import UNK_WORD
from asr.longform.segment import Segment, voiced_frames
from asr.longform.timestamps import Word, kept_tokens, timed_words, token_text
from asr.model import output_frame_seconds
from asr.recognizer import Recognizer
from asr.text import Vocab


@dataclass(frozen=True)
class Alternative:
    text: str  # as the words read (a grammar's [unk]s included)
    confidence: float  # 0..1: its share of the final beam's probability (1 for greedy decoding)
    words: list[Word]
    logprobs: list[tuple[str, float]] = field(default_factory=list)  # token_logprobs: the text's tokens
    tokens: tuple[int, ...] = ()  # the token ids emitted (the model's vocabulary), spaces included


def token_logprobs(log_probs: torch.Tensor, alignment: Alignment, vocab: Vocab,
                   labels: list[str] | None = None) -> list[tuple[str, float]]:
    """Each token of the text and its natural-log probability at the frame that emitted it; the tokens join to
    the text (no leading, trailing or doubled space). labels: the words as a grammar names them; a word named
    "[unk]" is one token "[unk]" with the sum of its tokens' log-probs."""
    out: list[list] = []
    for token, frame in zip(alignment.tokens, alignment.frames):
        text = token_text(vocab, token)
        if not out or out[-1][0].endswith(" "):
            text = text.lstrip(" ")
        if text:
            out.append([text, float(log_probs[frame, token])])
    while out and out[-1][0].endswith(" "):
        out[-1][0] = out[-1][0].rstrip(" ")
        if not out[-1][0]:
            out.pop()
    if labels is None or UNK_WORD not in labels:
        return [(text, lp) for text, lp in out]
    words: list[list] = [[]]  # the tokens of each word and the space after it (character vocabularies)
    for text, lp in out:
        words[-1].append((text, lp))
        if text == " ":
            words.append([])
    merged = []
    for label, tokens in zip(labels, words):
        space = [tokens.pop()] if tokens and tokens[-1][0] == " " else []
        merged += ([(UNK_WORD, sum(lp for _, lp in tokens))] if label == UNK_WORD else tokens) + space
    return merged


def label_words(words: list[Word], steering: Steering | None) -> list[Word]:
    """Words that a grammar spells only by [unk] renamed "[unk]" (times and confidence kept)."""
    if steering is None or steering.grammar is None:
        return words
    labels = steering.label([w.word for w in words])
    return [w if w.word == label else replace(w, word=label) for w, label in zip(words, labels)]


@torch.no_grad()
def decode_alternatives(
    rec: Recognizer, segments: list[Segment], decoder: Decoder | None = None, batch_seconds: float = 200.0,
    snap: bool = True, steering: Steering | Sequence[Steering | None] | None = None, nbest: int = 1,
) -> list[list[Alternative]]:
    """Up to `nbest` alternatives of each segment, best first (none for a segment with nothing decoded);
    similar lengths are batched together. Greedy decoding unless a decoder is given."""
    decoder = decoder or Decoder(DecodingConfig(), rec.vocab)
    steerings = list(steering) if isinstance(steering, (list, tuple)) else [steering] * len(segments)
    frame_s, hop = output_frame_seconds(rec.frontend.cfg), rec.frontend.cfg.hop_length  # s per output frame, samples
    out: list[list[Alternative]] = [[] for _ in segments]
    for idx in length_batches([len(seg.samples) for seg in segments], batch_seconds * SAMPLE_RATE):
        feats = [rec.frontend(segments[i].samples) for i in idx]  # each (T, n_mels)
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, n_mels)
        lengths = torch.tensor([f.shape[0] for f in feats])
        log_probs, out_lengths = rec.model(batch.to(rec.device), lengths.to(rec.device))
        log_probs, out_lengths = log_probs.cpu(), out_lengths.cpu()
        nbests = decoder.hypotheses(log_probs, out_lengths, nbest, [steerings[i] for i in idx])
        for b, (i, hyps) in enumerate(zip(idx, nbests)):
            seg, n = segments[i], int(out_lengths[b])
            voiced = voiced_frames(seg.samples, seg.voiced_db, hop) if snap and seg.voiced_db is not None else None
            out[i] = [_alternative(hyp, log_probs[b, :n], seg, rec, frame_s, voiced, steerings[i]) for hyp in hyps]
    return out


def _alternative(hyp: Hypothesis, log_probs: torch.Tensor, seg: Segment, rec: Recognizer, frame_s: float,
                 voiced, steering: Steering | None) -> Alternative:
    alignment = hyp.alignment()
    if seg.keep_start is not None or seg.keep_end is not None:  # an overlapping window: its own part only
        first = math.ceil((seg.keep_start_s - seg.start_s) / frame_s - 1e-9)
        alignment = kept_tokens(alignment, first, math.ceil((seg.keep_end_s - seg.start_s) / frame_s - 1e-9))
    words = label_words(timed_words(log_probs, alignment, rec.vocab, frame_s, seg.start_s, voiced), steering)
    logprobs = token_logprobs(log_probs, alignment, rec.vocab, [w.word for w in words])
    return Alternative(" ".join(w.word for w in words), hyp.confidence, words, logprobs, alignment.tokens)


def decode_segments(
    rec: Recognizer, segments: list[Segment], decoder: Decoder | None = None, batch_seconds: float = 200.0,
    snap: bool = True, steering: Steering | Sequence[Steering | None] | None = None,
) -> list[list[Word]]:
    """The timed words of each segment, in order (its best alternative's). Greedy decoding unless a decoder
    is given."""
    alternatives = decode_alternatives(rec, segments, decoder, batch_seconds, snap, steering)
    return [alts[0].words if alts else [] for alts in alternatives]
