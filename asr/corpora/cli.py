"""`python -m asr.data import|split`: a corpus in a common layout -> our manifests, and a manifest -> train/dev/test.

    python -m asr.data import ../shared/data/fsdd data/fsdd                   # layout detected; data/fsdd/all.jsonl
    python -m asr.data import --from kaldi data/train m/ --dev-fraction 0.1 --by-speaker   # train.jsonl + dev.jsonl
    python -m asr.data split data/fsdd/all.jsonl data/fsdd --test-speakers george --dev-fraction 0.1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

from asr import __version__
from asr.audio import AudioError
from asr.corpora.formats import FORMATS, detect_format
from asr.corpora.rows import CorpusError, ImportSettings
from asr.corpora.shared import HELD_OUT
from asr.corpora.split import SplitSettings, split_utterances
from asr.manifest import ManifestError, Utterance, file_in_the_way, read_manifest, write_manifests
from asr.stdio import lost_output, stdout_guarded


SETS = ("train", "dev", "test")  # the sets a split writes: OUT_DIR/<set>.jsonl


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each flag's default, except a switch's or where its help says it in words (asr.corpora imports
    no CLI module above it, so not asr.cli's)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if isinstance(action.default, bool) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of `low` or more."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of {low} or more, got {text!r}")
        return value
    return parse


def names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_split_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dev-speakers", type=names, default=(), metavar="A,B", help="speakers held out as dev (default: none)")
    p.add_argument("--test-speakers", type=names, default=(), metavar="A,B",
                   help="speakers held out as test (default: none)")
    p.add_argument("--dev-fraction", type=fraction, default=0.0,
                   help="about this share of what the test set leaves held out as dev (0: no dev)")
    p.add_argument("--test-fraction", type=fraction, default=0.0, help="about this share held out as test")
    p.add_argument("--by-speaker", action="store_true", help="the shares are whole speakers (speaker-disjoint sets)")
    p.add_argument("--seed", type=at_least(0), default=0, help="which utterances or speakers a share takes")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asr.data", description=__doc__.strip().splitlines()[0],
                                formatter_class=Formatter)
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a corpus -> OUT_DIR/<set>.jsonl (checked on the way in)",
                         formatter_class=Formatter,
                         epilog="formats: " + "; ".join(f"{k}: {v[1]}" for k, v in FORMATS.items()))
    imp.add_argument("--from", dest="fmt", choices=list(FORMATS), help="the layout (default: detected)")
    imp.add_argument("src", help="the corpus folder (or a NeMo manifest file)")
    imp.add_argument("out_dir", help="folder for the manifests (and cut segments)")
    imp.add_argument("--trust-durations", action="store_true",
                     help="use durations the corpus gives without opening the audio (only check it is there)")
    imp.add_argument("--skip-bad", action="store_true",
                     help="drop utterances with a problem (counted in one warning line) instead of stopping")
    imp.add_argument("--workers", type=at_least(1), default=ImportSettings().workers,
                     help="threads reading audio headers (where the first reads are slow, as from a network disk) "
                          "and cutting segments")
    add_split_flags(imp)
    spl = sub.add_parser("split", help="a manifest -> OUT_DIR/{train,dev,test}.jsonl",
                         formatter_class=Formatter)
    spl.add_argument("manifest", help="the manifest to split (JSONL)")
    spl.add_argument("out_dir", help="folder for train.jsonl, dev.jsonl, test.jsonl")
    add_split_flags(spl)
    return p


def split_settings(args: argparse.Namespace) -> SplitSettings:
    return SplitSettings(args.dev_speakers, args.test_speakers, args.dev_fraction, args.test_fraction,
                         args.by_speaker, args.seed)


def say(name: str, utts: list[Utterance]) -> None:
    """The counts line that recipes' prepare.py print too."""
    speakers = len({u.speaker for u in utts if u.speaker})
    hours = sum(u.duration for u in utts) / 3600
    who = "unknown speakers" if not speakers else "1 speaker" if speakers == 1 else f"{speakers} speakers"
    print(f"{name}: {len(utts)} utterance{'' if len(utts) == 1 else 's'}, {hours:.2f} h, {who}")


def write_split(utts: list[Utterance], where: str, out: Path, settings: SplitSettings) -> None:
    """Split the utterances (of the manifest `where`) into train/dev/test and write them to OUT, all or none."""
    parts = split_utterances(utts, settings, where)
    write_manifests({out / f"{name}.jsonl": utts for name, utts in parts.items()})
    for name, utts in parts.items():
        say(name, utts)


def split_of_import(src: str, out: Path, settings: SplitSettings, made: dict) -> Callable:
    """The sets an import's split makes of its sets (ImportSettings.more_sets), kept in `made` to say: the split of
    "all", "train" or a corpus's only set; CorpusError, before anything is written, where there is none of those or a
    set the split makes is one of the corpus's own."""

    def more_sets(sets: dict[str, list[Utterance]]) -> dict[str, list[Utterance]]:
        source = next((name for name in ("all", "train") if name in sets), next(iter(sets)) if len(sets) == 1 else None)
        if source is None or HELD_OUT.search(source):  # a test set split into train and dev would train on test
            raise CorpusError(f"{src}: split flags split the set 'all' or 'train' or a corpus's only set that is not "
                              f"held out; this corpus has {', '.join(sets)}")
        parts = split_utterances(sets[source], settings, f"{src} (its {source} set)")
        clash = sorted(set(parts) & (set(sets) - {source}))
        if clash:
            raise CorpusError(f"{out}: the corpus has its own {', '.join(clash)} set(s); split flags would replace "
                              f"them")
        made.update(parts)
        return parts

    return more_sets


def refuse_overwriting(manifest: str, out: Path, settings: SplitSettings) -> None:
    """CorpusError when the manifest split is one of OUT_DIR's sets: one the split writes would replace it
    (DIR/train.jsonl split into DIR), and one it does not write would be left beside the new sets, holding theirs."""
    for name in SETS:
        path = out / f"{name}.jsonl"
        if os.path.realpath(path) != os.path.realpath(manifest):
            continue
        if name == "train" or settings.asks(name):
            raise CorpusError(f"{path}: writing the {name} set here would replace the manifest being split "
                              f"({manifest}); give another OUT_DIR")
        raise CorpusError(f"{path}: this split writes no {name} set, so the manifest being split ({manifest}) would "
                          f"be left here beside the new sets, holding their utterances; give another OUT_DIR")


def remove_other_sets(out: Path, written: set[str]) -> None:
    """Remove the sets of an earlier split in OUT_DIR that this one did not write (an old test.jsonl would hold
    utterances of the new train.jsonl), saying so in one line."""
    stale = [out / f"{name}.jsonl" for name in SETS if name not in written and (out / f"{name}.jsonl").is_file()]
    for path in stale:
        path.unlink()
    if stale:
        print(f"note: removed {', '.join(map(str, stale))}, left by an earlier split: this one writes no such set, "
              f"and the old one would share utterances with the new ones", file=sys.stderr)


def run_split(args: argparse.Namespace, split: SplitSettings) -> None:
    out = Path(args.out_dir)
    refuse_overwriting(args.manifest, out, split)
    utts = read_manifest(args.manifest)
    write_split(utts, args.manifest, out, split)
    remove_other_sets(out, {"train"} | {name for name in ("dev", "test") if split.asks(name)})


def manifests_in(folder: Path) -> dict[str, tuple[int, int]]:
    """The manifests (*.jsonl) in a folder: name -> (inode, modification time in ns), which a rewrite changes."""
    stats = {p.name: p.stat() for p in folder.glob("*.jsonl")} if folder.is_dir() else {}
    return {name: (st.st_ino, st.st_mtime_ns) for name, st in stats.items()}


def run_import(args: argparse.Namespace, split: SplitSettings) -> None:
    fmt = args.fmt or detect_format(args.src)
    made = {}  # the sets the split flags make, once written
    asked = split.asks("dev") or split.asks("test")
    more = split_of_import(args.src, Path(args.out_dir), split, made) if asked else None
    settings = ImportSettings(args.workers, args.trust_durations, args.skip_bad, more)
    before = manifests_in(Path(args.out_dir))
    began = time.perf_counter()
    sets = FORMATS[fmt][0](args.src, args.out_dir, settings)
    seconds = time.perf_counter() - began
    total = sum(map(len, sets.values()))
    print(f"imported {fmt} from {args.src}: {total} utterance{'' if total == 1 else 's'} in {seconds:.1f} s "
          f"({total / max(seconds, 1e-6):.0f}/s)")
    for name, utts in {**sets, **made}.items():
        say(name, utts)
    after = manifests_in(Path(args.out_dir))
    stale = sorted(name for name, stamp in before.items() if after.get(name) == stamp)
    if stale:
        print(f"note: {args.out_dir} also holds {', '.join(stale)} from before, which this import did not write",
              file=sys.stderr)


@stdout_guarded
def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        split = split_settings(args)
    except ValueError as e:
        p.error(str(e))
    if args.command == "split" and not (split.asks("dev") or split.asks("test")):
        p.error("split: say what to hold out (--dev-fraction, --dev-speakers, --test-...)")
    if not args.out_dir:  # Path("") is the current folder
        print("error: OUT_DIR is an empty path; give a folder (. for the current one)", file=sys.stderr)
        return 2
    if blocker := file_in_the_way(Path(args.out_dir)):  # said before any work, not as the manifests are written
        what = "is a file" if blocker == Path(args.out_dir) else f"{blocker} is a file"
        print(f"error: OUT_DIR {args.out_dir}: {what}, not a folder", file=sys.stderr)
        return 2
    try:
        if args.command == "import":
            run_import(args, split)
        else:
            run_split(args, split)
    except (CorpusError, ManifestError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a manifest's write names its file; a print to stdout names none (stdout_guarded's)
        if lost_output(e):
            raise
        print(f"error: {e.filename or args.out_dir}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0
