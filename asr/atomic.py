"""Files written whole or not at all: a torch object (save_atomic), and a copy that is kept only if what needs it is
written too (copied). Each is written under a temporary name in the target's folder, then renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from asr.manifest import file_in_the_way

__all__ = ["copied", "save_atomic"]


def save_atomic(obj: dict, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename: never a half-written file. An OSError
    whose message names `path` where a folder stands there or a file stands where its folder would be."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file to write to")
    if path.exists() and not path.is_file():  # a rename would put a file in a device's or a pipe's place
        raise FileExistsError(f"{path}: not a regular file (a device or a pipe); write to a file")
    if blocker := file_in_the_way(path.parent):
        raise NotADirectoryError(f"{path}: cannot be written: {blocker} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def copied(pair: tuple[Path, Path] | None):
    """pair's (source, target) copy made (whole or not at all, unless the target is there already) before the
    with-block writes what needs it, and taken back if the block fails: asr.checkpoint's model and the LM it names
    are both written or neither is."""
    made = bool(pair) and not pair[1].exists()
    if made:
        pair[1].parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=pair[1].parent, prefix=pair[1].name, suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(pair[0], tmp)
            os.chmod(tmp, 0o644)  # as save_atomic's
            os.replace(tmp, pair[1])
        finally:
            Path(tmp).unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        if made:
            pair[1].unlink(missing_ok=True)
        raise
