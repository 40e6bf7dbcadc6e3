"""Build or score word n-gram LMs from the command line.

    python -m asr.lm build --order 3 corpus.txt lm.arpa                      # one sentence a line
    python -m asr.lm build --order 3 --manifest manifests/an4/train.jsonl exp/an4/lm/3gram.arpa.gz
    python -m asr.lm score lm.arpa sentences.txt                             # log-probs, perplexity
    python -m asr.lm mix mine.arpa.gz asr/assets/an4_lm.arpa.gz mixed.arpa.gz --weights 0.3 0.5 0.7 \
        --tune-on dev.jsonl --manifest                                      # interpolated; weight of mine chosen
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr import __version__
from asr.lm.arpa import read_arpa, write_arpa
from asr.lm.interface import LMError
from asr.lm.interpolate import exp_perplexity, interpolate, perplexity
from asr.lm.kneser_ney import build_kneser_ney
from asr.lm.load import first_json_object, load_lm, read_sentences, sentence_logprob
from asr.manifest import same_file
from asr.text import normalize_text

MAX_ORDER = 10  # n-gram orders `build` accepts: 1..MAX_ORDER (beyond, nearly every n-gram is seen once)


def is_manifest(path: str, declared: bool) -> bool:
    """Whether to read `path` as a JSONL manifest: --manifest, or a file of JSON objects with a "text" field (said on
    stderr); LMError for JSON objects without one (neither sentences nor a manifest). A pipe is not looked into (what
    a look reads would be lost to the reading): only --manifest makes it a manifest."""
    if declared or not Path(path).is_file() or (row := first_json_object(path)) is None:
        return declared
    if "text" not in row:
        raise LMError(f'{path}: its lines are JSON objects without a "text" field: neither text (one sentence a line) '
                      'nor a JSONL manifest')
    print(f'note: {path} is a JSONL manifest: reading its "text" fields (as --manifest does)', file=sys.stderr)
    return True


def refuse_overwriting(out: str, inputs: list[str | None]) -> None:
    """LMError when the output file is one of the inputs: writing it would destroy what is read."""
    for given in filter(None, inputs):
        if same_file(out, given):
            raise LMError(f"{out}: the output is also an input ({given}); write the model to another file")


def no_words(path: str) -> LMError:
    return LMError(f"{path}: no words to score (the file is empty, or holds only blank lines and punctuation)")


def build(args: argparse.Namespace) -> None:
    refuse_overwriting(args.out, [args.corpus])
    try:
        lm = build_kneser_ney(read_sentences(args.corpus, is_manifest(args.corpus, args.manifest)), args.order)
    except ValueError as e:  # no words: say which corpus
        raise LMError(f"{args.corpus}: {e}") from None
    write_arpa(lm, args.out)
    counts = " ".join(f"{n}-grams={c}" for n, c in enumerate(lm.counts(), 1))
    print(f"wrote {args.out}: order {lm.order}, {len(lm.vocabulary)} words, {counts}")


def score(args: argparse.Namespace) -> None:
    lm = load_lm(args.lm, args.backend)
    total, tokens, oov, sentences = 0.0, 0, 0, 0
    texts = [t for t in map(normalize_text, read_sentences(args.text, is_manifest(args.text, args.manifest))) if t]
    if not texts:  # (lines without words are not sentences: left out of the scores and the counts)
        raise no_words(args.text)
    for text in texts:
        words = text.split()
        lp = sentence_logprob(lm, words)
        print(f"{lp:.4f}\t{text}")
        total, tokens, sentences = total + lp, tokens + len(words) + 1, sentences + 1
        oov += sum(w not in lm.vocabulary for w in words) if lm.vocabulary is not None else 0
    ppl = exp_perplexity(total, tokens)
    print(f"sentences={sentences} words={tokens - sentences} oov={oov} logprob={total:.3f} ppl={ppl:.2f}")


def mix(args: argparse.Namespace) -> None:
    """Interpolate A and B with A's weight given, or chosen among --weights by perplexity on --tune-on."""
    refuse_overwriting(args.out, [args.a, args.b, args.tune_on])
    held_out = list(read_sentences(args.tune_on, is_manifest(args.tune_on, args.manifest))) if args.tune_on else []
    if args.tune_on and not any(normalize_text(text).split() for text in held_out):
        raise no_words(args.tune_on)
    a, b = read_arpa(args.a), read_arpa(args.b)
    best = args.weights[0]
    if len(args.weights) > 1:
        scores = {w: perplexity(interpolate(a, b, w), held_out) for w in args.weights}
        for w, ppl in scores.items():
            print(f"weight {w:g}: ppl {ppl:.2f} on {args.tune_on}")
        best = min(scores, key=lambda w: (scores[w], w))
        print(f"chosen weight {best:g}")
    lm = interpolate(a, b, best)
    write_arpa(lm, args.out)
    print(f"wrote {args.out}: {best:g} x {args.a} + {1 - best:g} x {args.b}, order {lm.order}, "
          f"{len(lm.vocabulary)} words")


def add_mix_parser(sub) -> argparse.ArgumentParser:
    m = sub.add_parser("mix", help="interpolate two ARPA models into one (weight of the first chosen on held-out text)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m.add_argument("a", help="ARPA file (e.g. built from your transcripts)")
    m.add_argument("b", help="ARPA file (e.g. the shipped model's LM)")
    m.add_argument("out", help="ARPA file to write (.gz for gzip)")
    m.add_argument("--weights", type=float, nargs="+", default=[0.5], help="A's weight, or weights to choose from")
    m.add_argument("--tune-on", help="held-out text (one sentence a line) choosing among --weights by perplexity")
    m.add_argument("--manifest", action="store_true", help="--tune-on is a JSONL manifest")
    return m


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asr.lm", description="Build or score word n-gram LMs (ARPA).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="estimate an interpolated modified Kneser-Ney model, write ARPA",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--order", type=int, default=3, help=f"n-gram order (1..{MAX_ORDER})")
    b.add_argument("--manifest", action="store_true", help="CORPUS is a JSONL manifest: use its \"text\" fields")
    b.add_argument("corpus", help="text, one sentence a line (normalised with asr.text.normalize_text)")
    b.add_argument("out", help="ARPA file to write (.gz for gzip)")
    s = sub.add_parser("score", help="natural-log probability of each sentence, and the perplexity",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("lm", help="ARPA file (or KenLM binary with --backend kenlm)")
    s.add_argument("text", help="text, one sentence a line")
    s.add_argument("--manifest", action="store_true", help="TEXT is a JSONL manifest")
    s.add_argument("--backend", default="auto", choices=["auto", "python", "kenlm"],
                   help="auto: kenlm (if installed) for binaries and large ARPA files, else python")
    m = add_mix_parser(sub)
    args = p.parse_args(argv)
    if args.command == "build" and not 1 <= args.order <= MAX_ORDER:
        b.error(f"argument --order: expected a whole number in 1..{MAX_ORDER}, got {args.order}")
    if args.command == "mix" and (len(args.weights) > 1) != bool(args.tune_on):
        m.error("several --weights need --tune-on (held-out text to choose among them), and --tune-on several weights")
    if args.command == "mix" and not all(0 < w <= 1 for w in args.weights):
        m.error(f"argument --weights: each must be in (0, 1], got {' '.join(map(str, args.weights))}")
    try:
        {"build": build, "score": score, "mix": mix}[args.command](args)
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, as other shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        return 141
    except (LMError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, as a shell tool; outputs are written whole or not at all
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file that cannot be read (no permission, a folder in the way)
        print(f"error: {e.filename}: {e.strerror}" if e.filename else f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
