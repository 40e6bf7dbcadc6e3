"""The benches' one check for their input manifests: a missing one stops the bench at once with one line that
says how to make it, instead of a traceback after the model has loaded.

    from _manifests import require_manifests       # bench/ is on sys.path when a bench runs as a script
    require_manifests(args.manifest)               # exits with status 2 if it is not there
"""

from __future__ import annotations

import sys
from pathlib import Path

MAKE_AN4 = "make it with: bash recipes/an4/run.sh --stop-stage 1 (its stage 0 downloads AN4 where --data lacks it)"


def require_manifests(*paths: str | Path | None, how: str = MAKE_AN4) -> None:
    """Exit with status 2 and `error: PATH: no such manifest; HOW` on stderr for the first path (file or folder)
    that does not exist. Empty paths ("" or None: none given) are skipped."""
    for path in paths:
        if path and not Path(path).exists():
            print(f"error: {path}: no such manifest; {how}", file=sys.stderr)
            sys.exit(2)
