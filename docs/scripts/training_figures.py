"""Plot the loss curves and evaluation scores of training runs (``metrics.csv`` of ``dynamix train``).

Usage: ``python docs/scripts/training_figures.py RUN_DIR [RUN_DIR ...] --labels A B --output docs/images/x.png``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--labels", nargs="+")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    labels = args.labels or [Path(r).name for r in args.runs]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for run, label in zip(args.runs, labels, strict=True):
        m = pd.read_csv(Path(run) / "metrics.csv")
        axes[0].plot(m["epoch"], m["mse"], label=label)
        ev = m.dropna(subset=["D_stsp"])
        axes[1].plot(ev["epoch"], ev["D_stsp"], marker="o", label=label)
        axes[2].plot(ev["epoch"], ev["D_H"], marker="o", label=label)
    axes[0].set_yscale("log")
    axes[0].set_title("training MSE (teacher-forced, observed entries)")
    axes[1].set_title("D_stsp on held-out trajectories (median)")
    axes[2].set_title("D_H on held-out trajectories (median)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)


if __name__ == "__main__":
    main()
