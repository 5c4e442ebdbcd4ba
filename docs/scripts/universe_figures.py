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
import matplotlib.ticker

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
    match = re.search(r"universe-(?:ft|scratch)-(\d+)", model)
    return PUBLISHED + int(match.group(1)) if match else None


def kind_of(model: str) -> str:
    return "from scratch" if "universe-scratch" in model else "fine-tuned from the release"


def markdown_table() -> str:
    """Markdown: per model, the validation criterion and the held-out medians (ratios to the release), the
    divergences, and whether the ship rule holds."""
    held = pd.read_csv(RESULTS / "held_out.csv")
    vm, hm = medians(RESULTS / "validation.csv"), medians(RESULTS / "held_out.csv")
    cells = [(m, c) for c in (512, 2000) for m in ("D_stsp", "D_H")]

    def get(frame: pd.DataFrame, model: str, metric: str, context: int) -> float:
        return float(frame[(frame.model == model) & (frame.context == context)][metric].iloc[0])

    lines = [
        "| model | kind | training systems | validation criterion | held-out D_stsp C=512 | D_H C=512 | D_stsp C=2000 "
        "| D_H C=2000 | diverged (held-out) | ship rule |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    models = [RELEASE, *sorted(set(hm.model) - {RELEASE}, key=lambda m: (kind_of(m), systems_of(m) or 0))]
    for model in models:
        crit = (
            sum(get(vm, model, m, c) / get(vm, RELEASE, m, c) for m, c in cells) / 4
            if model in set(vm.model)
            else float("nan")
        )
        held_cells = [get(hm, model, m, c) for m, c in cells]
        ratios = [v / get(hm, RELEASE, m, c) for v, (m, c) in zip(held_cells, cells, strict=True)]
        diverged = int(held[held.model == model].diverged.sum())
        ship = all(r < 1 for r in ratios) and diverged <= int(held[held.model == RELEASE].diverged.sum())
        name = Path(model).stem if model.endswith(".safetensors") else model
        n = systems_of(model)
        lines.append(
            f"| `{name}` | {kind_of(model) if n else 'the release'} | {n if n else 34} | {crit:.3f} | "
            + " | ".join(f"{v:.3f} ({r:.3f})" for v, r in zip(held_cells, ratios, strict=True))
            + f" | {diverged} | {'meets' if ship and model != RELEASE else ('-' if model == RELEASE else 'missed')} |"
        )
    return "\n".join(lines)


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
            for kind, marker in (("fine-tuned from the release", "o"), ("from scratch", "s")):
                part = runs[(runs.context == context) & (runs.model.map(kind_of) == kind)]
                if len(part):
                    ax.plot(part.systems, part[metric], marker=marker, label=kind)
            ref = release[release.context == context][metric]
            if len(ref):
                ax.axhline(float(ref.iloc[0]), color="k", linestyle="--", label="release")
            ax.set_xscale("log")
            ax.set_xticks(sorted(set(runs.systems.dropna().astype(int))))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_title(f"{split.replace('_', '-')}: {metric}, C = {context}", fontsize=9)
            if row == 1:
                ax.set_xlabel("training systems")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")
    print(markdown_table())


if __name__ == "__main__":
    main()
