"""CTC decoding over (B, T, V) log-probs + (B,) lengths: plain functions and small objects over
log-probs; the model knows nothing of them.

    greedy_decode(log_probs, lengths, vocab)                  # texts
    beam_search(log_probs, lengths, vocab, BeamSearchConfig(), lm)   # n-best hypotheses per utterance
    Decoder(DecodingConfig("beam", lm="lm.arpa.gz"), vocab)   # what the doors use: -> Alignments
    decoder(log_probs, lengths, decoder.steer(hotwords=[("rubout", None)], phrase_list=None))   # steered, per call

greedy.py   greedy alignments and texts
config.py   BeamSearchConfig, DecodingConfig
trie.py     the prefixes of the beam search and their LM scores
hotwords.py the hotword phrases' whole-word matcher (a bonus per matched token, taken back on a break)
grammar.py  a phrase list in Vosk's shape ([unk] for any other word) as a matcher
steering.py Steering (hotwords and a grammar, per call), its checks and parsers (SteeringError)
search.py   the prefix search over one utterance
beam.py     CTCBeamSearch: plans the frames, runs the search
decoder.py  Decoder and the decoding flags (--decoder, --beam-size, --lm, --alpha, --beta)
"""

from asr.decoding.beam import CTCBeamSearch, beam_decode, beam_search
from asr.decoding.config import BeamSearchConfig, DecodingConfig
from asr.decoding.decoder import Decoder, add_decoding_flags, decoding_config
from asr.decoding.greedy import Alignment, check_log_probs, greedy_alignments, greedy_decode, greedy_ids
from asr.decoding.search import Hypothesis
from asr.decoding.steering import (Steering, SteeringError, make_steering, parse_hotword, read_grammar,
                                   read_hotwords, split_hotwords)

__all__ = [
    "Alignment", "BeamSearchConfig", "CTCBeamSearch", "Decoder", "DecodingConfig", "Hypothesis", "Steering",
    "SteeringError", "add_decoding_flags", "beam_decode", "beam_search", "check_log_probs", "decoding_config",
    "greedy_alignments", "greedy_decode", "greedy_ids", "make_steering", "parse_hotword", "read_grammar",
    "read_hotwords", "split_hotwords",
]
