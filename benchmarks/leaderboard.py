"""Leaderboard aggregation in the way fev summarises a benchmark: skill scores and win rates with bootstrap intervals.

Rules (each tested in ``tests/test_benchmarks.py``):

- **Relative error** of a model on a task: its score divided by the baseline's (seasonal naive) on that task,
  clipped to ``[0.01, 100]`` as fev does, so one zero or one blow-up cannot dominate the geometric mean.
- **Missing results**: a task a model was run on but failed (no finite score) gets the baseline's score (relative
  error 1) and is counted in the ``failures`` column. A model that was not run on every task is never ranked in
  the main table: it goes to the subset table, labelled with the tasks it covers.
- **Leakage**: a published model trained on a task (``trained_on_this_dataset``) gets the baseline's score on that
  task too, counted in ``leaked``; its row is flagged.
- **Skill score**: ``1 - geometric mean of the relative errors`` over tasks (higher is better).
- **Win rate** of A against B: the share of tasks where A's relative error is lower, ties counting half; a model's
  win rate is its mean over all other models.
- **Intervals**: 95 % percentile bootstrap over tasks (tasks resampled with replacement, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CLIP = (0.01, 100.0)


@dataclass
class Leaderboard:
    """The aggregate tables of one metric."""

    main: pd.DataFrame  # one row per model with every task: skill score, win rate, their intervals, counts
    subsets: pd.DataFrame  # models run on some tasks only, over the tasks they cover (not comparable with main)
    win_matrix: pd.DataFrame  # win rate of the row model against the column model (main models)
    relative: pd.DataFrame  # task x model relative errors after clipping and imputation (main models)


def relative_errors(
    scores: pd.DataFrame,
    metric: str,
    baseline: str = "seasonal_naive",
    clip: tuple[float, float] = CLIP,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Relative errors ``task x model`` with the missing-results and leakage rules applied.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table with columns ``task``, ``model``, ``metric``, ``value`` and optionally ``leaked`` (bool). A
        (task, model) pair that is present with a non-finite value counts as a failure; a pair that is absent
        was not run.
    metric : str
        The metric to aggregate (e.g. ``"MASE"``).

    Returns
    -------
    relative, failures, leaked : pandas.DataFrame
        Relative errors (NaN where not run), and boolean tables of the imputed failures and leaked tasks.
    """
    rows = scores[scores["metric"] == metric]
    values = rows.pivot_table(index="task", columns="model", values="value", aggfunc="first", dropna=False)
    present = rows.assign(flag=True).pivot_table(index="task", columns="model", values="flag", aggfunc="any")
    present = present.reindex_like(values).eq(True)
    if baseline not in values.columns:
        raise ValueError(f"The baseline {baseline!r} has no {metric} scores; it is needed for relative errors.")
    base = values[baseline]
    if not np.isfinite(base.to_numpy(dtype=float)).all():
        bad = list(base.index[~np.isfinite(base.to_numpy(dtype=float))])
        raise ValueError(f"The baseline {baseline!r} has no finite {metric} on tasks {bad}; fix those tasks first.")
    leaked = pd.DataFrame(False, index=values.index, columns=values.columns)
    if "leaked" in rows.columns:
        flags = rows.pivot_table(index="task", columns="model", values="leaked", aggfunc="any")
        leaked = flags.reindex_like(values).eq(True)
    numeric = values.astype(float)
    failures = present & ~np.isfinite(numeric)
    relative = numeric.div(base, axis=0)
    relative = relative.mask(failures | leaked, 1.0)  # the baseline's score
    relative = relative.mask(~present)  # not run: stays missing
    return relative.clip(*clip), failures, leaked


def _skill(rel: np.ndarray) -> np.ndarray:
    """Skill score per column of ``rel`` (tasks x models)."""
    return 1.0 - np.exp(np.mean(np.log(rel), axis=0))


def _wins(rel: np.ndarray) -> np.ndarray:
    """Win-rate matrix (models x models) over the rows of ``rel``."""
    a, b = rel[:, :, None], rel[:, None, :]
    return np.mean((a < b) + 0.5 * (a == b), axis=0)


def build(
    scores: pd.DataFrame,
    metric: str,
    baseline: str = "seasonal_naive",
    n_boot: int = 1000,
    seed: int = 0,
    clip: tuple[float, float] = CLIP,
) -> Leaderboard:
    """The leaderboard of ``metric`` (see the module's rules)."""
    relative, failures, leaked = relative_errors(scores, metric, baseline, clip)
    complete = [m for m in relative.columns if relative[m].notna().all()]
    rel = relative[complete]
    matrix = rel.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, matrix.shape[0], size=(n_boot, matrix.shape[0]))
    skills = np.stack([_skill(matrix[d]) for d in draws])
    wins = _wins(matrix)
    others = max(1, len(complete) - 1)
    boot_wins = np.stack([(_wins(matrix[d]).sum(1) - 0.5) / others for d in draws])
    main = pd.DataFrame(
        {
            "model": complete,
            "skill": _skill(matrix),
            "skill_lo": np.quantile(skills, 0.025, axis=0),
            "skill_hi": np.quantile(skills, 0.975, axis=0),
            "win_rate": (wins.sum(1) - 0.5) / others,  # the diagonal is a tie with itself
            "win_lo": np.quantile(boot_wins, 0.025, axis=0),
            "win_hi": np.quantile(boot_wins, 0.975, axis=0),
            f"gmean_rel_{metric}": np.exp(np.mean(np.log(matrix), axis=0)),
            "tasks": matrix.shape[0],
            "failures": [int(failures[m].sum()) for m in complete],
            "leaked": [int(leaked[m].sum()) for m in complete],
        }
    ).sort_values("skill", ascending=False, ignore_index=True)
    partial = [m for m in relative.columns if m not in complete]
    subsets = pd.DataFrame(
        [
            {
                "model": m,
                "tasks": int(relative[m].notna().sum()),
                "of": relative.shape[0],
                f"gmean_rel_{metric}": float(np.exp(np.log(relative[m].dropna()).mean())),
                "failures": int(failures[m].sum()),
                "leaked": int(leaked[m].sum()),
                "covers": ", ".join(relative.index[relative[m].notna()]),
            }
            for m in partial
        ]
    )
    win_matrix = pd.DataFrame(wins, index=complete, columns=complete).loc[main["model"], main["model"]]
    return Leaderboard(main=main, subsets=subsets, win_matrix=win_matrix, relative=rel)
