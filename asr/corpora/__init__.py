"""Corpora in the common layouts -> our manifests, checked on the way in (`python -m asr.data import`), and
manifests split into train/dev/test (`python -m asr.data split`). One module per layout, each with a prepare_*
function that reads the layout, checks every utterance (transcript, id, audio file against asr.audio's limits,
duration, segment bounds: one line naming the file and row) and returns {set name: utterances}, written to
OUT_DIR/<set>.jsonl when an out_dir is given, as lhotse's recipes do:

    sets = prepare_audiofolder("../shared/data/fsdd", "data/fsdd")      # {"all": [Utterance, ...]}
    parts = split_utterances(sets["all"], SplitSettings(test_speakers=("george",), dev_fraction=0.1), "fsdd")

rows.py         Row (an utterance as a corpus lists it), check_rows / prepare_sets, CorpusError, ImportSettings
cuts.py         segments of longer recordings cut to files of their own (written aside, then moved into place)
output.py       what an import may not write over, and the sets a split adds (written with the corpus's own)
tables.py       CSV/TSV, JSON lines (plain or gzip) and Kaldi files, read with line numbers
audiofolder.py  Hugging Face audiofolder (metadata.csv / metadata.jsonl)
nemo.py         NeMo manifests                        lhotse.py       lhotse recordings + supervisions
kaldi.py        Kaldi data directories                commonvoice.py  Common Voice (*.tsv + clips/)
librispeech.py  LibriSpeech (recipes/librispeech too) textfolder.py   audio with same-named .txt / .lab files
formats.py      FORMATS (name -> prepare_*), detect_format
split.py        SplitSettings, split_utterances
cli.py          the command line
"""

from asr.corpora.audiofolder import prepare_audiofolder
from asr.corpora.commonvoice import prepare_commonvoice
from asr.corpora.formats import FORMATS, detect_format
from asr.corpora.kaldi import prepare_kaldi
from asr.corpora.lhotse import prepare_lhotse
from asr.corpora.librispeech import prepare_librispeech
from asr.corpora.nemo import prepare_nemo
from asr.corpora.rows import CorpusError, ImportSettings, Row, check_rows, prepare_sets
from asr.corpora.split import SplitSettings, split_utterances
from asr.corpora.textfolder import prepare_textfolder

__all__ = [
    "FORMATS", "CorpusError", "ImportSettings", "Row", "SplitSettings",
    "check_rows", "detect_format", "prepare_audiofolder", "prepare_commonvoice", "prepare_kaldi", "prepare_lhotse",
    "prepare_librispeech", "prepare_nemo", "prepare_sets", "prepare_textfolder", "split_utterances",
]
