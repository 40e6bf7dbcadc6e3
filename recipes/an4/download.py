"""Download AN4 (CMU's census database: 948 training and 130 test utterances, 16 kHz; free for any use) in its
original layout: resumable, checksummed, extracted all or nothing.

    python recipes/an4/download.py --out data/an4        # then: bash recipes/an4/run.sh --data data/an4

The archive (an4_sphere.tar.gz, 64 MB of NIST SPHERE audio) goes next to OUT, through an4_sphere.tar.gz.part,
which a second run continues (asr.download). Once its SHA-256 matches, it is extracted beside OUT and moved to
OUT whole, so OUT holds all of AN4 (etc/, wav/) or nothing. An OUT that already holds AN4 is left as it is.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from asr.download import Checksum, DownloadError, download_verified, extract_tarball

AN4_URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"  # http://www.speech.cs.cmu.edu/databases/an4/
ARCHIVE = "an4_sphere.tar.gz"
# CMU publishes no checksum. This SHA-256 is the one a public setup pins for NVIDIA's copy of the same archive
# (https://dldata-public.s3.us-east-2.amazonaws.com/an4_sphere.tar.gz); it could not be checked against the file
# here (no network). --sha256 replaces it.
AN4_SHA256 = Checksum("sha256", "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12")


def holds_an4(folder: Path) -> bool:
    return (folder / "etc" / "an4_train.transcription").is_file() and (folder / "wav").is_dir()


def download_an4(out: Path, url: str = AN4_URL, checksum: Checksum | None = AN4_SHA256, wait: float = 2.0) -> Path:
    """AN4 in its original layout into `out` (etc/, wav/); returns out. Nothing is done where out holds it."""
    if holds_an4(out):
        return out
    if out.exists() and any(out.iterdir()):
        raise DownloadError(f"{out}: holds other files, not AN4; give --out a new or empty folder")
    archive = download_verified(url, out.parent / ARCHIVE, checksum, wait)
    staging = out.parent / f".{out.name}.partial"  # moved to out once whole
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    extract_tarball(archive, staging)
    if not holds_an4(staging / "an4"):
        raise DownloadError(f"{archive}: holds no an4/etc/an4_train.transcription and an4/wav/: not AN4's archive")
    if out.exists():
        out.rmdir()  # empty
    (staging / "an4").replace(out)
    shutil.rmtree(staging)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--out", default="data/an4", help="where AN4's etc/ and wav/ go (the archive goes beside it)")
    p.add_argument("--url", default=AN4_URL, help="the archive's address (e.g. a mirror of your own)")
    p.add_argument("--sha256", default=AN4_SHA256.digest, help="the archive's SHA-256, hex (default: the pinned one)")
    p.add_argument("--remove-archive", action="store_true", help="delete the archive once AN4 is extracted")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        download_an4(out, args.url, Checksum("sha256", args.sha256.lower()))
    except (DownloadError, OSError) as e:
        hint = " (if the file at --url is AN4 but another build of it, --sha256 HEX accepts it)" \
            if "did not match" in str(e) else ""
        print(f"error: {e}{hint}", file=sys.stderr)
        return 1
    if args.remove_archive:
        (out.parent / ARCHIVE).unlink(missing_ok=True)
    print(f"AN4: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
