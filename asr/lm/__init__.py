"""Word n-gram language models for the beam search: read and write ARPA files, estimate Kneser-Ney
models, or hand large files to KenLM. `python -m asr.lm build|score|mix` is the command line.

    lm = load_lm("lm.arpa.gz")                     # NgramLM, or KenLMScorer for binaries / huge files
    logprob, state = lm.score(lm.begin_state(), "hello")

ARPA files hold log10 probabilities; every score returned is a natural log. Words are matched as they
are: an LM for this package's vocabulary is lower-case (asr.text.normalize_text, as `build` does).
Building (interpolated modified Kneser-Ney, pure Python) suits transcripts of a few million words;
for larger corpora use KenLM's lmplz.

interface.py    LanguageModel (what the beam search needs), LMError, ScoreCache
arpa.py         NgramLM; read_arpa / write_arpa
kneser_ney.py   build_kneser_ney
kenlm_scorer.py KenLMScorer (optional `kenlm` module)
interpolate.py  interpolate (two models as one back-off model), perplexity
load.py         load_lm, read_sentences, sentence_logprob
__main__.py     the command line
"""

from asr.lm.arpa import NgramLM, arpa_vocabulary, read_arpa, write_arpa
from asr.lm.interface import LanguageModel, LMError, ScoreCache
from asr.lm.interpolate import interpolate, perplexity
from asr.lm.kenlm_scorer import KenLMScorer
from asr.lm.kneser_ney import build_kneser_ney
from asr.lm.load import load_lm, read_sentences, sentence_logprob

__all__ = [
    "KenLMScorer", "LMError", "LanguageModel", "NgramLM", "ScoreCache", "arpa_vocabulary", "build_kneser_ney",
    "interpolate", "load_lm", "perplexity", "read_arpa", "read_sentences", "sentence_logprob", "write_arpa",
]
