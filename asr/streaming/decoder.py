"""CTC decoding chunk by chunk: StreamDecoder takes one utterance's log-probs as they come and can say its best
hypothesis at any time. Greedy, or asr.decoding's prefix beam search (with its LM) with the beam kept across
chunks, so the partials come from the beam; fed a whole utterance in any pieces, it ends where the file
decoder ends (asr.decoding.Decoder)."""

from __future__ import annotations

import numpy as np
import torch

from asr.decoding import Alignment, Decoder, Hypothesis, Steering
from asr.decoding.search import PrefixSearch
from asr.decoding.trie import PrefixTrie
from asr.text import transcript


class StreamDecoder:
    """One utterance: accept((T, V) log-probs) as often as needed, best() for the hypothesis so far.
    `steering` (hotwords, a grammar) holds for the utterance; a stream passes its own to each. The beam is the
    file decoder's best-only search, so asking for alternatives never changes the partials or the text: they
    are searched for when asked (Decoder.with_alternatives, over the log-probs accepted)."""

    def __init__(self, decoder: Decoder, steering: Steering | None = None):
        self.decoder = decoder
        self.frames = 0  # frames accepted
        self.parts: list[torch.Tensor] = []  # the log-probs accepted (for word times and confidences)
        self.tokens: list[int] = []  # greedy: emitted tokens and their frames
        self.token_frames: list[int] = []
        self.previous = decoder.vocab.blank  # greedy: the best class of the frame before
        self.steering = steering
        self.search = None
        if decoder.search is not None:  # asr.decoding.CTCBeamSearch: its configuration and LM fusion
            search = decoder.search
            self.search = PrefixSearch(PrefixTrie(decoder.vocab, search.fusion, steering), search.cfg)

    def accept(self, log_probs: torch.Tensor) -> None:
        """The next (T, V) log-probs of the utterance (T may be 0)."""
        if log_probs.shape[0] == 0:
            return
        self.parts.append(log_probs)
        if self.search is None:
            self._greedy(log_probs)
        else:
            self._beam(np.ascontiguousarray(log_probs.numpy(), dtype=np.float64))
        self.frames += log_probs.shape[0]

    def _greedy(self, log_probs: torch.Tensor) -> None:
        for t, best in enumerate(log_probs.argmax(dim=-1).tolist()):
            if best != self.previous and best != self.decoder.vocab.blank:
                self.tokens.append(best)
                self.token_frames.append(self.frames + t)
            self.previous = best

    def _beam(self, log_probs: np.ndarray) -> None:
        plan, tail = self.decoder.search.plan(log_probs)
        for t, run, blank, tokens in plan:
            if run is not None:
                self.search.blank_run(run)
            self.search.step(self.frames + t, blank, tokens)
        if tail is not None:  # a blank run split across chunks adds up to the same as one run
            self.search.blank_run(tail)

    def best(self) -> Alignment:
        """The best hypothesis so far (the beam's, scored as if the utterance ended here)."""
        hyps = self.best_hypothesis()
        return hyps[0].alignment() if hyps else Alignment((), ())

    def best_hypothesis(self) -> list[Hypothesis]:
        """The best so far (none where nothing can end here), without the search for its confidence: for
        partials. Greedy: the one path, confidence 1."""
        if self.search is None:
            tokens = tuple(self.tokens)
            return [Hypothesis(transcript(self.decoder.vocab, tokens), 0.0, tokens, tuple(self.token_frames), 0.0, 0.0)]
        return self.search.finish(self.decoder.vocab, 1)

    def hypotheses(self, nbest: int) -> list[Hypothesis]:
        """The best `nbest` (1 too) so far, best first, with their confidences (greedy: the one path,
        confidence 1); as the file decoder's with_alternatives gives them for the log-probs accepted."""
        best = self.best_hypothesis()
        if self.search is None:
            return best
        log_probs = np.ascontiguousarray(self.log_probs().numpy(), dtype=np.float64)  # (T, V)
        return self.decoder.with_alternatives(best, log_probs, self.steering, nbest)

    def log_probs(self) -> torch.Tensor:
        """(T, V): everything accepted."""
        return torch.cat(self.parts) if self.parts else torch.zeros(0, len(self.decoder.vocab))
