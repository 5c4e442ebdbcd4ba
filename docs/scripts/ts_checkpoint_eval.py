"""Time-series mode with another checkpoint against the released one: relative MASE and WQL on the 17 tasks.

Reads two ``python -m benchmarks --track ts`` result folders: the main run (seasonal naive, AutoETS and
``dynamix_ts`` with the released checkpoint) and a run of ``dynamix_ts`` with the checkpoint under test
(``--dynamix-model PATH``). Writes a Markdown table: geometric means over all tasks and over each half of
the declared tuning split (``benchmarks/splits.py``), each relative to seasonal naive, as fev computes it.

Usage::

    python docs/scripts/ts_checkpoint_eval.py --main benchmarks/results/leaderboard \
        --trained benchmarks/results/archive/ts-synth --output docs/training-runs/dynamix-3d-ts-synth/evaluation.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.leaderboard import relative_errors
from benchmarks.markdown import markdown_table
from benchmarks.splits import HELD_OUT_TASKS, TUNING_TASKS

COMPARED = ("dynamix_ts", "auto_ets", "seasonal_naive")


def scores(folder: Path) -> pd.DataFrame:
    frame = pd.read_csv(folder / "results.csv")
    frame = frame[(frame.track == "ts") & frame.metric.isin(["MASE", "WQL"])]
    frame = frame[~frame.model.str.contains("#seed", regex=False)]
    return frame.assign(value=pd.to_numeric(frame.value, errors="coerce"))[["task", "model", "metric", "value"]]


def geometric_means(frame: pd.DataFrame, tasks: tuple[str, ...] | None) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for metric in ("MASE", "WQL"):
        relative, _, _ = relative_errors(frame, metric)
        if tasks is not None:
            relative = relative.loc[[t for t in relative.index if t in tasks]]
        for model in relative.columns:
            values = relative[model].dropna().to_numpy(dtype=float)
            out.setdefault(model, {})[metric] = float(np.exp(np.mean(np.log(values)))) if values.size else np.nan
            out[model]["tasks"] = int(values.size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", default="benchmarks/results/leaderboard")
    parser.add_argument("--trained", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    main_rows = scores(Path(args.main))
    main_rows = main_rows[main_rows.model.isin(COMPARED)]
    trained = scores(Path(args.trained))
    trained = trained[trained.model.str.startswith("dynamix_ts[")]
    frame = pd.concat([main_rows, trained], ignore_index=True)
    parts = {"all 17 tasks": None, "tuning half": TUNING_TASKS, "held-out half": HELD_OUT_TASKS}
    table = {name: geometric_means(frame, tasks) for name, tasks in parts.items()}
    models = [m for m in [*COMPARED, *sorted(trained.model.unique())] if m in table["all 17 tasks"]]
    lines = ["| model | " + " | ".join(f"{p}: MASE | WQL" for p in parts) + " |",
             "|---|" + "---|---|" * len(parts)]  # fmt: skip
    for model in models:
        cells = [f"{table[p][model]['MASE']:.3f} | {table[p][model]['WQL']:.3f}" for p in parts]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    per_task = frame[frame.metric == "MASE"].pivot_table(index="task", columns="model", values="value")
    per_task = per_task.div(per_task["seasonal_naive"], axis=0)[models]
    text = (
        "Geometric mean of the error relative to seasonal naive (lower is better):\n\n"
        + "\n".join(lines)
        + "\n\nRelative MASE per task:\n\n"
        + markdown_table(per_task.reset_index())
        + "\n"
    )
    Path(args.output).write_text(text)
    Path(args.output).with_suffix(".json").write_text(json.dumps(table, indent=2))
    print(text)


if __name__ == "__main__":
    main()
