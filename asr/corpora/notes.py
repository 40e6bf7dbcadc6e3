"""The lines an import says about a set as a whole: files at differing sample rates, a set with nothing usable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from asr.audio import SAMPLE_RATE, AudioError, AudioInfo

if TYPE_CHECKING:  # rows.py imports this module
    from asr.corpora.rows import Row


def rates_note(name: str, rows: list[Row], infos: dict[Path, AudioInfo | AudioError]) -> str | None:
    """One line when the files' sample rates differ, naming the first file at the less common rate and its row."""
    rate_of = {r.where: i.sample_rate for r in rows if isinstance(i := infos.get(r.audio), AudioInfo)}
    counts = Counter(rate_of.values())
    if len(counts) < 2:
        return None
    rare = min(counts, key=lambda r: (counts[r], r))
    row = next(r for r in rows if rate_of.get(r.where) == rare)
    listed = ", ".join(f"{n} at {rate} Hz" for rate, n in counts.most_common())
    return (f"note: {name}: the files' sample rates differ ({listed}; e.g. {row.audio}, listed at {row.where}); "
            f"all are resampled to {SAMPLE_RATE} Hz when read")


def no_utterances(name: str, rows: list[Row], source: str | Path) -> str:
    """The error for a set left with no usable utterance: named by the first file listing its rows (and how many
    more there are), or, for a set that lists none, by the corpus it comes from (`source`)."""
    if not rows:
        return f"{source}: set {name!r} lists no utterances"
    files = sorted({row.where.rsplit(":", 1)[0] for row in rows})
    more = f" (and {len(files) - 1} more file{'s' if len(files) > 2 else ''})" if len(files) > 1 else ""
    return f"{files[0]}{more}: none of the {len(rows)} utterances listed is usable"
