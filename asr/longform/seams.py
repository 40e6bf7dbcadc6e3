"""Where segments overlap: each keeps the words of its own part, with their times inside that part.

    words = clip_words(words, seg.keep_start_s, seg.keep_end_s)

Where the segmenter has to cut speech at no clear pause (segment.py), the two segments are each decoded
`overlap_s` further into the other, so that the model hears a word cut in half whole, with context either
side. Each window then keeps only the tokens emitted in its own part (asr.longform.timestamps.kept_tokens):
a token is emitted at one frame, so it is kept by exactly one window, never by both and never by neither.
Word edges moved onto the speech (snap_to_speech) may still reach past the cut; clip_words holds them to the
segment's part, so that the words of neighbouring segments never overlap.
"""

from __future__ import annotations

from dataclasses import replace

from asr.longform.timestamps import Word

MIN_WORD_S = 0.01  # a clipped word keeps at least this long (one 10 ms step)


def clip_words(words: list[Word], start: float, end: float) -> list[Word]:
    """Words (in order, in seconds) with their edges held to [start, end]; a word pushed out entirely keeps
    MIN_WORD_S at the nearer edge."""
    out = []
    for w in words:
        lo = min(max(w.start, start), end - MIN_WORD_S)
        hi = max(min(w.end, end), lo + MIN_WORD_S)
        out.append(w if (lo, hi) == (w.start, w.end) else replace(w, start=lo, end=hi))
    return out
