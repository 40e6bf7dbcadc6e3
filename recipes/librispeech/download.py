"""Download LibriSpeech (OpenSLR 12) and, optionally, its language models (OpenSLR 11): resumable, checked, extracted.

    python recipes/librispeech/download.py --data-dir data/librispeech --splits dev-clean test-clean
    python recipes/librispeech/download.py --data-dir data/librispeech --splits --lm 3-gram.pruned.1e-7.arpa.gz

A download goes to NAME.part and continues it with an HTTP Range request when run again (or after a dropped
connection: asr.download). Each archive is checked against its published MD5 sum; a mismatch deletes the file and downloads
it once more. Speech archives are extracted to DATA_DIR/LibriSpeech/<split>/; ARPA language models are
decompressed to DATA_DIR/lm/ with their words lower-cased, as asr.text normalises transcripts.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

from asr.download import Checksum, DownloadError, download_verified, extract_tarball, read_checksums

SPEECH_URL = "https://www.openslr.org/resources/12"  # LibriSpeech ASR corpus
LM_URL = "https://www.openslr.org/resources/11"  # LibriSpeech language models, vocabulary and lexicon


# md5sum.txt of OpenSLR 12, as published with the corpus.
SPEECH_ARCHIVES = {
    "dev-clean": Checksum("md5", "42e2234ba48799c1f50f24a7926300a1"),
    "dev-other": Checksum("md5", "c8d0bcc9cca99d4f8b62fcc847357931"),
    "test-clean": Checksum("md5", "32fa31d27d2e1cad72775fee3f4849a9"),
    "test-other": Checksum("md5", "fb5a50374b501bb3bac4815ee91d3135"),
    "train-clean-100": Checksum("md5", "2a93770f6d5c6c964bc36631d331a522"),
    "train-clean-360": Checksum("md5", "c0e676e450a7ff2f54aeade5171606fa"),
    "train-other-500": Checksum("md5", "d1a0fd59409feb2c614ce4d30c387708"),
}

# OpenSLR 11 publishes no checksums. These SHA-256 sums are those that public setups pin for the same URLs
# (rwth-i6/i6_experiments for 3-gram, 4-gram and the lexicon; a setup built on it recorded the one of
# 3-gram.pruned.1e-7); they could not be checked against the files here. Files without one are downloaded
# unchecked, and say so.
LM_FILES = {
    "3-gram.arpa.gz": Checksum("sha256", "263649573475c2991d3e755eb4e690c9d2656f2b3283a1eb589e1e4e174bf874"),
    "4-gram.arpa.gz": Checksum("sha256", "f2b2d1507637ddf459d3579159f7e8099ed7d77452ff1059aeeeaea33d274613"),
    "3-gram.pruned.1e-7.arpa.gz": Checksum(
        "sha256", "71dd880667cb6ea3942bb1982988c91fb1208839a21911eeec7e31c857c4bdfb"),
    "3-gram.pruned.3e-7.arpa.gz": None,
    "librispeech-lexicon.txt": Checksum("sha256", "d722bc29908cd338ae738edd70f61826a6fca29aaa704a9493f0006773f79d71"),
    "librispeech-vocab.txt": None,
}


def extract_speech(archive: Path, data_dir: Path, split: str) -> Path:
    """Unpack a LibriSpeech tarball (LibriSpeech/<split>/...) under data_dir; returns data_dir/LibriSpeech/<split>.
    A `.complete` marker in the split folder makes a second call a no-op."""
    split_dir = data_dir / "LibriSpeech" / split
    marker = split_dir / ".complete"
    if marker.exists():
        return split_dir
    extract_tarball(archive, data_dir)
    if not split_dir.is_dir():
        raise DownloadError(f"{archive}: held no LibriSpeech/{split}/ folder")
    marker.touch()
    return split_dir


def lowercase_lm(src: Path, dest: Path) -> Path:
    """Decompress a .gz ARPA model or copy a word list, lower-cased (LibriSpeech's LM words are upper-case)."""
    if dest.exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(line.lower())
    tmp.replace(dest)
    return dest


def download_split(split: str, data_dir: Path, base_url: str = SPEECH_URL, checksums=None, wait=2.0) -> Path:
    """Download, verify and extract one LibriSpeech split; returns its folder."""
    checksums = SPEECH_ARCHIVES if checksums is None else checksums  # split -> Checksum
    if split not in checksums:
        raise DownloadError(f"unknown split {split!r}; expected one of {', '.join(checksums)}")
    if (data_dir / "LibriSpeech" / split / ".complete").exists():
        return data_dir / "LibriSpeech" / split
    archive = download_verified(f"{base_url.rstrip('/')}/{split}.tar.gz", data_dir / f"{split}.tar.gz",
                                checksums[split], wait)
    return extract_speech(archive, data_dir, split)


def download_lm(name: str, data_dir: Path, base_url: str = LM_URL, checksums=None, wait=2.0) -> Path:
    """Download (and verify, where a checksum is known) one OpenSLR 11 file; returns its lower-cased copy in
    data_dir/lm/ (ARPA decompressed), or the file itself for anything else."""
    checksums = LM_FILES if checksums is None else checksums
    if name not in checksums:
        raise DownloadError(f"unknown LM file {name!r}; expected one of {', '.join(checksums)}")
    path = download_verified(f"{base_url.rstrip('/')}/{name}", data_dir / "lm" / name, checksums[name], wait)
    if name.endswith(".arpa.gz"):
        return lowercase_lm(path, path.with_suffix(""))
    if name.endswith("-vocab.txt"):
        return lowercase_lm(path, path.with_name(path.stem + ".lower.txt"))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--data-dir", default="data/librispeech", help="where archives go and LibriSpeech/ is extracted")
    p.add_argument("--splits", nargs="*", default=["dev-clean", "dev-other", "test-clean", "test-other",
                                                    "train-clean-100"], choices=list(SPEECH_ARCHIVES), metavar="SPLIT",
                   help=f"any of {' '.join(SPEECH_ARCHIVES)}")
    p.add_argument("--mirror", default=SPEECH_URL, help="base URL of the OpenSLR 12 files")
    p.add_argument("--lm", nargs="*", default=[], choices=list(LM_FILES), metavar="FILE",
                   help=f"OpenSLR 11 files to fetch too: {' '.join(LM_FILES)}")
    p.add_argument("--lm-mirror", default=LM_URL, help="base URL of the OpenSLR 11 files")
    p.add_argument("--checksums", help="md5sum/sha256sum listing (DIGEST  FILE) that replaces the built-in sums "
                                       "of the files it names, e.g. for a mirror of your own")
    p.add_argument("--remove-archives", action="store_true", help="delete each tarball once it is extracted")
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    try:
        extra = read_checksums(Path(args.checksums)) if args.checksums else {}
        speech = {**SPEECH_ARCHIVES, **{k[: -len(".tar.gz")]: v for k, v in extra.items() if k.endswith(".tar.gz")}}
        lm_sums = {**LM_FILES, **{k: v for k, v in extra.items() if k in LM_FILES}}
        for split in args.splits:
            folder = download_split(split, data_dir, args.mirror, speech)
            if args.remove_archives:
                (data_dir / f"{split}.tar.gz").unlink(missing_ok=True)
            print(f"{split}: {folder}")
        for name in args.lm:
            print(f"{name}: {download_lm(name, data_dir, args.lm_mirror, lm_sums)}")
    except (DownloadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
