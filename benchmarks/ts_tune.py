"""``python -m benchmarks.ts_tune``: score time-series-mode configurations on one half of the track, logged.

The protocol is declared in :mod:`benchmarks.splits`: configurations are compared on the tuning half only,
and every one tried is appended to the committed log ``benchmarks/results/ts-tuning/tuning-log.csv`` (in the
order tried, with its scores and seconds), so the choices can be audited. ``--half held_out`` is for the final
configuration once, and writes to the same log marked as such.

Prints per task the relative MASE / WQL (to seasonal naive) and the geometric means, and the seconds per series
of the DynaMix call (the whole ``predict_quantiles`` of the task's windows).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.data import load_task
from benchmarks.models import fill_missing
from benchmarks.scoring import QUANTILES, geometric_mean, quantile_coverage, task_mase, task_wql
from benchmarks.splits import HELD_OUT_TASKS, TUNING_TASKS
from dynamix_forecasting import DynaMixPipeline, ForecastOptions, timeseries

LOG = Path(__file__).resolve().parent / "results" / "ts-tuning" / "tuning-log.csv"
FIELDS = ["when", "half", "config", "note", "mase", "wql", "seconds_per_series", "per_task", "coverage"]


def seasonal_naive(history: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """The last season repeated (the last value where the history is shorter than a season)."""
    h = fill_missing(history)
    if h.shape[0] < m or m <= 1:
        return np.full(horizon, h[-1])
    return np.resize(h[-m:], horizon)


def score(pipeline: DynaMixPipeline, tasks: tuple[str, ...], config: dict) -> dict:
    """Relative MASE and WQL per task and their geometric means, with the DynaMix seconds per series."""
    per_task, seconds, n_series, coverage = {}, 0.0, 0, []
    for name in tasks:
        task = load_task(name)
        histories = [fill_missing(h) for h in task.histories]
        options = ForecastOptions(mode="time_series", season_length=task.seasonality, **config.get("options", {}))
        start = time.perf_counter()
        q, point = pipeline.predict_quantiles(histories, task.horizon, QUANTILES, options)
        seconds += time.perf_counter() - start
        n_series += len(histories)
        medians = np.asarray(point)[:, :, 0].T  # (S, H)
        quants = np.moveaxis(np.asarray(q)[:, :, 0, :], -1, 0).transpose(0, 2, 1)  # (Q, S, H)
        naive = np.stack([seasonal_naive(h, task.horizon, task.seasonality) for h in task.histories])
        base_mase = task_mase(task.histories, task.targets, naive, task.seasonality)
        base_wql = task_wql(task.targets, np.repeat(naive[None], len(QUANTILES), axis=0))
        cover = quantile_coverage(task.targets, quants)
        coverage.append([cover[f"mid_coverage@{q:g}"] for q in QUANTILES])
        per_task[name] = (
            task_mase(task.histories, task.targets, medians, task.seasonality) / base_mase,
            task_wql(task.targets, quants) / base_wql,
        )
        print(f"{name:28s} MASE {per_task[name][0]:.3f}  WQL {per_task[name][1]:.3f}", flush=True)
    return {
        "mase": geometric_mean(v[0] for v in per_task.values()),
        "wql": geometric_mean(v[1] for v in per_task.values()),
        "seconds_per_series": seconds / n_series,
        "per_task": {k: [round(a, 4), round(b, 4)] for k, (a, b) in per_task.items()},
        # mean over the tasks of each level's coverage (an outcome equal to the forecast counts half)
        "coverage": [round(float(c), 3) for c in np.mean(coverage, axis=0)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=["tuning", "held_out"], default="tuning")
    parser.add_argument(
        "--config",
        default="{}",
        help='JSON: {"options": {ForecastOptions fields}, "recipe": {constants of dynamix_forecasting.timeseries}}',
    )
    parser.add_argument("--note", default="", help="what this configuration is (kept in the log)")
    parser.add_argument("--model", default="dynamix-3d-alrnn-v1.0")
    parser.add_argument("--no-log", action="store_true", help="print only (e.g. a timing check)")
    args = parser.parse_args(argv)
    config = json.loads(args.config)
    for name, value in config.get("recipe", {}).items():
        if not hasattr(timeseries, name):
            raise SystemExit(f"error: dynamix_forecasting.timeseries has no constant {name!r}")
        setattr(timeseries, name, value)  # the recipe's constants, for this process only
    tasks = TUNING_TASKS if args.half == "tuning" else HELD_OUT_TASKS
    result = score(DynaMixPipeline.from_pretrained(args.model), tasks, config)
    print(
        f"{args.half}: MASE {result['mase']:.4f}  WQL {result['wql']:.4f}  "
        f"{1000 * result['seconds_per_series']:.3f} ms per series\ncoverage at {QUANTILES}: {result['coverage']}"
    )
    if not args.no_log:
        LOG.parent.mkdir(parents=True, exist_ok=True)
        new = not LOG.exists()
        with LOG.open("a", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(
                {
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "half": args.half,
                    "config": json.dumps(config, sort_keys=True),
                    "note": args.note,
                    "mase": round(result["mase"], 4),
                    "wql": round(result["wql"], 4),
                    "seconds_per_series": round(result["seconds_per_series"], 6),
                    "per_task": json.dumps(result["per_task"]),
                    "coverage": json.dumps(result["coverage"]),
                }
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
