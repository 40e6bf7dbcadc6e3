"""Issue 20's attacks on `python -m asr.serve`, each against a real server on 127.0.0.1 (its own process, default
flags unless said), in bounded loops; each prints its figure beside the issue's target.

    python bench/serve_faults.py [--manifest manifests/an4/test.jsonl] [--threads 1] [--only NAME,NAME]
                                 [--serve-flags "--stream-batch-seconds 16"]

  stream_fairness  a real-time stream (0.1 s messages at real-time pace) alone, then beside 2 streams that send
                   5 s messages back to back: its p95 answer time beside / alone (target <= 2)
  stream_beside_uploads  the same stream alone, then beside 4 clients uploading 60 s files back to back: its p95
                   answer time beside / alone (no target), and the uploads' throughput with the stream and after it
  slow_uploads     1000 uploads (20 from each of 50 addresses in 127.0.1.0/24) that send their headers, then a
                   byte every 15 s: a normal request's time while they are open (target <= 1 s), and the log
                   lines per slow client once they are dropped (target <= 10)
  disconnects      300 clients that leave mid-upload: log lines per client (target <= 10)
  sigterm          SIGTERM with a stalled upload and a request in flight: seconds to exit (target <= the grace,
                   10 s) and the request's status (target 200)
  poison           a float WAV of 3e38 among 15 good requests: its answer (target 400 corrupt_audio) and the
                   segments run again (target 0)
  abandoned        a 60-minute Opus upload given up 3 s after it is sent: seconds from the disconnect until its
                   work stops (target <= 1); in a second run, a short request sent at the disconnect (target <= 0.5 s)
  memory           8 concurrent 10-minute uploads: the server's peak RSS (target <= 800 MB)
  idle_slots       64 streams (8 addresses) that send an empty message every 2 s, server --stream-idle-s 5: streams
                   still held after 8 s (target 0)
  key_in_log       with --api-key, a stream sending the key as the page does and one with ?api_key=: times the key
                   is in the log (target 0)

Clip audio comes from the manifest (AN4 test). Prints the machine's load average first: on a shared machine every
time is longer than on a free one. Then `name=value (target ...)` lines.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from _manifests import require_manifests, run_main  # bench/ is on sys.path when a bench runs as a script
from _serve_attacks import ATTACKS  # the attacks, one function each

from serve_load import start_server


@contextmanager
def server(args, log: Path, *flags: str) -> Iterator[tuple]:
    """A server with the bench's model flags and `flags`; (process, URL, log); stopped at the end."""
    proc, url = start_server(log, "--threads", str(args.threads), *shlex.split(args.serve_flags), *flags)
    try:
        yield proc, url, log
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def run(names: list[str], args, folder: Path) -> list[tuple[str, object, str]]:
    """Each attack's figures: (name, value, target)."""
    rows = []
    for name in names:
        attack: Callable = ATTACKS[name]
        print(f"{name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        rows += attack(args, folder, lambda *flags, log=folder / f"{name}.log": server(args, log, *flags))
        print(f"{name}: {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--manifest", default="manifests/an4/test.jsonl", help="clips to build the uploads and streams from")
    p.add_argument("--threads", type=int, default=1, help="the servers' --threads")
    p.add_argument("--only", default=",".join(ATTACKS), help="attacks to run, comma-separated")
    p.add_argument("--serve-flags", default="", help='more python -m asr.serve flags for every server, e.g. '
                                                     '"--stream-batch-seconds 16"')
    args = p.parse_args()
    require_manifests(args.manifest)
    names = [n for n in args.only.split(",") if n]
    if unknown := [n for n in names if n not in ATTACKS]:
        sys.exit(f"error: unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    print(f"load_average={' '.join(f'{x:.1f}' for x in os.getloadavg())} cores={os.cpu_count()} "
          "(a shared machine: times are longer than on a free one)")
    with tempfile.TemporaryDirectory(prefix="serve-faults-") as tmp:
        rows = run(names, args, Path(tmp))
    for name, value, target in rows:
        print(f"{name}={value:.3g} ({target})" if isinstance(value, float) else f"{name}={value} ({target})")


if __name__ == "__main__":
    sys.exit(run_main(main))
