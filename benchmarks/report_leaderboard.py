"""The summary's leaderboard sections: fev-style skill scores and win rates, per-task side by side, calibration,
seeds, the systems track's intervals, and their plots (see :mod:`benchmarks.leaderboard` for the rules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import data as bench_data
from .leaderboard import CLIP, Leaderboard, build
from .markdown import markdown_table as _md

BASELINE = "seasonal_naive"
PUBLISHED = " (published)"
#: Trained parameters of published models, from their model cards (others: unknown here).
PARAMETERS = {
    "chronos_tiny": 8e6, "chronos_mini": 20e6, "chronos_small": 46e6, "chronos_base": 200e6, "chronos_large": 710e6,
    "chronos_bolt_tiny": 9e6, "chronos_bolt_mini": 21e6, "chronos_bolt_small": 48e6, "chronos_bolt_base": 205e6,
    "chronos_2": 120e6, "moirai_small": 14e6, "moirai_base": 91e6, "moirai_large": 311e6, "tirex": 35e6,
    "timesfm": 200e6, "timesfm-2.0": 500e6,
}  # fmt: skip
#: Models that fit a few coefficients per series and are trained on nothing else.
LOCAL = (
    "seasonal_naive",
    "naive2",
    "parroting",
    "parroting_best",
    "auto_ets",
    "auto_theta",
    "auto_arima",
    "constant_mean",
)


def model_parameters(model: str) -> float:
    """Trained parameters of a benchmark model (DynaMix: counted from its checkpoint)."""
    base = model.split("#")[0].replace(PUBLISHED, "")
    if base.startswith("dynamix"):
        from dynamix_forecasting.model_cache import cached_pipeline

        name = base.split("[")[1].rstrip("]") if "[" in base else "dynamix-3d-alrnn-v1.0"
        try:
            return float(sum(p.numel() for p in cached_pipeline(name).model.parameters()))
        except Exception:  # a checkpoint given by path that is gone: unknown
            return float("nan")
    return 0.0 if base in LOCAL else PARAMETERS.get(base, float("nan"))


def ts_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Long (task, model, metric, value, leaked, seconds) rows: this run, its failures as NaN scores, and the
    published fev scores of the tasks this run's baseline covers (``<model> (published)``, leakage flagged)."""
    f = frame[frame["track"] == "ts"].copy()
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    f["seconds"] = pd.to_numeric(f["seconds"], errors="coerce")
    scored = f[f["metric"].isin(["MASE", "WQL"])][["task", "model", "metric", "value", "seconds"]]
    failed = f[(f["metric"] == "not_run") & f["note"].astype(str).str.startswith("failed")]
    failures = pd.concat(
        [failed[["task", "model"]].assign(metric=m, value=np.nan, seconds=np.nan) for m in ("MASE", "WQL")]
    )
    ours = pd.concat([scored, failures], ignore_index=True).assign(leaked=False)
    tasks = set(ours[ours["model"] == BASELINE]["task"])
    pub = bench_data.reference_results()
    pub = pub[pub["task"].isin(tasks) & (pub["model"] != BASELINE)]
    rows = []
    for metric in ("MASE", "WQL"):
        rows.append(
            pd.DataFrame(
                {
                    "task": pub["task"],
                    "model": pub["model"] + PUBLISHED,
                    "metric": metric,
                    "value": pub[metric],
                    "seconds": pub["inference_time_s"],
                    "leaked": pub["trained_on_this_dataset"].astype(str).str.lower() == "true",
                }
            )
        )
    return pd.concat([ours, *rows], ignore_index=True)


def _fmt_interval(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _params(n: float) -> str:
    if not np.isfinite(n):
        return "?"
    if n == 0:
        return "0 (fit per series)"
    return f"{n / 1e6:,.0f} M" if n >= 1e6 else f"{n:,.0f}"


def leaderboard_markdown(board: Leaderboard, metric: str) -> str:
    main = board.main
    table = pd.DataFrame(
        {
            "model": [m + (" ⚠ leakage" if n else "") for m, n in zip(main["model"], main["leaked"], strict=True)],
            "skill [95% CI]": [_fmt_interval(*r) for r in main[["skill", "skill_lo", "skill_hi"]].to_numpy()],
            "win rate [95% CI]": [_fmt_interval(*r) for r in main[["win_rate", "win_lo", "win_hi"]].to_numpy()],
            f"gmean rel {metric}": main[f"gmean_rel_{metric}"].map("{:.3f}".format),
            "failures": main["failures"],
            "leaked tasks": main["leaked"],
            "parameters": [_params(model_parameters(m)) for m in main["model"]],
        }
    )
    text = _md(table)
    if not board.subsets.empty:
        sub = board.subsets.copy()
        sub[f"gmean_rel_{metric}"] = sub[f"gmean_rel_{metric}"].map("{:.3f}".format)
        text += (
            f"\nRun on a subset of the tasks only (over the tasks each covers; **not comparable** with the table "
            f"above):\n\n{_md(sub)}"
        )
    return text


def seed_spread(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Skill of each seed of the stochastic models (same rules, same tasks) and their spread."""
    seeded = sorted({m.split("#")[0] for m in scores["model"].unique() if "#seed" in m})
    rows = []
    for base in seeded:
        runs = [m for m in scores["model"].unique() if m == base or m.startswith(base + "#seed")]
        skills = []
        for m in runs:
            one = scores[scores["model"].isin([BASELINE, m])]
            board = build(one, metric, n_boot=1)
            row = board.main.set_index("model")
            if m in row.index:
                skills.append(float(row.loc[m, "skill"]))
        rows.append(
            {"model": base, "seeds": len(skills), "skill per seed": ", ".join(f"{s:.3f}" for s in skills),
             "mean": float(np.mean(skills)), "std": float(np.std(skills, ddof=1)) if len(skills) > 1 else np.nan}
        )  # fmt: skip
    return pd.DataFrame(rows)


def per_task_table(scores: pd.DataFrame, metric: str = "MASE") -> pd.DataFrame:
    """Relative ``metric`` per task: this run's models and, beside each, its published score where fev has one."""
    s = scores[(scores["metric"] == metric)]
    wide = s.pivot_table(index="task", columns="model", values="value", aggfunc="first")
    rel = wide.div(wide[BASELINE], axis=0).clip(*CLIP)
    ours = [m for m in rel.columns if PUBLISHED not in m and "#seed" not in m and m != BASELINE]
    columns = []
    for m in ours:
        columns.append(m)
        if m + PUBLISHED in rel.columns:
            columns.append(m + PUBLISHED)
    extra = [m for m in ("chronos_bolt_small" + PUBLISHED, "tirex" + PUBLISHED) if m in rel.columns]
    return rel[columns + [m for m in extra if m not in columns]].round(3).reset_index()


def seconds_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Inference seconds per task and model (this run)."""
    s = scores[(scores["metric"] == "MASE") & ~scores["model"].str.contains(PUBLISHED, regex=False)]
    return s.pivot_table(index="task", columns="model", values="seconds", aggfunc="first").round(2).reset_index()


def band_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Empirical coverage of the 10-90 % band per task and probabilistic model (mid convention)."""
    f = frame[(frame["track"] == "ts") & (frame["metric"] == "mid_band_10_90")].copy()
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    wide = f.pivot_table(index="task", columns="model", values="value", aggfunc="first")
    wide = wide.loc[:, (wide > 0).any()]  # point-only models have a zero band
    return wide.round(3).reset_index()


def dsr_intervals(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Median over held-out systems with a bootstrap 95 % interval, per model, context and metric; win rate
    against parroting (share of systems with a lower score, ties half, a non-finite score loses)."""
    f = frame[(frame["track"] == "dsr") & frame["metric"].isin(["D_stsp", "D_H", "MASE@10"])].copy()
    if f.empty:
        return pd.DataFrame()
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    f["system"] = f["task"].str.split("@").str[0]
    f["context"] = f["task"].str.split("@").str[1].astype(int)
    f = f[f["group"] == "held_out"]
    rng = np.random.default_rng(seed)
    rows = []
    for (context, metric), g in f.groupby(["context", "metric"]):
        # dropna=False: a system whose score is NaN (a failed forecast) stays, and counts as the worst score
        wide = g.pivot_table(index="system", columns="model", values="value", aggfunc="first", dropna=False)
        wide = wide.replace([np.inf, -np.inf], np.nan)
        draws = rng.integers(0, len(wide), size=(n_boot, len(wide)))
        for model in wide.columns:
            v = wide[model].to_numpy(dtype=float)
            worst = np.where(np.isfinite(v), v, np.inf)  # a non-finite forecast counts as the worst score
            boot = np.median(worst[draws], axis=1)
            row = {"model": model, "context": context, "metric": metric, "systems": len(v),
                   "non_finite": int((~np.isfinite(v)).sum()), "median": float(np.median(worst)),
                   "ci_lo": float(np.quantile(boot, 0.025)), "ci_hi": float(np.quantile(boot, 0.975))}  # fmt: skip
            if "parroting" in wide.columns and model != "parroting":
                p = wide["parroting"].to_numpy(dtype=float)
                p = np.where(np.isfinite(p), p, np.inf)
                wins = (worst < p) + 0.5 * (worst == p)
                row["win_rate_vs_parroting"] = float(wins.mean())
                boot_w = wins[draws].mean(axis=1)
                row["win_lo"], row["win_hi"] = float(np.quantile(boot_w, 0.025)), float(np.quantile(boot_w, 0.975))
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["metric", "context", "median"], ignore_index=True)


def plot_leaderboard(board: Leaderboard, metric: str, path: Path) -> None:
    """Skill scores with their intervals (bars) beside the win-rate matrix."""
    main = board.main.iloc[::-1]
    fig = Figure(figsize=(14, 0.9 + 0.33 * len(main)))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    colors = ["C3" if PUBLISHED in m else "C0" for m in main["model"]]
    ax.barh(main["model"], main["skill"], color=colors, alpha=0.8)
    ax.errorbar(main["skill"], main["model"], xerr=[main["skill"] - main["skill_lo"], main["skill_hi"] - main["skill"]],
                fmt="none", color="black", lw=1)  # fmt: skip
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_xlabel(f"skill score (1 - gmean relative {metric}), 95 % bootstrap CI")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("blue: this run, red: published (fev 0.6.0)", fontsize=9)
    wins = board.win_matrix
    im = ax2.imshow(wins.to_numpy(), cmap="RdBu", vmin=0, vmax=1)
    ax2.set_xticks(range(len(wins)), wins.columns, rotation=60, ha="right", fontsize=6)
    ax2.set_yticks(range(len(wins)), wins.index, fontsize=6)
    ax2.set_title(f"win rate of row against column ({metric})", fontsize=9)
    fig.colorbar(im, ax=ax2, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_strip(board: Leaderboard, path: Path) -> None:
    """Per-task relative MASE of every model of the main table, one dot per task (log scale)."""
    rel = board.relative[board.main["model"]]
    fig = Figure(figsize=(8, 0.9 + 0.3 * rel.shape[1]))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, model in enumerate(rel.columns):
        v = rel[model].to_numpy(dtype=float)
        ax.scatter(v, i + rng.uniform(-0.15, 0.15, v.size), s=12, alpha=0.7,
                   color="C3" if PUBLISHED in model else "C0")  # fmt: skip
        ax.plot([np.exp(np.log(v).mean())] * 2, [i - 0.3, i + 0.3], color="black", lw=2)
    ax.set_xscale("log")
    ax.axvline(1.0, color="gray", ls="--", lw=0.8)
    ax.set_yticks(range(rel.shape[1]), rel.columns, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("MASE relative to seasonal naive per task (black: geometric mean)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_coverage(frame: pd.DataFrame, path: Path) -> None:
    """Mean empirical coverage per quantile level against the nominal level, per probabilistic model."""
    f = frame[(frame["track"] == "ts") & frame["metric"].astype(str).str.startswith("mid_coverage@")].copy()
    if f.empty:
        return
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    f["level"] = f["metric"].str.split("@").str[1].astype(float)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for model, g in f[~f["model"].str.contains("#seed")].groupby("model"):
        curve = g.groupby("level")["value"].mean()
        if np.ptp(curve.to_numpy()) < 1e-9:  # a point forecast at every level: not a distribution
            continue
        ax.plot(curve.index, curve.to_numpy(), marker="o", label=model)
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=0.8)
    ax.set_xlabel("quantile level")
    ax.set_ylabel("share of outcomes below the quantile (mean over tasks)")
    ax.legend(fontsize=8)
    ax.set_title("Calibration: on the diagonal is calibrated", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def ts_section(frame: pd.DataFrame, plots: Path) -> str:
    """The leaderboard part of ``summary.md`` for the time-series track ('' when the track has no baseline)."""
    scores = ts_scores(frame)
    if BASELINE not in set(scores["model"]):
        return ""
    ranked = scores[~scores["model"].str.contains("#seed")]
    parts = [
        "## Leaderboard (fev rules)\n",
        "Skill score = 1 - geometric mean over tasks of the error relative to seasonal naive, relative errors "
        "clipped to [0.01, 100]; win rate = share of tasks (and opponents) where a model's relative error is "
        "lower, ties half; 95 % bootstrap intervals over tasks (1,000 resamples). A task a model failed on gets "
        "seasonal naive's score and counts in `failures`. Published fev 0.6.0 scores (`(published)`) are divided "
        "by this run's seasonal naive, which reproduces fev's; a published model trained on a task (`leaked "
        "tasks`, flagged ⚠ leakage) gets seasonal naive's score there, as fev imputes leaked tasks. Only models "
        "with every task are ranked; subsets are listed apart.\n",
    ]
    for metric in ("MASE", "WQL"):
        board = build(ranked, metric)
        parts.append(f"\n### {metric}\n")
        parts.append(leaderboard_markdown(board, metric))
        plot_leaderboard(board, metric, plots / f"leaderboard_{metric}.png")
        parts.append(f"\n![{metric} leaderboard](plots/leaderboard_{metric}.png)\n")
        if metric == "MASE":
            plot_strip(board, plots / "per_task_relative_mase.png")
            parts.append("\n![per-task relative MASE](plots/per_task_relative_mase.png)\n")
    spread = pd.concat([seed_spread(scores, m).assign(metric=m) for m in ("MASE", "WQL")], ignore_index=True)
    if not spread.empty:
        parts.append("\nSeeds of the stochastic models (skill score per seed, same rules and tasks):\n")
        parts.append(_md(spread))
    parts.append("\nPer task, MASE relative to seasonal naive: this run and, beside it, the published fev score:\n")
    parts.append(_md(per_task_table(scores)))
    parts.append("\nInference seconds per task (this run, this machine):\n")
    parts.append(_md(seconds_table(scores)))
    bands = band_table(frame)
    if not bands.empty:
        parts.append("\nCalibration: coverage of the 10-90 % band per task (nominal 0.80):\n")
        parts.append(_md(bands))
        plot_coverage(frame, plots / "coverage_curves.png")
        parts.append("\n![coverage curves](plots/coverage_curves.png)\n")
    return "\n".join(parts)


def dsr_section(frame: pd.DataFrame) -> str:
    table = dsr_intervals(frame)
    if table.empty:
        return ""
    return (
        "\n### Held-out systems: medians with 95 % bootstrap intervals, win rates against parroting\n\n"
        "A non-finite forecast counts as the worst score; seeds after the first are listed as `#seed<k>`.\n\n"
        + _md(table)
    )
