"""``python -m benchmarks.ts_calibrate``: the time-series mode's per-level quantile table, fitted on the tuning half.

An experiment of the second tuning round (logged in ``benchmarks/results/ts-tuning/tuning-log.csv``, not adopted):
one quantile table ``Z(q)`` for all series, quantile ``point + spread * Z(q)``, fitted as the quantiles of the
standardized errors ``u = (y - point) / spread`` of the tuning half's forecasts (each task weighted equally).
It is checked leaving one tuning task out (fit on eight, score the ninth) against the Laplace shape, measured
with the per-series error shape switched off (``--recipe '{"SHAPE_PRIOR": 0}'``, the default here).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.data import load_task
from benchmarks.models import fill_missing
from benchmarks.scoring import QUANTILES, geometric_mean, task_wql
from benchmarks.splits import TUNING_TASKS
from dynamix_forecasting import DynaMixPipeline, ForecastOptions, timeseries


def task_forecasts(pipeline: DynaMixPipeline, tasks: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
    """Per task: truth, median (the point, clipped), spread and the quantile floor of every series."""
    out = {}
    for name in tasks:
        task = load_task(name)
        histories = [fill_missing(h) for h in task.histories]
        options = ForecastOptions(mode="time_series", season_length=task.seasonality)
        q, _ = pipeline.predict_quantiles(histories, task.horizon, [0.5, 0.9], options)
        q = np.asarray(q)[:, :, 0, :].transpose(1, 0, 2)  # (S, H, 2)
        spread = (q[..., 1] - q[..., 0]) / timeseries.laplace_quantile(np.array([0.9]))[0]
        floor = np.array([0.0 if np.all(h >= 0) else -np.inf for h in histories])
        truth = np.stack([np.asarray(t, dtype=float) for t in task.targets])
        out[name] = {"truth": truth, "median": q[..., 0], "spread": spread, "floor": floor}
    return out


def fit_table(forecasts: dict, tasks: list[str], symmetric: bool) -> dict[str, float]:
    """The quantiles of the standardized errors of ``tasks`` (each task weighted equally) at the levels."""
    u, w = [], []
    for name in tasks:
        f = forecasts[name]
        ok = np.isfinite(f["truth"]) & (f["spread"] > 0)
        u.append(((f["truth"] - f["median"]) / np.where(ok, f["spread"], 1.0))[ok])
        w.append(np.full(int(ok.sum()), 1.0 / max(int(ok.sum()), 1)))
    levels = np.asarray(QUANTILES)
    z = weighted_quantiles(np.concatenate(u), np.concatenate(w), levels)
    if symmetric:
        z = 0.5 * (z - z[::-1])
    return {f"{q:.1f}": float(v) for q, v in zip(levels, z, strict=True)}


def table_z(table: dict | None) -> np.ndarray:
    """The multiples of the spread at the benchmark's levels: the table's, or the Laplace quantiles."""
    levels = np.asarray(QUANTILES)
    if table is None:
        return timeseries.laplace_quantile(levels)
    return np.maximum.accumulate(np.array([table[f"{q:.1f}"] for q in levels]))


def wql_with(f: dict, table: dict | None) -> float:
    """The task's WQL with quantiles ``median + spread * Z(q)`` (clipped at the floor)."""
    z = table_z(table)
    preds = np.maximum(f["median"][None] + z[:, None, None] * f["spread"][None], f["floor"][None, :, None])
    return task_wql(list(f["truth"]), preds)


def cross_check(forecasts: dict) -> None:
    """Leave one tuning task out: fit the table on the other eight, score the ninth; Laplace as the reference."""
    names = list(forecasts)
    ratios: dict[str, list[float]] = {"symmetric": [], "asymmetric": []}
    for name in names:
        rest = [n for n in names if n != name]
        base = wql_with(forecasts[name], None)
        for kind in ratios:
            ratios[kind].append(wql_with(forecasts[name], fit_table(forecasts, rest, kind == "symmetric")) / base)
        print(f"{name:28s} " + "  ".join(f"{k} {v[-1]:.3f}" for k, v in ratios.items()))
    for kind, values in ratios.items():
        print(f"leave-one-task-out WQL ratio to the Laplace quantiles, {kind}: {geometric_mean(values):.4f}")
    for kind in ("laplace", "symmetric", "asymmetric"):
        cover = []
        for name in names:
            table = (
                None
                if kind == "laplace"
                else fit_table(forecasts, [n for n in names if n != name], kind == "symmetric")
            )
            cover.append(coverage_with(forecasts[name], table))
        print(
            f"coverage per level (mean over tasks, left-out task), {kind}: "
            + " ".join(f"{c:.3f}" for c in np.mean(cover, axis=0))
        )


def coverage_with(f: dict, table: dict | None) -> np.ndarray:
    """Share of the task's targets at or below each level's quantile."""
    z = table_z(table)
    preds = np.maximum(f["median"][None] + z[:, None, None] * f["spread"][None], f["floor"][None, :, None])
    ok = np.isfinite(f["truth"])
    return np.array([(f["truth"] <= p)[ok].mean() for p in preds])


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return np.interp(levels, cumulative - 0.5 * weights[order] / weights.sum(), values[order])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default='{"SHAPE_PRIOR": 0}', help="JSON: constants of timeseries to set first")
    parser.add_argument("--symmetric", action="store_true", help="print the symmetric table")
    args = parser.parse_args(argv)
    for name, value in json.loads(args.recipe).items():
        setattr(timeseries, name, value)
    forecasts = task_forecasts(DynaMixPipeline.from_pretrained(), TUNING_TASKS)
    cross_check(forecasts)
    levels = np.asarray(QUANTILES)
    fitted = fit_table(forecasts, list(forecasts), symmetric=args.symmetric)
    table = np.array([fitted[f"{q:.1f}"] for q in levels])
    print("level  laplace  fitted")
    for q, z in zip(levels, table, strict=True):
        print(f"{q:.1f}    {timeseries.laplace_quantile(np.array([q]))[0]:+.3f}   {z:+.3f}")
    print("table =", json.dumps({f"{q:.1f}": round(float(z), 3) for q, z in zip(levels, table, strict=True)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
