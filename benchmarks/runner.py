"""``python -m benchmarks``: run the benchmark tracks, keep a resumable long CSV, write the summary and the plots.

Tracks: ``ts`` (Chronos Benchmark II, fev protocol), ``dsr`` (dynamical systems, the DynaMix paper's
protocol), ``speed`` (seconds per forecast and series-steps per second on the same inputs).
Results go to ``OUTPUT/results.csv`` (track, task, group, model, metric, value, seconds, note); rows
already there are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import data as bench_data
from .models import BenchModel, build_models
from .scoring import quantile_coverage, task_mase, task_wql

COLUMNS = ["track", "task", "group", "model", "metric", "value", "seconds", "note", "config"]
TS_MODELS = [
    "seasonal_naive",
    "dynamix",
    "dynamix_ts",
    "naive2",
    "parroting",
    "parroting_best",
    "auto_ets",
    "auto_theta",
    "auto_arima",
    "chronos_bolt_small",
    "chronos_2",
]
DSR_MODELS = ["dynamix", "parroting", "constant_mean"]
QUICK_TASKS = ["monash_m3_yearly", "monash_tourism_quarterly", "ETTh"]
QUICK_SYSTEMS = ["Lorenz", "Chua", "Rossler", "Aizawa"]  # two held-out systems, two of the training set


class Results:
    """The long results table on disk; rows are appended as they come, so a run can resume.

    Every row records the run's configuration (``config``: quick mode, series cap, sample paths, seed,
    checkpoint, horizon of the systems track), and a run only reuses rows of its own configuration: a quick
    run never stands in for a full one. Rows written before configurations were recorded are never reused.
    """

    def __init__(self, path: Path, config: dict | None = None) -> None:
        self.path = path
        self.config = json.dumps(config or {}, sort_keys=True)
        self.frame = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)
        if "config" not in self.frame.columns:
            self.frame["config"] = np.nan

    def done(self, track: str, task: str, model: str) -> bool:
        f = self.frame
        same = (f["track"] == track) & (f["task"] == task) & (f["model"] == model) & (f["config"] == self.config)
        return bool(same.any())

    def current(self) -> pd.DataFrame:
        """The rows of this configuration (all rows of a table written before configurations were recorded)."""
        f = self.frame
        mine = f[f["config"] == self.config]
        return mine if not mine.empty or f["config"].notna().any() else f

    def add(self, rows: list[dict]) -> None:
        rows = [{**r, "config": self.config} for r in rows]
        new = pd.DataFrame([{c: r.get(c, "") for c in COLUMNS} for r in rows], columns=COLUMNS)
        self.frame = new if self.frame.empty else pd.concat([self.frame, new], ignore_index=True)
        self.frame.to_csv(self.path, index=False)


def machine() -> dict:
    """What the figures were measured on."""
    import numba
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
    }


def _not_run(track: str, task: str, model: str, reason: str, group: str = "") -> list[dict]:
    return [dict(track=track, task=task, group=group, model=model, metric="not_run", value=np.nan, note=reason)]


class _Lazy:
    """``function(*args)``, computed on the first call and kept."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args, self.value, self.done = function, args, None, False

    def __call__(self) -> Any:
        if not self.done:
            self.value, self.done = self.function(*self.args), True
        return self.value


def _run_case(
    results: Results,
    track: str,
    task: str,
    model: BenchModel,
    compute: Callable[[], Any],
    score: Callable[[Any, float], dict[str, float]],
    group: str = "",
    uses: str | None = None,
) -> Any:
    """The one skeleton of every track: skip what is done or not for this model, report why a model cannot
    run, time ``compute()``, report a failure as a row (a failing model is never silently dropped), and add
    the rows of ``score(output, seconds)``. ``uses`` is the model's track that ``compute`` calls (default
    ``track``; the speed track times the others). Returns the output, or None when nothing ran."""
    if (uses or track) not in model.tracks or results.done(track, task, model.name):
        return None
    reason = model.unavailable()
    if reason:
        results.add(_not_run(track, task, model.name, reason, group))
        return None
    start = time.perf_counter()
    try:
        output = compute()
    except Exception as exc:
        results.add(_not_run(track, task, model.name, f"failed: {type(exc).__name__}: {exc}"[:300], group))
        return None
    seconds = time.perf_counter() - start
    rows = [
        dict(track=track, task=task, group=group, model=model.name, metric=k, value=v, seconds=seconds)
        for k, v in score(output, seconds).items()
    ]
    results.add(rows)
    return output


def run_ts(
    models: list[BenchModel], tasks: list[str], results: Results, max_series: int | None, examples: dict
) -> None:
    """Time-series track: one window per series, the last ``horizon`` points held out."""
    for name in tqdm(tasks, desc="time-series tasks", unit="task"):
        task = _Lazy(bench_data.load_task, name, max_series)  # loaded only if some model still has to run
        for model in models:
            output = _run_case(
                results,
                "ts",
                name,
                model,
                lambda model=model, task=task: model.forecast_ts(task().histories, task().horizon, task().seasonality),
                lambda out, _, task=task: {
                    "MASE": task_mase(task().histories, task().targets, out[0], task().seasonality),
                    "WQL": task_wql(task().targets, out[1]),
                    **quantile_coverage(task().targets, out[1]),
                },
            )
            if output is not None:  # the first series of each task, for the gallery plot
                examples[f"ts__{name}__history"] = task().histories[0][-3 * task().horizon :]
                examples[f"ts__{name}__target"] = task().targets[0]
                examples[f"ts__{name}__{model.name}"] = np.asarray(output[1])[:, 0]


def _dsr_scores(forecast: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from dynamix_forecasting import geometrical_misalignment, mase, temporal_misalignment

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finite = np.isfinite(forecast).all()
        return {
            "D_stsp": geometrical_misalignment(forecast, truth) if finite else np.nan,
            "D_H": temporal_misalignment(forecast, truth) if finite else np.nan,
            "MASE@10": mase(forecast, truth, steps=10) if finite else np.nan,
        }


def run_dsr(
    models: list[BenchModel],
    systems: list[str],
    contexts: list[int],
    horizon: int,
    results: Results,
    regenerate: bool,
    examples: dict,
) -> None:
    """Dynamical-systems track: context = first C points, forecast ``horizon`` steps, D_stsp, D_H, MASE@10."""
    index = bench_data.dysts_index()
    for system in tqdm(systems, desc="dynamical systems", unit="system"):
        group = "training" if index.get(system, {}).get("in_dynamix_training_set") else "held_out"
        trajectory = _Lazy(bench_data.regenerate_dysts if regenerate else bench_data.load_dysts, system)
        for c in contexts:
            for model in models:
                output = _run_case(
                    results,
                    "dsr",
                    f"{system}@{c}",
                    model,
                    lambda model=model, c=c, traj=trajectory: model.forecast_dsr(
                        traj()[:c], traj()[c : c + horizon].shape[0]
                    ),
                    lambda out, _, c=c, traj=trajectory: _dsr_scores(out, traj()[c : c + horizon]),
                    group,
                )
                if output is not None and c == contexts[0] and system in ("Lorenz", "Rossler", "Chua", "SprottM"):
                    examples[f"dsr__{system}__truth"] = trajectory()[c : c + horizon][:1500]
                    examples[f"dsr__{system}__{model.name}"] = output[:1500]


def run_speed(models: list[BenchModel], results: Results, quick: bool, foundation: list[str] | None = None) -> None:
    """Seconds per forecast and series-steps/s of each model on the same inputs, then the comparison with the
    foundation models' architectures (see :func:`benchmarks.speed.compare_foundation_models`)."""
    task = bench_data.load_task("monash_m3_monthly", 100 if quick else None)
    lorenz = bench_data.load_dysts("Lorenz")
    dsr_ctx, dsr_h = (512, 2000) if quick else (2000, 10_000)
    cases = [
        (f"m3_monthly_{len(task.histories)}x{task.horizon}", "ts", len(task.histories) * task.horizon),
        (f"lorenz_{dsr_ctx}x{dsr_h}", "dsr", dsr_h),
    ]
    for case, track, steps in cases:
        for model in models:
            run = (
                (lambda model=model: model.forecast_ts(task.histories, task.horizon, task.seasonality))
                if track == "ts"
                else (lambda model=model: model.forecast_dsr(lorenz[:dsr_ctx], dsr_h))
            )
            _run_case(
                results,
                "speed",
                case,
                model,
                run,
                lambda _, seconds, steps=steps: {"seconds": seconds, "series_steps_per_s": steps / seconds},
                uses=track,
            )
    from .speed import compare_foundation_models

    compare_foundation_models(results, quick, foundation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--track", choices=["ts", "dsr", "speed", "all"], default="all")
    parser.add_argument("--models", help="comma-separated model names (default: all of the track)")
    parser.add_argument("--tasks", help="comma-separated time-series tasks or dysts systems (default: all)")
    parser.add_argument("--quick", action="store_true", help="a CI-sized run (a few tasks, systems and series)")
    parser.add_argument("--output", default="benchmark-results", help="output folder (CSV, Markdown, plots)")
    parser.add_argument("--chronos-dir", help="folder with Chronos weights, one sub-folder per model name")
    parser.add_argument("--dynamix-model", help="another DynaMix checkpoint (path or name) for the 'dynamix' model")
    parser.add_argument("--contexts", default="512,2000", help="context lengths of the dsr track")
    parser.add_argument("--dsr-horizon", type=int, default=10_000)
    parser.add_argument("--max-series", type=int, help="at most this many series per time-series task")
    parser.add_argument("--regenerate", action="store_true", help="integrate the dysts systems again (needs dysts)")
    parser.add_argument(
        "--foundation-models",
        help="comma-separated models of the speed comparison (default: DynaMix with 100 and 1 paths, the Chronos-Bolt "
        "tiny/mini/small/base and Chronos-2 architectures with random weights)",
    )
    parser.add_argument("--accuracy-from", help="results.csv of an accuracy run, for the speed-against-accuracy plot")
    parser.add_argument("--report-only", action="store_true", help="only rewrite summary.md and the plots")
    parser.add_argument(
        "--seeds",
        help="comma-separated seeds of the stochastic models (DynaMix's sample paths; default 0,1,2, quick: 0); "
        "seeds after the first run as '<model>#seed<k>' and give the spread",
    )
    return parser


def run_config(args: argparse.Namespace) -> dict:
    """What decides a row's value besides track, task and model: rows of another configuration are not reused."""
    return {
        "quick": bool(args.quick),
        "max_series": args.max_series or (20 if args.quick else None),
        "dynamix_samples": 20 if args.quick else 100,
        "dynamix_model": args.dynamix_model or "dynamix-3d-alrnn-v1.0",
        "dsr_horizon": 2000 if args.quick else args.dsr_horizon,
        "regenerate": bool(args.regenerate),
    }


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = Results(out / "results.csv", run_config(args))
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else ([0] if args.quick else [0, 1, 2])
    examples_path = out / "examples.npz"
    examples = dict(np.load(examples_path)) if examples_path.exists() else {}
    tracks = [] if args.report_only else (["ts", "dsr", "speed"] if args.track == "all" else [args.track])
    chosen = args.models.split(",") if args.models else None
    wall = time.perf_counter()

    def models_for(default: list[str]) -> list[BenchModel]:
        names = chosen or default
        if args.quick and not chosen:
            names = [m for m in names if m != "auto_arima"]
        return build_models(
            names, args.chronos_dir, args.dynamix_model, dynamix_samples=20 if args.quick else 100, seeds=seeds
        )

    timings: dict[str, float] = {}
    if "ts" in tracks:
        start = time.perf_counter()
        tasks = args.tasks.split(",") if args.tasks else (QUICK_TASKS if args.quick else list(bench_data.task_specs()))
        max_series = args.max_series or (20 if args.quick else None)
        run_ts(models_for(TS_MODELS), tasks, results, max_series, examples)
        timings["ts"] = time.perf_counter() - start
    if "dsr" in tracks:
        start = time.perf_counter()
        systems = args.tasks.split(",") if (args.tasks and args.track == "dsr") else None
        systems = systems or (QUICK_SYSTEMS if args.quick else bench_data.dysts_systems())
        contexts = [512] if args.quick else [int(c) for c in args.contexts.split(",")]
        horizon = 2000 if args.quick else args.dsr_horizon
        run_dsr(models_for(DSR_MODELS), systems, contexts, horizon, results, args.regenerate, examples)
        timings["dsr"] = time.perf_counter() - start
    if "speed" in tracks:
        start = time.perf_counter()
        foundation = args.foundation_models.split(",") if args.foundation_models else None
        timed = [m for m in models_for(sorted(set(TS_MODELS + DSR_MODELS))) if "#seed" not in m.name]
        run_speed(timed, results, args.quick, foundation)
        timings["speed"] = time.perf_counter() - start
    np.savez(examples_path, **examples)

    from .report import write_report

    previous = json.loads((out / "machine.json").read_text()) if (out / "machine.json").exists() else {}
    if args.report_only and previous:
        info = previous  # a report of an earlier run keeps the machine and times it was measured with
    else:
        info = machine()
        by_track = previous.get("wall_seconds_by_track", {})
        for track, spent in timings.items():  # a resumed or split run adds up its invocations
            by_track[track] = round(by_track.get(track, 0.0) + spent, 1)
        info["wall_seconds_by_track"] = by_track
        info["wall_seconds_total"] = round(sum(by_track.values()), 1)
        info["wall_seconds_this_run"] = round(time.perf_counter() - wall, 1)
        info["quick"] = args.quick
        (out / "machine.json").write_text(json.dumps(info, indent=2))
    accuracy = pd.read_csv(args.accuracy_from) if args.accuracy_from else None
    print(write_report(out, results.current(), examples, info, accuracy))
    print(f"Results in {out}: results.csv, summary.md, plots/*.png (wall time {info['wall_seconds_this_run']} s)")


if __name__ == "__main__":
    main()
