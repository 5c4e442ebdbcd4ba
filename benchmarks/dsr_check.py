"""Model selection and stability checks of DynaMix checkpoints on the dynamical-systems track's protocol.

Two jobs, both with the systems track's forecasts (first C points as context, 10,000 steps, one sample
path, seed 0):

* ``--set validation``: D_stsp and D_H on the *validation regimes* — new chaotic regimes of the training
  systems drawn with a seed no training run uses (``perturbed_regimes(..., seed=1)``). Candidates are
  chosen on these; the held-out dysts systems are never used for choosing.
* ``--set held_out``: whether any forecast of a held-out dysts system diverges *without* the benchmark's
  divergence guard: non-finite, or farther from the context mean than ``BOUND`` times the context's
  largest standardized excursion (the bound at which the guard would act).

Usage::

    python -m benchmarks.dsr_check MODEL [MODEL ...] --set validation --output FILE.csv
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dynamix_forecasting import geometrical_misalignment, temporal_misalignment
from dynamix_forecasting.model_cache import cached_pipeline

from . import data as bench_data

#: A forecast farther from the context mean than this multiple of the context's largest standardized
#: excursion counts as diverging (the benchmark's ``divergence_guard``).
BOUND = 10.0
CONTEXTS = (512, 2000)
HORIZON = 10_000


def validation_trajectories(cache: str | Path, per_system: int = 3, seed: int = 1) -> dict[str, np.ndarray]:
    """The validation regimes: three draws of new chaotic regimes per training system, seed 1, 12,000 points."""
    from dynamix_forecasting.training.corpus import perturbed_regimes

    systems = bench_data.dysts_systems(training=True)
    return perturbed_regimes(systems, per_system, cache, seed=seed, n_points=12_000)


def diverges(forecast: np.ndarray, context: np.ndarray, bound: float = BOUND) -> bool:
    """Non-finite, or beyond ``bound`` times the context's largest standardized excursion."""
    if not np.isfinite(forecast).all():
        return True
    mean, std = context.mean(0), context.std(0)
    std = np.where(std > 0, std, 1.0)
    reach = np.abs((context - mean) / std).max()
    return bool(np.abs((forecast - mean) / std).max() > bound * reach)


def check(
    model: str,
    trajectories: dict[str, np.ndarray],
    contexts: tuple[int, ...] = CONTEXTS,
    horizon: int = HORIZON,
    guard: bool = True,
) -> pd.DataFrame:
    """One row per (trajectory, context): D_stsp, D_H (guarded forecast, as the benchmark scores) and whether
    the unguarded forecast diverges."""
    pipeline = cached_pipeline(model)
    rows = []
    for name, trajectory in tqdm(trajectories.items(), desc=Path(model).stem, unit="system"):
        for c in contexts:
            context, truth = trajectory[:c], trajectory[c : c + horizon]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                free = pipeline.forecast(context, truth.shape[0], mode="dynamics", seed=0)
                guarded = (
                    pipeline.forecast(context, truth.shape[0], mode="dynamics", seed=0, divergence_guard=BOUND)
                    if guard
                    else free
                )
                finite = bool(np.isfinite(guarded).all())
                rows.append(
                    dict(
                        model=model,
                        system=name,
                        context=c,
                        D_stsp=geometrical_misalignment(guarded, truth) if finite else np.nan,
                        D_H=temporal_misalignment(guarded, truth) if finite else np.nan,
                        diverged=diverges(np.asarray(free), context),
                    )
                )
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and context: median D_stsp and D_H (a non-finite score counts as the worst) and divergences."""

    def worst_median(values: pd.Series) -> float:
        return float(values.fillna(np.inf).median())

    return rows.groupby(["model", "context"]).agg(
        D_stsp=("D_stsp", worst_median), D_H=("D_H", worst_median), diverged=("diverged", "sum")
    )


def selection_table(rows: pd.DataFrame, reference: str = "dynamix-3d-alrnn-v1.0") -> pd.DataFrame:
    """Per candidate: the medians, the declared criterion (mean over contexts and metrics of the median's
    ratio to ``reference``), and for information the geometric mean of the per-system ratios."""
    table = summary(rows)
    out = []
    ref = rows[rows.model == reference]
    for model, g in rows.groupby("model", sort=False):
        record: dict = {"model": Path(model).stem if model.endswith(".safetensors") else model}
        ratios, per_system = [], []
        for c in sorted(g.context.unique()):
            for metric in ("D_stsp", "D_H"):
                median = table.loc[(model, c), metric]
                record[f"{metric} C={c}"] = median
                ratios.append(median / table.loc[(reference, c), metric])
                paired = g[g.context == c].merge(ref[ref.context == c], on="system", suffixes=("", "_ref"))
                logs = np.log(paired[metric] / paired[f"{metric}_ref"])
                per_system.append(float(np.exp(logs[np.isfinite(logs)].mean())))
        record["criterion"] = float(np.mean(ratios))
        record["per-system geo-mean ratio"] = float(np.mean(per_system))
        record["diverged"] = int(g.diverged.sum())
        out.append(record)
    return pd.DataFrame(out).sort_values("criterion")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dsr_check", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoint names or paths")
    parser.add_argument("--set", choices=["validation", "held_out"], default="validation")
    parser.add_argument("--cache", default=".cache/dynamix-validation", help="cache of the validation regimes")
    parser.add_argument("--output", help="CSV of the per-system rows")
    parser.add_argument("--append", action="store_true", help="add to the rows already in --output")
    args = parser.parse_args(argv)
    if args.set == "validation":
        trajectories = validation_trajectories(args.cache)
    else:
        trajectories = {name: bench_data.load_dysts(name) for name in bench_data.dysts_systems(training=False)}
    rows = pd.concat([check(m, trajectories, guard=args.set == "validation") for m in args.models])
    if args.output and args.append and Path(args.output).exists():
        old = pd.read_csv(args.output)
        rows = pd.concat([old[~old.model.isin(rows.model.unique())], rows], ignore_index=True)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(args.output, index=False)
    table = summary(rows)
    print(f"{args.set}: {len(trajectories)} trajectories")
    print(table.to_string())
    if args.set == "validation" and "dynamix-3d-alrnn-v1.0" in set(rows.model):
        from .markdown import markdown_table

        print(markdown_table(selection_table(rows)))
    if args.set == "held_out":
        bad = rows[rows.diverged]
        print(
            json.dumps(
                {
                    m: sorted(f"{s}@{c}" for s, c in zip(g.system, g.context, strict=True))
                    for m, g in bad.groupby("model")
                }
            )
        )


if __name__ == "__main__":
    main()
