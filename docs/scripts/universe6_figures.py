"""The 6-D scaling curve of docs/training.md: held-out medians of the joint 6-D runs against their number of
training systems, beside the channel-by-channel release and parroting.

Reads ``benchmarks/results/universe/joint-4to6.csv`` (held-out) and ``joint-val6.csv`` (validation), written by
``python -m benchmarks.joint_eval``; a run's number of systems is the length of its
``docs/training-runs/<run>/systems.txt``.

Usage: ``python docs/scripts/universe6_figures.py --output docs/images/universe6_scaling.png``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

RESULTS = Path("benchmarks/results/universe")
RUNS = Path("docs/training-runs")
CELLS = [("D_stsp", 512), ("D_H", 512), ("D_stsp", 2000), ("D_H", 2000)]


def run_of(model: str) -> str:
    """``universe6-scratch-b`` for ``/.../universe6-scratch-b/checkpoint/....safetensors``."""
    return Path(model).parent.parent.name


def medians(path: Path) -> pd.DataFrame:
    rows = pd.read_csv(path)
    rows["model"] = rows["model"].fillna("")
    rows["label"] = [m if meth == "joint" else meth for meth, m in zip(rows["method"], rows["model"], strict=True)]
    rows.loc[rows.method == "joint", "label"] = rows.loc[rows.method == "joint", "model"].map(run_of)
    return rows.groupby(["label", "context"]).agg(
        D_stsp=("D_stsp", lambda v: v.fillna(float("inf")).median()),
        D_H=("D_H", lambda v: v.fillna(float("inf")).median()),
        diverged=("diverged", "sum"),
    )


def systems(run: str) -> int:
    return sum(1 for line in (RUNS / run / "systems.txt").read_text().splitlines() if line.strip())


def markdown_table() -> str:
    held, val = medians(RESULTS / "joint-4to6.csv"), medians(RESULTS / "joint-val6.csv")

    def criterion(label: str) -> float:
        return sum(val.loc[(label, c), m] / val.loc[("per_channel", c), m] for m, c in CELLS) / 4

    lines = [
        "| forecast | training systems | validation criterion | D_stsp C=512 | D_H C=512 | D_stsp C=2000 | D_H C=2000 "
        "| diverged (48 forecasts) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    runs = sorted({label for label, _ in held.index if label.startswith("universe6")}, key=systems)
    for label in ["per_channel", "parroting", *runs]:
        name = {"per_channel": "release, each channel on its own", "parroting": "parroting"}.get(label, f"`{label}`")
        n = str(systems(label)) if label in runs else "-"
        crit = f"{criterion(label):.3f}" if (label, 512) in val.index else "-"
        values = " | ".join(f"{held.loc[(label, c), m]:.3f}" for m, c in CELLS)
        diverged = int(held.loc[(label, 512), "diverged"] + held.loc[(label, 2000), "diverged"])
        lines.append(f"| {name} | {n} | {crit} | {values} | {diverged} |")
    return "\n".join(lines)


def figure(output: Path) -> None:
    held = medians(RESULTS / "joint-4to6.csv")
    runs = sorted({label for label, _ in held.index if label.startswith("universe6")}, key=systems)
    counts = [systems(r) for r in runs]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (metric, context) in zip(axes, CELLS, strict=True):
        ax.plot(counts, [held.loc[(r, context), metric] for r in runs], "o-", color="C0", label="6-D model, joint")
        ax.axhline(held.loc[("per_channel", context), metric], color="C1", ls="--", label="release, per channel")
        ax.axhline(held.loc[("parroting", context), metric], color="C2", ls=":", label="parroting")
        ax.set_xscale("log")
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training systems (6-D)")
        ax.set_title(f"{metric}, C = {context}")
    axes[0].set_ylabel("median over 24 held-out systems")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/images/universe6_scaling.png"))
    args = parser.parse_args()
    figure(args.output)
    print(markdown_table())


if __name__ == "__main__":
    main()
