"""Summary tables (Markdown) and plots of a benchmark run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # figures without pyplot: no global backend switch on import
from matplotlib.ticker import NullFormatter

from . import data as bench_data
from .markdown import markdown_table as _md
from .report_leaderboard import dsr_section, ts_section
from .scoring import geometric_mean
from .splits import HELD_OUT_TASKS, TUNING_TASKS

PUBLISHED_IN_PLOTS = ["chronos_bolt_small", "chronos_bolt_tiny", "tirex", "auto_ets"]


def _scores(frame: pd.DataFrame, track: str) -> pd.DataFrame:
    f = frame[(frame["track"] == track) & (frame["metric"] != "not_run")].copy()
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    return f


def ts_tables(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-task scores (MASE, WQL) and the aggregate relative to seasonal naive, ours and published."""
    f = _scores(frame, "ts")
    if f.empty:
        return pd.DataFrame(), pd.DataFrame()
    wide = f.pivot_table(index=["task", "model"], columns="metric", values="value").reset_index()
    tasks = sorted(wide["task"].unique())
    rows = []
    base = wide[wide["model"] == "seasonal_naive"].set_index("task")
    for model, group in wide.groupby("model"):
        g = group.set_index("task")
        common = [t for t in g.index if t in base.index]
        rel_mase = [g.loc[t, "MASE"] / base.loc[t, "MASE"] for t in common]
        rel_wql = [g.loc[t, "WQL"] / base.loc[t, "WQL"] for t in common]
        rows.append(dict(model=model, source="this run", tasks=len(common),
                         rel_MASE=geometric_mean(rel_mase), rel_WQL=geometric_mean(rel_wql)))  # fmt: skip
    published = bench_data.reference_results()
    published = published[published["task"].isin(tasks)]
    pbase = published[published["model"] == "seasonal_naive"].set_index("task")
    for model, group in published.groupby("model"):
        g = group.set_index("task")
        common = [t for t in g.index if t in pbase.index]
        rows.append(
            dict(
                model=model,
                source="published (fev 0.6.0)",
                tasks=len(common),
                rel_MASE=geometric_mean(g.loc[t, "MASE"] / pbase.loc[t, "MASE"] for t in common),
                rel_WQL=geometric_mean(g.loc[t, "WQL"] / pbase.loc[t, "WQL"] for t in common),
            )
        )
    agg = pd.DataFrame(rows).sort_values("rel_MASE")
    return wide, agg


def tuning_halves(wide: pd.DataFrame, model: str = "dynamix_ts") -> str:
    """The headline of the time-series mode: its held-out half first (the recipe was tuned on the other half,
    ``benchmarks/splits.py``), then the tuning half and all tasks; empty where the run lacks either half."""
    base = wide[wide["model"] == "seasonal_naive"].set_index("task")
    mine = wide[wide["model"] == model].set_index("task")
    cells = []
    for label, tasks in (
        ("held-out half", HELD_OUT_TASKS),
        ("tuning half", TUNING_TASKS),
        ("all tasks, tuned on the tuning half", None),
    ):
        names = [t for t in (tasks or mine.index) if t in mine.index and t in base.index]
        if not names or (tasks is not None and len(names) < len(tasks)):
            return ""
        mase = geometric_mean(mine.loc[t, "MASE"] / base.loc[t, "MASE"] for t in names)
        wql = geometric_mean(mine.loc[t, "WQL"] / base.loc[t, "WQL"] for t in names)
        cells.append(f"{label} ({len(names)} tasks): MASE **{mase:.3f}**, WQL **{wql:.3f}**")
    return (
        f"`{model}`'s settings were chosen on the tuning half of `benchmarks/splits.py`; relative to seasonal naive: "
        + "; ".join(cells)
        + ". The leaderboard below ranks all tasks together.\n"
    )


def dsr_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Median and inter-quartile range over systems, per model, group and context length."""
    f = _scores(frame, "dsr")
    if f.empty:
        return pd.DataFrame()
    f["context"] = f["task"].str.split("@").str[1].astype(int)
    rows = []
    for (model, group, context, metric), g in f.groupby(["model", "group", "context", "metric"]):
        v = g["value"].to_numpy(dtype=float)
        ok = v[np.isfinite(v)]
        rows.append(
            dict(
                model=model, group=group, context=context, metric=metric, systems=len(v), finite=len(ok),
                median=np.median(ok) if ok.size else np.nan,
                q25=np.quantile(ok, 0.25) if ok.size else np.nan, q75=np.quantile(ok, 0.75) if ok.size else np.nan,
            )
        )  # fmt: skip
    return pd.DataFrame(rows)


def foundation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The speed comparison with the foundation models, one row per model: size, memory, the three workloads'
    times and how many times slower each model is than DynaMix on workload (a), per series."""
    f = _scores(frame, "speed")
    f = f[f["task"].str.startswith("fm")]
    if f.empty:
        return pd.DataFrame()
    rows = []
    for model, g in f.groupby("model"):

        def pick(prefix: str, metric: str, g=g) -> pd.Series:
            return g[g["task"].str.startswith(prefix) & (g["metric"] == metric)]["value"]

        a_seconds, a_series = pick("fm_a:", "seconds").sum(), pick("fm_a:", "series").sum()
        rows.append(
            {
                "model": model,
                "weights": "random (architecture timing)" if "[random]" in model else "released",
                "parameters": float(pick("fm:model", "parameters").sum()),
                "peak MB": float(pick("fm:model", "peak_mb").sum()),
                "(a) tasks": int(pick("fm_a:", "series").size),
                "(a) s per series": a_seconds / a_series if a_series else np.nan,
                "(a) s in all": a_seconds,
                "(b) s": float(pick("fm_b:", "seconds").sum()),
                "(c) s per series": float(pick("fm_c:", "seconds_per_series").sum()),
            }
        )
    table = pd.DataFrame(rows)
    per_series = table.set_index("model")["(a) s per series"]
    for ref in ("dynamix_ts", "dynamix_1path", "dynamix"):
        if ref in per_series:
            table[f"(a) x {ref}"] = table["(a) s per series"] / per_series[ref]
    return table.sort_values("(a) s per series")


def published_accuracy(tasks: list[str] | None = None) -> dict[str, float]:
    """Geometric-mean MASE relative to seasonal naive of the published models (fev 0.6.0) over ``tasks``."""
    published = bench_data.reference_results()
    if tasks:
        published = published[published["task"].isin(tasks)]
    base = published[published["model"] == "seasonal_naive"].set_index("task")["MASE"]
    out = {}
    for model, g in published.groupby("model"):
        g = g.set_index("task")["MASE"]
        common = [t for t in g.index if t in base.index]
        out[model] = geometric_mean(g[t] / base[t] for t in common)
    return out


def _plot_speed_accuracy(table: pd.DataFrame, accuracy: dict[str, float], path: Path) -> None:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for _, row in table.iterrows():
        name = row["model"].replace("[random]", "")
        rel = accuracy.get(name, accuracy.get("dynamix" if name == "dynamix_1path" else "", np.nan))
        if not np.isfinite(rel) or not np.isfinite(row["(a) s per series"]):
            continue
        color = "C0" if name.startswith("dynamix") else "C1"
        label = f"{name} (accuracy of the 100-path run)" if name == "dynamix_1path" else name
        ax.scatter(row["(a) s per series"], rel, color=color, s=40)
        ax.annotate(label, (row["(a) s per series"], rel), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("seconds per series, 17 tasks' windows, this CPU (log)")
    ax.set_ylabel("MASE relative to seasonal naive")
    ax.set_title("Accuracy against time (Chronos: published accuracy, random-weight timing)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_report(
    out: Path, frame: pd.DataFrame, examples: dict, info: dict, accuracy_frame: pd.DataFrame | None = None
) -> str:
    """Write ``summary.md`` and ``plots/*.png`` from the results table; returns the Markdown.

    ``accuracy_frame`` is the results table of an accuracy run, for the speed-against-accuracy plot when this
    run has no time-series track of its own.
    """
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    parts = ["# Benchmark results\n"]
    parts.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads; Python "
        f"{info['python']}, torch {info['torch']}, numba {info['numba']}. Wall time: "
        f"{info.get('wall_seconds_total', info['wall_seconds_this_run'])} s "
        f"(by track: {info.get('wall_seconds_by_track', {})}){' (quick mode)' if info.get('quick') else ''}.\n"
    )
    wide, agg = ts_tables(frame)
    if not agg.empty:
        parts.append("## Time-series track (Chronos Benchmark II protocol)\n")
        halves = tuning_halves(wide)
        if halves:
            parts.append(halves)
        parts.append(ts_section(frame, plots))
        if "mid_band_10_90" in wide.columns:
            coverage = [c for c in wide.columns if c.startswith("mid_coverage@") or c == "mid_band_10_90"]
            probabilistic = wide.dropna(subset=["mid_band_10_90"])
            probabilistic = probabilistic[probabilistic["mid_band_10_90"] > 0]
            if not probabilistic.empty:
                parts.append(
                    "\nCoverage per quantile level, mean over tasks (`mid`: an outcome equal to the forecast "
                    "counts half):\n"
                )
                parts.append(_md(probabilistic.groupby("model")[coverage].mean().reset_index()))
        _plot_ts(wide, plots / "ts_relative_mase.png")
    dsr = dsr_table(frame)
    if not dsr.empty:
        parts.append("\n## Dynamical-systems track (DynaMix paper protocol)\n")
        parts.append(
            "Median and inter-quartile range over systems; `held_out` are the systems DynaMix was not trained on. "
            "D_stsp: 30 bins per dimension (Gaussian-mixture variant above 3 dimensions); D_H: smoothing 20; "
            "MASE over the first 10 steps.\n"
        )
        parts.append(_md(dsr.sort_values(["metric", "group", "context", "median"])))
        parts.append(dsr_section(frame))
        _plot_dsr(frame, plots / "dsr_boxplots.png")
    speed = _scores(frame, "speed")
    speed = speed[~speed["task"].str.startswith("fm")]
    if not speed.empty:
        parts.append("\n## Speed track\n")
        parts.append(_md(speed.pivot_table(index=["task", "model"], columns="metric", values="value").reset_index()))
    foundation = foundation_table(frame)
    if not foundation.empty:
        parts.append("\n## Speed against the foundation models\n")
        parts.append(
            "Chronos rows are *architecture timing (random weights)*: the published configurations with random "
            "weights, run through chronos-forecasting's pipelines (batches of 256, their context lengths); their "
            "forecasts are meaningless and never scored. Workloads: (a) the single windows of the time-series "
            "tasks (time per series: where a model would take long, measured on the first batches of a task and "
            "scaled to the task), (b) one series, context 2,048, horizon 10,000, (c) a panel of 10,000 series, "
            "context 512, horizon 64 (also measured on the first batches and scaled). Each model runs in its own "
            "process (peak MB: its resident memory above the interpreter's), with the same torch threads. "
            "`x dynamix...`: seconds per series relative to DynaMix's.\n"
        )
        parts.append(_md(foundation, ".4g"))
        ts_frame = frame if not _scores(frame, "ts").empty else accuracy_frame
        accuracy = published_accuracy()
        if ts_frame is not None and not ts_frame.empty:
            _, agg = ts_tables(ts_frame)
            ours = agg[agg["source"] == "this run"].set_index("model")["rel_MASE"] if not agg.empty else {}
            accuracy.update({k: float(v) for k, v in dict(ours).items() if k.startswith("dynamix")})
        _plot_speed_accuracy(foundation, accuracy, plots / "speed_vs_accuracy.png")
    missing = frame[frame["metric"] == "not_run"][["track", "task", "model", "note"]]
    if not missing.empty:
        parts.append("\n## Not run\n")
        parts.append(_md(missing.drop_duplicates(["track", "model", "note"])))
    _plot_gallery(examples, plots / "gallery.png")
    text = "\n".join(parts)
    (out / "summary.md").write_text(text)
    return text


def _plot_ts(wide: pd.DataFrame, path: Path) -> None:
    base = wide[wide["model"] == "seasonal_naive"].set_index("task")["MASE"]
    rel = wide.assign(rel=wide["MASE"] / wide["task"].map(base)).pivot_table(
        index="task", columns="model", values="rel"
    )
    published = bench_data.reference_results()
    published = published[published["task"].isin(rel.index)]
    pbase = published[published["model"] == "seasonal_naive"].set_index("task")["MASE"]
    for model in PUBLISHED_IN_PLOTS:
        p = published[published["model"] == model].set_index("task")["MASE"]
        rel[f"{model} (published)"] = p / pbase
    fig = Figure(figsize=(1.0 + 0.9 * rel.shape[1], 0.9 + 0.38 * rel.shape[0]))
    ax = fig.subplots()
    data = np.log2(rel.to_numpy(dtype=float))
    im = ax.imshow(data, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(rel.shape[1]), rel.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(rel.shape[0]), rel.index, fontsize=8)
    for i in range(rel.shape[0]):
        for j in range(rel.shape[1]):
            v = rel.to_numpy()[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="log2 MASE relative to seasonal naive")
    ax.set_title("MASE relative to seasonal naive (blue: better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_dsr(frame: pd.DataFrame, path: Path) -> None:
    f = _scores(frame, "dsr")
    metrics = ["D_stsp", "D_H"]
    models = sorted(f["model"].unique())
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, metrics, strict=True):
        data, labels = [], []
        for group in ("held_out", "training"):
            for model in models:
                v = f[(f["metric"] == metric) & (f["model"] == model) & (f["group"] == group)]["value"].to_numpy(float)
                data.append(v[np.isfinite(v)])
                labels.append(f"{model}\n{group}")
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7, rotation=30)
        ax.set_title(f"{metric} over systems (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_gallery(examples: dict, path: Path) -> None:
    available = sorted({k.split("__")[1] for k in examples if k.startswith("ts__")})
    preferred = [t for t in ("ETTh", "monash_m3_monthly", "monash_tourism_monthly") if t in available]
    ts_tasks = (preferred + [t for t in available if t not in preferred])[:3]
    systems = sorted({k.split("__")[1] for k in examples if k.startswith("dsr__")})[:3]
    panels = len(ts_tasks) + len(systems)
    if not panels:
        return
    fig = Figure(figsize=(9, 2.4 * panels))
    axes = fig.subplots(panels, 1, squeeze=False)
    row = 0
    for task in ts_tasks:
        ax = axes[row, 0]
        row += 1
        hist, target = examples[f"ts__{task}__history"], examples[f"ts__{task}__target"]
        t0 = np.arange(hist.shape[0])
        t1 = np.arange(hist.shape[0], hist.shape[0] + target.shape[0])
        ax.plot(t0, hist, color="black", lw=1)
        ax.plot(t1, target, color="black", lw=1, ls="--", label="truth")
        for j, key in enumerate(k for k in sorted(examples) if k.startswith(f"ts__{task}__") and k.count("__") == 2):
            model = key.split("__")[2]
            if model in ("history", "target"):
                continue
            q = examples[key]  # (Q, H)
            ax.plot(t1, q[4], color=f"C{j}", lw=1.2, label=model)
            ax.fill_between(t1, q[0], q[-1], color=f"C{j}", alpha=0.12)
        ax.set_title(f"{task}: first series, median and 10-90 % band", fontsize=9)
        ax.legend(fontsize=7, ncol=4)
    for system in systems:
        ax = axes[row, 0]
        row += 1
        truth = examples[f"dsr__{system}__truth"]
        ax.plot(truth[:, 0], color="black", lw=1, label="truth")
        for j, key in enumerate(k for k in sorted(examples) if k.startswith(f"dsr__{system}__") and "truth" not in k):
            ax.plot(examples[key][:, 0], color=f"C{j}", lw=0.9, alpha=0.8, label=key.split("__")[2])
        ax.set_title(f"{system}: first coordinate of the forecasts (first 1,500 of the steps)", fontsize=9)
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
