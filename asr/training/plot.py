"""Training curves: loss and dev WER per epoch from metrics.jsonl, drawn as a PNG (needs matplotlib)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot_curves(metrics: Path, png: Path) -> None:
    """Training loss and dev WER per epoch, from metrics.jsonl, as a PNG (needs matplotlib: `.[plot]`)."""
    try:
        import matplotlib
    except ImportError:
        print(f"note: matplotlib is not installed, so {png} was not drawn (pip install 'asr[plot]')", file=sys.stderr)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig = curves_figure(rows)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def curves_figure(rows: list[dict]):
    """The figure of metrics rows (epoch, train_loss, dev_wer): loss on the left axis, WER on the right, the
    epoch axis in whole epochs."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(epochs, [r["train_loss"] for r in rows], color="tab:blue", label="train CTC loss")
    ax1.set_xlabel("epoch")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylabel("train CTC loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [r["dev_wer"] for r in rows], color="tab:red", label="dev WER")
    ax2.set_ylabel("dev WER (%)", color="tab:red")
    ax2.set_ylim(0, min(100, max(r["dev_wer"] for r in rows) * 1.1 + 1))
    fig.tight_layout()
    return fig
