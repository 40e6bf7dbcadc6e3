"""A door's stdout going away (`| head`) or filling up (a full disk): one line or a quiet exit, never a traceback.
Here, below asr.cli, so that `python -m asr.data` (asr.corpora) has it too."""

from __future__ import annotations

import errno
import functools
import os
import sys

FULL = (errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT)  # an output that fills up: one line, exit 2


def lost_output(e: OSError) -> bool:
    """Whether `e` is stdout's: gone (a closed pipe) or full, with no file name of its own."""
    return e.filename is None and (isinstance(e, BrokenPipeError) or e.errno in FULL)


def stdout_guarded(main):
    """A door's main(argv) -> exit status whose stdout may go away or fill up: a pipe closed early (`| head`) ends it
    quietly with 141 (128 + SIGPIPE, as a shell says of cat there); a full disk is one line and exit 2; Ctrl-C is
    "interrupted" and 130 (128 + SIGINT). Not a traceback, nor Python's "Exception ignored" as it flushes stdout."""

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        try:
            status = main(argv)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            status = 141
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            status = 130
        except OSError as e:
            if e.errno not in FULL:
                raise
            print(f"error: cannot write the output ({e.strerror})", file=sys.stderr)
            status = 2
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is left unflushed goes nowhere
        return status

    return guarded
