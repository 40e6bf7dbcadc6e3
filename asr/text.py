"""Text: the Vocab protocol (what the model, data and decoders need of a vocabulary) and its two kinds,
CharVocab (characters) and BpeVocab (SentencePiece pieces); text normalisation; transcript(), the one place
where token ids become words separated by single spaces."""

from __future__ import annotations

import io
import re
import string
import unicodedata
from typing import ClassVar, Iterable, Protocol

BLANK = "<blank>"  # CTC blank, always index 0
CHARACTERS = [BLANK, " ", "'", *string.ascii_lowercase]

_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")


def _fold(text: str) -> str:
    """Lower case, compatibility forms and accents folded (NFKD, combining marks dropped: "Café" -> "cafe"),
    typographic apostrophes as "'"."""
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


def normalize_text(text: str) -> str:
    """Lower-case, accents stripped, punctuation and digits to spaces (apostrophes kept), single spaces,
    stripped. What it cannot spell (digits, other scripts) is lost: lost_characters says which."""
    text = _fold(text).replace("-", " ")
    text = _NOT_ALLOWED.sub(" ", text)
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)  # quotes, not apostrophes inside words
    return _SPACES.sub(" ", text).strip()


def lost_characters(text: str) -> str:
    """The letters and digits of `text` that normalize_text drops because the vocabulary cannot spell
    them ("6 8 3" -> "683", "Straße" -> "ß"); punctuation and spacing are not counted. Each once, in order."""
    lost = (c for c in _fold(text) if c.isalnum() and not ("a" <= c <= "z"))
    return "".join(dict.fromkeys(lost))


class Vocab(Protocol):
    """What the model, the decoders and the data need of a vocabulary: CharVocab and BpeVocab both are one.
    Index 0 is the CTC blank; len(vocab) is the number of output classes."""

    tokens: list[str]  # index -> token (characters, or SentencePiece pieces), BLANK first
    index: dict[str, int]  # token -> index
    blank: int  # index of the CTC blank: 0

    def __len__(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Iterable[int]) -> str: ...


def transcript(vocab: Vocab, ids: Iterable[int]) -> str:
    """Token ids (blanks and repeats already removed) -> words separated by single spaces."""
    return " ".join(vocab.decode(ids).split())


class CharVocab:
    """Index <-> character; index 0 is the CTC blank."""

    blank: ClassVar[int] = 0

    def __init__(self, tokens: list[str] = CHARACTERS):
        if not tokens or tokens[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}, got {tokens[:3]}")
        if twice := sorted({t for t in tokens if tokens.count(t) > 1}):
            raise ValueError(f"vocabulary holds {twice[0]!r} more than once")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Normalised text -> token ids (characters outside the vocabulary are dropped)."""
        return [self.index[c] for c in normalize_text(text) if c in self.index]

    def decode(self, ids) -> str:
        """Token ids -> text; blanks are skipped, nothing is collapsed (see asr.decoding for CTC)."""
        return "".join(self.tokens[i] for i in ids if i != self.blank)


def _sentencepiece():
    try:
        import sentencepiece  # optional: pip install 'asr[bpe]'
    except ImportError as e:
        raise ImportError("BPE tokens need the sentencepiece package: pip install 'asr[bpe]'") from e
    return sentencepiece


class BpeVocab:
    """SentencePiece BPE pieces as CTC classes, with CharVocab's interface: index 0 is the CTC blank and
    index i + 1 is piece i of the model. Text is normalised as for CharVocab before it is cut into pieces."""

    blank: ClassVar[int] = 0

    def __init__(self, model: bytes):
        self.model = bytes(model)  # the serialized SentencePiece model: all that is needed to rebuild this
        self.processor = _sentencepiece().SentencePieceProcessor(model_proto=self.model)
        pieces = [self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())]
        self.tokens = [BLANK, *pieces]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self._unknown = self.processor.unk_id() + 1  # -1 + 1 = 0 (the blank) when the model has no <unk>

    @classmethod
    def from_file(cls, path) -> "BpeVocab":
        """Raises ValueError naming the path if the file is missing or not a SentencePiece model."""
        try:
            with open(path, "rb") as f:
                return cls(f.read())
        except OSError as e:
            raise ValueError(f"{path}: cannot read the tokenizer ({e.strerror or e})") from e
        except RuntimeError as e:  # sentencepiece's error for bytes that are not a model
            raise ValueError(f"{path}: not a SentencePiece model ({str(e).strip().splitlines()[0]})") from e

    def __getstate__(self) -> dict:  # DataLoader workers started by spawn get the bytes, not the C++ object
        return {"model": self.model}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model"])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Normalised text -> piece ids + 1 (pieces unknown to the model are dropped)."""
        ids = (i + 1 for i in self.processor.encode(normalize_text(text)))
        return [i for i in ids if i not in (self._unknown, self.blank)]

    def decode(self, ids) -> str:
        """Token ids -> text; blanks (and <unk>) are skipped, nothing is collapsed (see asr.decoding for CTC)."""
        return self.processor.decode([int(i) - 1 for i in ids if i not in (self.blank, self._unknown)])


def train_bpe(texts, vocab_size: int, max_sentences: int = 0, threads: int = 1) -> bytes:
    """A SentencePiece BPE model (serialized) learnt from normalised texts. vocab_size counts pieces, <unk>
    included; the CTC blank comes on top. max_sentences > 0 learns from a sample of that many sentences."""
    spm = _sentencepiece()
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=(normalize_text(t) for t in texts), model_writer=out, vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, hard_vocab_limit=False,
        input_sentence_size=max_sentences, shuffle_input_sentence=max_sentences > 0, num_threads=threads,
        minloglevel=2,
    )
    return out.getvalue()


def load_vocab(tokenizer: str = "") -> Vocab:
    """BPE pieces of a SentencePiece model file, or characters when tokenizer is ""."""
    return BpeVocab.from_file(tokenizer) if tokenizer else CharVocab()
