"""A "model soup": the weighted mean of several checkpoints' weights, written as one checkpoint (fp32), for
comparing fine-tunes of one lineage (how the README's soups of v7, v9, v10 and v11 were made).

    python recipes/an4/model_soup.py OUT.pt A.pt [B.pt ...] [--weights 1 1 ...]

The checkpoints must share the model configuration, features and normalisation (fine-tunes with
--init-features init do); the first one's vocabulary and metadata are kept. Score OUT.pt as any model:
python -m asr.evaluate --model OUT.pt --manifest manifests/an4/dev.jsonl --decoder greedy.
"""

from __future__ import annotations

import argparse
import sys

import torch

from asr.checkpoint import CheckpointError, load_model, model_state, save_atomic
from asr.manifest import same_file


def soup(paths: list[str], weights: list[float]):
    """The first checkpoint's recogniser, its weights replaced by the weighted mean of all of theirs."""
    recs = [load_model(p) for p in paths]
    first = recs[0]
    for path, rec in zip(paths[1:], recs[1:]):
        same = (rec.model.cfg == first.model.cfg and rec.frontend.cfg == first.frontend.cfg
                and torch.equal(rec.frontend.mean, first.frontend.mean)
                and torch.equal(rec.frontend.std, first.frontend.std))
        if not same:
            raise CheckpointError(f"{path}: its model, features or normalisation differ from {paths[0]}'s")
    states = [rec.model.state_dict() for rec in recs]
    total = sum(weights)
    first.model.load_state_dict({k: sum(w * s[k].float() for w, s in zip(weights, states)) / total for k in states[0]})
    return first


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("models", nargs="+")
    p.add_argument("--weights", type=float, nargs="+", help="one per model (default: all equal)")
    args = p.parse_args()
    weights = args.weights or [1.0] * len(args.models)
    if len(weights) != len(args.models) or any(not w >= 0 for w in weights) or sum(weights) <= 0:
        print(f"error: --weights: {len(args.models)} non-negative numbers with a positive sum, one per model",
              file=sys.stderr)
        return 2
    try:
        if given := next((m for m in args.models if same_file(m, args.out)), None):
            raise CheckpointError(f"{args.out}: the output is also an input ({given}); write the model to another file")
        save_atomic(model_state(soup(args.models, weights), "fp32"), args.out)
    except (CheckpointError, OSError) as e:  # OSError: the output cannot be written
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the mean of {len(args.models)} models' weights ({', '.join(f'{w:g}' for w in weights)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
