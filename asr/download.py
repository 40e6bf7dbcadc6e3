"""Downloads for the recipes' download scripts: resumable (HTTP Range), checked against a published digest,
and extracted without letting an archive write outside its folder.

    archive = download_verified(url, Path("data/an4_sphere.tar.gz"), Checksum("sha256", "a052..."))
    extract_tarball(archive, Path("data/staging"))

A download goes to NAME.part and continues it when run again (or after a dropped connection). A file whose
digest does not match is deleted and downloaded once more, then refused.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20  # bytes read and hashed at a time
TIMEOUT = 60.0  # seconds without data before a connection counts as dropped
CONNECTION_TRIES = 5  # connections per file (each continues the .part) before giving up


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # "md5" or "sha256", a hashlib name
    digest: str  # lower-case hex


class DownloadError(Exception):
    """A file could not be downloaded, verified or extracted; the message names it."""


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _open(url: str, offset: int):
    """The response to GET url, from byte `offset` on (a Range request when offset > 0); None when the server
    says that range is past the end, i.e. the partial file is already whole."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e


def fetch_once(url: str, part: Path) -> bool:
    """One connection: append to `part` what the server sends from part's current size on.
    Returns True when the file is complete, False when the connection dropped before the end."""
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, have)
    if response is None:
        return True
    with response:
        if have and getattr(response, "status", None) != 206:  # the server ignored the Range header: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5],
            file=sys.stderr, dynamic_ncols=True,
        ) as bar:
            try:
                while block := response.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException):
                return False
    return total is None or part.stat().st_size >= total


def fetch(url: str, dest: Path, tries: int = CONNECTION_TRIES, wait: float = 2.0) -> Path:
    """Download url to dest through dest.part, continuing after dropped connections; returns dest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, tries + 1):
        try:
            if fetch_once(url, part):
                part.replace(dest)
                return dest
            problem = "connection lost"
        except OSError as e:  # URLError (no route, refused, timeout), reset connections
            if attempt == tries:
                raise DownloadError(f"{url}: {getattr(e, 'reason', e)}") from e
            problem = str(getattr(e, "reason", e))
        have = part.stat().st_size if part.exists() else 0
        print(f"{dest.name}: {problem} with {have} bytes downloaded (try {attempt} of {tries}); continuing",
              file=sys.stderr)
        time.sleep(wait * attempt)
    raise DownloadError(f"{url}: still incomplete after {tries} connections; run again to continue {part}")


def download_verified(url: str, dest: Path, checksum: Checksum | None, wait: float = 2.0) -> Path:
    """fetch() then verify; a checksum mismatch deletes the file and downloads it once more."""
    for attempt in (1, 2):
        if not dest.exists():
            fetch(url, dest, wait=wait)
        if checksum is None:
            print(f"{dest.name}: no published checksum, not verified", file=sys.stderr)
            return dest
        actual = file_digest(dest, checksum.algorithm)
        if actual == checksum.digest:
            print(f"{dest.name}: {checksum.algorithm} ok", file=sys.stderr)
            return dest
        dest.unlink()
        again = "downloading it again" if attempt == 1 else "giving up"
        print(f"{dest.name}: {checksum.algorithm} is {actual}, expected {checksum.digest}: deleted the file, "
              f"{again}", file=sys.stderr)
    raise DownloadError(f"{url}: {checksum.algorithm} did not match twice; is the mirror serving a different file?")


def read_checksums(path: Path) -> dict[str, Checksum]:
    """An md5sum/sha256sum listing ("DIGEST  NAME" lines) -> {NAME: Checksum}, the algorithm told by the length."""
    algorithms = {32: "md5", 64: "sha256"}
    sums = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        if len(digest) not in algorithms or not name.strip():
            raise DownloadError(f"{path}:{lineno}: expected 'MD5-OR-SHA256  FILE', got {line.strip()!r}")
        sums[name.strip().lstrip("*")] = Checksum(algorithms[len(digest)], digest.lower())
    return sums


def extract_tarball(archive: Path, dest: Path) -> None:
    """Unpack a .tar.gz into dest, refusing absolute paths, ../ and devices (DownloadError)."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tqdm(tar, desc=f"extracting {archive.name}", unit=" files", file=sys.stderr):
                if not safe and (member.name.startswith("/") or ".." in Path(member.name).parts):
                    raise DownloadError(f"{archive}: unsafe path {member.name!r} in the archive")
                tar.extract(member, dest, **safe)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DownloadError(f"{archive}: cannot extract ({e})") from e
