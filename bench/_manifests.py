"""The benches' checks of their input: a missing manifest stops the bench at once with one line that says how to
make it, instead of a traceback after the model has loaded; a model, LM or audio file the toolkit refuses is the
doors' one line and exit 2 (run_main).

    from _manifests import require_manifests, run_main  # bench/ is on sys.path when a bench runs as a script
    require_manifests(args.manifest)                    # exits with status 2 if it is not there
    sys.exit(run_main(main))                            # main's status; the toolkit's input errors: one line, 2
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

MAKE_AN4 = "make it with: bash recipes/an4/run.sh --stop-stage 1 (its stage 0 downloads AN4 where --data lacks it)"


def require_manifests(*paths: str | Path | None, how: str = MAKE_AN4) -> None:
    """Exit with status 2 and `error: PATH: no such manifest; HOW` on stderr for the first path (file or folder)
    that does not exist, or `error: PATH: no utterances in it: nothing to measure` for a JSONL manifest with no line
    (a bench printed results for nothing, crashed, or looped for ever). Empty paths ("" or None: none given) are
    skipped."""
    for path in paths:
        if path and not Path(path).exists():
            print(f"error: {path}: no such manifest; {how}", file=sys.stderr)
            sys.exit(2)
        if path and str(path).endswith(".jsonl") and Path(path).is_file() and not _has_a_line(Path(path)):
            print(f"error: {path}: no utterances in it: nothing to measure", file=sys.stderr)
            sys.exit(2)


def _has_a_line(path: Path) -> bool:
    """Whether the file holds a line that is not blank (read until the first one)."""
    with open(path, "rb") as f:
        return any(line.strip() for line in f)


def run_main(main: Callable[[], int | None]) -> int:
    """main()'s exit status (None: 0), or 2 with `error: ...` on stderr for what the toolkit refuses as input (a
    model, an LM, audio or a manifest), as python -m asr.transcribe says it."""
    from asr.audio import AudioError
    from asr.checkpoint import CheckpointError
    from asr.lm import LMError
    from asr.manifest import ManifestError

    try:
        return main() or 0
    except (AudioError, CheckpointError, LMError, ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
