"""Loading a word LM from a file (pure-Python ARPA reader or KenLM), reading corpora, scoring sentences."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

from asr.lm.arpa import NO_UNK_LOGPROB10, numbered_lines, read_arpa
from asr.lm.interface import LanguageModel, LMError
from asr.lm.kenlm_scorer import KenLMScorer, is_kenlm_binary

AUTO_KENLM_BYTES = 50_000_000  # backend="auto" hands ARPA files larger than this to kenlm, if installed


def _kenlm_installed() -> bool:
    return importlib.util.find_spec("kenlm") is not None


def load_lm(path: str | Path, backend: str = "auto") -> LanguageModel:
    """An ARPA (plain/gzip) or KenLM binary file -> a scorer.

    backend: "python" (NgramLM, ARPA only), "kenlm" (needs the kenlm module), or "auto": kenlm for
    binaries and for ARPA files over AUTO_KENLM_BYTES when kenlm is installed, else python.
    """
    path = Path(path)
    if backend not in ("auto", "python", "kenlm"):
        raise ValueError(f"backend must be 'auto', 'python' or 'kenlm', got {backend!r}")
    if not path.is_file():
        kind = "a folder, not a language model file" if path.is_dir() else "no such language model file"
        raise LMError(f"{path}: {kind}")
    binary = is_kenlm_binary(path)
    if backend == "auto":
        big = binary or path.stat().st_size > AUTO_KENLM_BYTES
        backend = "kenlm" if big and _kenlm_installed() else "python"
    if backend == "kenlm":
        return KenLMScorer(path)
    if binary:
        raise LMError(f"{path}: a KenLM binary; load it with backend='kenlm' (pip install kenlm)")
    lm = read_arpa(path)
    if lm.unk is None:
        print(f"warning: {path}: no <unk> in this LM: a word it does not know costs log10 {NO_UNK_LOGPROB10:g} (as in "
              "KenLM), so speech it does not know may come out as one long made-up word; python -m asr.lm build "
              "gives <unk>", file=sys.stderr)
    return lm


def read_sentences(path: str | Path, manifest: bool = False) -> Iterator[str]:
    """Lines of a text file, or the "text" fields of a JSONL manifest (manifest=True; LMError(path:line) for a line
    without a string there)."""
    if manifest:
        from asr.manifest import ManifestError, numbered_rows

        try:
            rows = numbered_rows(path, required=("text",))
        except ManifestError as e:
            raise LMError(str(e)) from e
        for lineno, row in rows:
            if not isinstance(row["text"], str):
                raise LMError(f'{path}:{lineno}: "text" must be a string, got {type(row["text"]).__name__}')
            yield row["text"]
        return
    for _, line in numbered_lines(Path(path)):
        yield line


def first_json_object(path: str | Path) -> dict | None:
    """The first non-blank line of a text file parsed as JSON, if it is a JSON object (a JSONL manifest given where
    text was expected starts so); None for anything else, or a file that cannot be read (reading it says why)."""
    try:
        line = next((text for _, text in numbered_lines(Path(path)) if text), "")
    except LMError:
        return None
    if not line.startswith("{"):
        return None
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) else None


def sentence_logprob(lm: LanguageModel, words: Iterable[str]) -> float:
    """Natural-log probability of a whole sentence, </s> included."""
    state, total = lm.begin_state(), 0.0
    for w in words:
        lp, state = lm.score(state, w)
        total += lp
    return total + lm.final_score(state)
