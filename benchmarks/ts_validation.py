"""Choosing a time-series checkpoint without benchmark data: the time-series mode on held-back synthetic series.

The validation series are drawn by :func:`~dynamix_forecasting.training.synthetic.synthetic_corpus` with a
seed no training run uses (2026), shifted to be positive (as most business series are, and so that WQL's
denominator is meaningful), grouped by their season (1 where none is known), and forecast ``HORIZON``
steps ahead with the time-series mode exactly as the benchmark's ``dynamix_ts`` does. Scores: geometric
mean over the season groups of MASE and WQL relative to seasonal naive, as fev aggregates tasks.

Usage::

    python -m benchmarks.ts_validation MODEL [MODEL ...] --output FILE.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from dynamix_forecasting.training.synthetic import synthetic_corpus

from .models import DynaMixTimeSeries, SeasonalNaive
from .scoring import task_mase, task_wql

SEED = 2026
HORIZON = 24
N_SERIES = 400
LENGTH = 256


def validation_tasks(n_series: int = N_SERIES, seed: int = SEED) -> dict[int, tuple[list, list]]:
    """Season -> (histories, targets): the last ``HORIZON`` points of each series held out."""
    series, periods = synthetic_corpus(n_series, LENGTH, seed, progress=False)
    shifted = series - series.min(1, keepdims=True) + 0.5 * series.std(1, keepdims=True) + 1e-3
    tasks: dict[int, tuple[list, list]] = {}
    for y, p in zip(shifted, periods, strict=True):
        histories, targets = tasks.setdefault(int(p) if p > 1 else 1, ([], []))
        histories.append(y[:-HORIZON])
        targets.append(y[-HORIZON:])
    return tasks


def score(model, tasks: dict[int, tuple[list, list]]) -> pd.DataFrame:
    rows = []
    for season, (histories, targets) in tasks.items():
        point, quantiles = model.forecast_ts(histories, HORIZON, season)
        rows.append(
            dict(
                model=model.name,
                season=season,
                series=len(histories),
                MASE=task_mase(histories, targets, point, season),
                WQL=task_wql(targets, quantiles),
            )
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ts_validation", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoint names or paths")
    parser.add_argument("--output", help="CSV of the per-season rows")
    args = parser.parse_args(argv)
    tasks = validation_tasks()
    frames = [score(SeasonalNaive(), tasks)]
    for m in args.models:
        model = DynaMixTimeSeries(m)
        model.name = Path(m).stem if m.endswith(".safetensors") else m
        frames.append(score(model, tasks))
    rows = pd.concat(frames, ignore_index=True)
    if args.output:
        rows.to_csv(args.output, index=False)
    base = rows[rows.model == "seasonal_naive"].set_index("season")
    out = []
    for name, g in rows.groupby("model", sort=False):
        g = g.set_index("season")
        rel = {k: float(np.exp(np.log(g[k] / base[k]).mean())) for k in ("MASE", "WQL")}
        out.append(dict(model=name, **rel, groups=len(g), series=int(g.series.sum())))
    print(pd.DataFrame(out).to_string(index=False))


if __name__ == "__main__":
    main()
