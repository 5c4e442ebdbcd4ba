"""The scaling curve of docs/training.md: held-out (and validation) medians against the number of training systems.

Reads ``benchmarks/results/universe/{validation,held_out}.csv`` (``python -m benchmarks.universe_eval``); a run's
model path names its corpus (``universe-ft-K``: the published 34 trajectories plus K generated systems).

Usage: ``python docs/scripts/universe_figures.py --output docs/images/universe_scaling.png``
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

RESULTS = Path("benchmarks/results/universe")
RELEASE = "dynamix-3d-alrnn-v1.0"
PUBLISHED = 34  # trajectories of the published corpus


def medians(path: Path) -> pd.DataFrame:
    rows = pd.read_csv(path)
    table = rows.groupby(["model", "context"]).agg(
        D_stsp=("D_stsp", lambda v: v.fillna(float("inf")).median()),
        D_H=("D_H", lambda v: v.fillna(float("inf")).median()),
    )
    return table.reset_index()


def systems_of(model: str) -> int | None:
    match = re.search(r"universe-ft-(\d+)", model)
    return PUBLISHED + int(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/images/universe_scaling.png")
    args = parser.parse_args()
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.5), sharex=True)
    for row, split in enumerate(("held_out", "validation")):
        table = medians(RESULTS / f"{split}.csv")
        table["systems"] = table.model.map(systems_of)
        runs = table.dropna(subset=["systems"]).sort_values("systems")
        release = table[table.model == RELEASE]
        for col, (metric, context) in enumerate([(m, c) for c in (512, 2000) for m in ("D_stsp", "D_H")]):
            ax = axes[row, col]
            part = runs[runs.context == context]
            ax.plot(part.systems, part[metric], marker="o", label="fine-tuned on 34 + K systems")
            ref = release[release.context == context][metric]
            if len(ref):
                ax.axhline(float(ref.iloc[0]), color="k", linestyle="--", label="release")
            ax.set_xscale("log")
            ax.set_title(f"{split.replace('_', '-')}: {metric}, C = {context}", fontsize=9)
            if row == 1:
                ax.set_xlabel("training systems")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
