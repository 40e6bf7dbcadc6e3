"""One live stream, end to end: samples in, partial hypotheses and final results (with word times) out.

    stream = Transcriber(rec, Decoder(DecodingConfig("beam", lm=...), rec.vocab))
    for samples in microphone_blocks():     # (N,) float32 at 16 kHz, any N
        for event in stream.feed(samples):  # Partial(text) when the hypothesis changes, Final(text, words)
            ...                             # at each endpoint (a pause, asr.streaming.endpoint)
    events = stream.finish()                # the last Final

The acoustic model runs on without a break over the whole stream (its forward state carries on through
the pauses, as over one long file); an endpoint ends the decoding of one utterance and starts the next,
at the output frame where the pause was heard. Many streams share a model through accept_audio /
step_streams / take (asr.serve's WebSocket endpoint batches them so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch

from asr.decoding import Decoder, Hypothesis, Steering
from asr.longform.decode import Alternative, label_words
from asr.longform.timestamps import Word, timed_words
from asr.model import SUBSAMPLING, output_frame_seconds
from asr.recognizer import Recognizer
from asr.streaming.acoustic import ModelStream, step_streams
from asr.streaming.decoder import StreamDecoder
from asr.streaming.endpoint import EndpointConfig, Endpointer
from asr.streaming.features import FeatureStream
from asr.streaming.voicing import Voicing


@dataclass(frozen=True)
class Partial:
    text: str  # the best hypothesis of the utterance so far
    audio_s: float  # seconds of audio the stream had been given when it was formed

    def to_dict(self) -> dict:
        """Vosk's partial result: {"partial": text}."""
        return {"partial": self.text}


def vosk_words(words: list[Word]) -> list[dict]:
    return [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3), "conf": round(w.confidence, 4)}
            for w in words]


@dataclass(frozen=True)
class Final:
    text: str  # the utterance's transcript
    words: list[Word]  # with start and end in seconds from the stream's start, and confidence
    audio_s: float  # seconds of audio the stream had been given when it was formed
    alternatives: list[Alternative] = field(default_factory=list)  # the N best, when asked for (best first)

    def to_dict(self, words: bool = True) -> dict:
        """Vosk's result: {"result": [{"word", "start", "end", "conf"}, ...], "text": text} ("result" only with
        `words`), or with alternatives {"alternatives": [{"confidence", "result", "text"}, ...]}."""
        if self.alternatives:
            return {"alternatives": [{"confidence": round(a.confidence, 4),
                                      **({"result": vosk_words(a.words)} if words else {}), "text": a.text}
                                     for a in self.alternatives]}
        return {**({"result": vosk_words(self.words)} if words else {}), "text": self.text}


class Transcriber:
    """A stream of one recogniser (an LC-BLSTM model): feed samples, get Partial and Final events."""

    def __init__(self, rec: Recognizer, decoder: Decoder, endpoint: EndpointConfig | None = EndpointConfig(),
                 steering: Steering | None = None, alternatives: int = 0):
        self.rec, self.decoder = rec, decoder
        self.steering = steering  # hotwords, a grammar: this stream's own
        self.alternatives = alternatives  # N > 0: each Final lists its N best (Vosk's max_alternatives)
        self.features = FeatureStream(rec.frontend)
        self.model = ModelStream(rec.model)
        self.endpointer = Endpointer(endpoint) if endpoint is not None else None
        self.frame_s = output_frame_seconds(rec.frontend.cfg)
        limit = (endpoint or EndpointConfig()).max_utterance_s
        self.max_frames = max(1, round(limit / self.frame_s))  # a longer utterance ends without a pause
        self.samples_per_frame = SUBSAMPLING * rec.frontend.cfg.hop_length
        self.voicing = Voicing(rec.frontend.cfg.hop_length, (endpoint or EndpointConfig()).segment)
        self.cuts: list[int] = []  # output frames where utterances end, not yet reached by the model
        self.utterance = StreamDecoder(decoder, steering)
        self.start = 0  # output frame where the current utterance starts
        self.shown = ""  # the last partial's text
        self.samples = 0
        self.done = False

    def accept_audio(self, samples: np.ndarray) -> None:
        """(N,) float32 samples at the model's rate (16 kHz): queued for the model, endpoints noted."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.samples += len(samples)
        self.voicing.accept(samples)
        if self.endpointer is not None:
            self.cuts += [round(end / self.samples_per_frame) for end in self.endpointer.accept(samples)]
        self.model.accept(self.features.accept(samples))

    def finish_audio(self) -> None:
        """The stream has ended: its last frames go to the model."""
        self.model.accept(self.features.finish(), final=True)
        self.done = True

    def take(self, log_probs: torch.Tensor) -> list[Partial | Final]:
        """The model's next (T, V) log-probs (step_streams) -> the events they make."""
        events: list[Partial | Final] = []
        while self.cuts and self.start + self.utterance.frames + log_probs.shape[0] >= self.cuts[0]:
            cut = self.cuts.pop(0) - self.start - self.utterance.frames  # frames of log_probs before the cut
            self.utterance.accept(log_probs[: max(cut, 0)])
            log_probs = log_probs[max(cut, 0) :]
            events += self._final(keep_empty=False)
        while self.utterance.frames + log_probs.shape[0] >= self.max_frames:  # speech without a pause: cut it
            room = self.max_frames - self.utterance.frames
            self.utterance.accept(log_probs[:room])
            log_probs = log_probs[room:]
            events += self._final(keep_empty=False)
        self.utterance.accept(log_probs)
        if self.done and not self.model.ready():
            events += self._final(keep_empty=True)
        elif len(log_probs) and (text := self._best_text()) != self.shown:
            self.shown = text
            events.append(Partial(text, self.samples / self.rec.frontend.cfg.sample_rate))
        return events

    def feed(self, samples: np.ndarray) -> list[Partial | Final]:
        """accept_audio, then run the model on what is ready: the events."""
        self.accept_audio(samples)
        return self.take(step_streams([self.model])[0])

    def finish(self) -> list[Partial | Final]:
        """The end of the stream: the last events, a Final among them."""
        self.finish_audio()
        return self.take(step_streams([self.model])[0])

    def reset(self) -> list[Final]:
        """End the utterance now, where the model has heard to (audio after that, waiting for the model's right
        context, goes to the next one): its Final, an empty one if nothing was heard. The stream goes on."""
        return self._final(keep_empty=True)

    def events(self, blocks: Iterable[np.ndarray]) -> Iterator[Partial | Final]:
        """Every event of a stream of sample blocks, as each block comes, then those of its end."""
        for block in blocks:
            yield from self.feed(block)
        yield from self.finish()

    def _best_text(self) -> str:
        hyps = self.utterance.best_hypothesis()
        return hyps[0].text if hyps else ""

    def _final(self, keep_empty: bool) -> list[Final]:
        hyps = self.utterance.hypotheses(self.alternatives) if self.alternatives else self.utterance.best_hypothesis()
        alternatives = [self._timed(h) for h in hyps]
        words = alternatives[0].words if alternatives else []
        self.start += self.utterance.frames
        self.voicing.forget_before(self.start * SUBSAMPLING)
        self.utterance = StreamDecoder(self.decoder, self.steering)
        self.shown = ""
        text = " ".join(w.word for w in words)
        if not text and not keep_empty:
            return []
        kept = alternatives if self.alternatives else []
        return [Final(text, words, self.samples / self.rec.frontend.cfg.sample_rate, kept)]

    def _timed(self, hyp: Hypothesis) -> Alternative:
        """A hypothesis of the utterance ending now, its words timed from the stream's start and snapped to the
        speech around them, as in file mode."""
        first = self.start * SUBSAMPLING  # the utterance's first feature hop in the stream
        voiced = self.voicing.voiced(first, first + self.utterance.frames * SUBSAMPLING)
        words = timed_words(self.utterance.log_probs(), hyp.alignment(), self.rec.vocab, self.frame_s,
                            self.start * self.frame_s, voiced) if hyp.tokens else []
        words = label_words(words, self.steering)
        return Alternative(" ".join(w.word for w in words), hyp.confidence, words)
