"""Command line: ``dynamix forecast`` for CSV files, ``dynamix explain`` for the expert composition of a forecast,
``dynamix demo`` for a self-made Lorenz-63 example and ``dynamix train``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checkpoint import DEFAULT_MODEL
from .preprocessing import EMBEDDINGS

# Forecasts with more (series x steps) than this show a progress bar.
PROGRESS_FROM = 20_000


def read_csv_channels(path: Path, time_column: str | None) -> tuple[pd.DataFrame, pd.Index | None]:
    """The numeric columns of a CSV (channels) and its time index, checked and sorted oldest first; used by the
    ``forecast`` and ``explain`` commands and the app. Bad files raise ValueError naming the problem."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    times = None
    if time_column is not None:
        if time_column not in frame.columns:
            raise ValueError(f"--time-column {time_column!r} is not a column of {path} ({list(frame.columns)}).")
        times = frame.pop(time_column)
    elif len(frame.columns) and not pd.api.types.is_numeric_dtype(frame[frame.columns[0]]):
        times = frame.pop(frame.columns[0])  # a leading non-numeric column is the time axis
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"columns {bad} of {path} are not numeric; pass --time-column for a time column.")
    if frame.empty:
        raise ValueError(f"{path} has no numeric data columns.")
    index = None
    if times is not None:
        index = _time_index(times, path)
        if index.has_duplicates:
            raise ValueError(
                f"the time column of {path} has duplicated time stamps (first: {index[index.duplicated()][0]})."
            )
        if (
            isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)
        ) and not index.is_monotonic_increasing:
            # A newest-first export (or a shuffled one): the model reads rows oldest first.
            order = np.argsort(index.to_numpy(), kind="stable")
            frame, index = frame.iloc[order].reset_index(drop=True), index[order]
            print(f"note: sorted the rows of {path} by time (oldest first)", file=sys.stderr)
        _warn_uneven(index, path)
    return frame, index


def _time_index(times: pd.Series, path: Path) -> pd.Index:
    """The time column as a DatetimeIndex (time stamps with offsets compared in UTC), a numeric index, or labels."""
    if pd.api.types.is_numeric_dtype(times):
        return pd.Index(times)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it has to guess the date format
        parsed = pd.to_datetime(times, errors="coerce", utc=_has_offsets(times))
    if parsed.isna().any():
        return pd.Index(times)  # not dates: labels in row order
    return pd.DatetimeIndex(parsed)


def _has_offsets(times: pd.Series) -> bool:
    text = times.astype(str)
    return bool(text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any())


def _warn_uneven(index: pd.Index, path: Path) -> None:
    if len(index) < 3 or not (isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)):
        return
    steps = pd.Series(index[1:] - index[:-1])
    if steps.min() != steps.max() and (not isinstance(index, pd.DatetimeIndex) or pd.infer_freq(index) is None):
        print(
            f"warning: the time stamps of {path} are unevenly spaced (steps from {steps.min()} to {steps.max()}); "
            "DynaMix treats the rows as equally spaced. Resample to a regular grid first.",
            file=sys.stderr,
        )


def _future_index(index: pd.Index | None, horizon: int, length: int) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
    if index is not None and pd.api.types.is_numeric_dtype(index) and len(index) >= 2:
        step = index[-1] - index[-2]
        return pd.Index(index[-1] + step * np.arange(1, horizon + 1))
    return pd.RangeIndex(length, length + horizon)


def _forecast_frame(columns, index, samples: np.ndarray, quantile_levels: list[float]) -> pd.DataFrame:
    if samples.ndim == 2:
        return pd.DataFrame(samples, columns=columns, index=index)
    out = pd.DataFrame(np.median(samples, axis=0), columns=columns, index=index)
    levels = np.quantile(samples, quantile_levels, axis=0)
    for q, values in zip(quantile_levels, levels, strict=True):
        for k, col in enumerate(columns):
            out[f"{col}_q{q:g}"] = values[:, k]
    return out


def _cmd_forecast(args: argparse.Namespace) -> int:
    from .pipeline import DynaMixPipeline

    for target in (args.output, args.plot):
        _check_writable(target)
    frame, index = read_csv_channels(Path(args.input), args.time_column)
    pipeline = DynaMixPipeline.from_pretrained(args.model)
    samples = pipeline.sample_paths(
        frame.to_numpy(dtype=np.float64),
        args.horizon,
        preprocessing_method=args.preprocessing,
        standardize=not args.no_standardize,
        fit_nonstationary=args.nonstationary,
        num_samples=args.samples,
        seed=args.seed,
        noise=not args.no_noise,
        divergence_guard=args.divergence_guard,
        progress=args.horizon * args.samples >= PROGRESS_FROM,
    )[:, :, 0]  # (samples, horizon, channels)
    if args.samples == 1:
        samples = samples[0]
    future = _future_index(index, args.horizon, len(frame))
    result = _forecast_frame(list(frame.columns), future, samples, [0.1, 0.5, 0.9])
    result.index.name = index.name if index is not None and index.name else "time"
    if args.output:
        result.to_csv(args.output)
        print(f"wrote {args.output} ({args.horizon} steps, {frame.shape[1]} channel(s))")
    else:
        result.to_csv(sys.stdout)
    if args.plot:
        _save_plot(frame.to_numpy(), samples, None, args.plot, list(frame.columns))
    return 0


def _check_writable(target: str | None) -> None:
    """Fail before any computation when an output file could not be written."""
    if not target:
        return
    path = Path(target)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"Output {path} is a folder; pass a file name.")
    if not folder.is_dir():
        raise ValueError(f"Cannot write {path}: the folder {folder} does not exist. Create it first.")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"Cannot write {path}: the folder {folder} is not writable.")


def _save_figure(ax: Any, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    figure = ax.get_figure()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _save_plot(context: np.ndarray, samples: np.ndarray, truth: np.ndarray | None, path: str, names) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_attractor, plot_forecast

    point = samples if samples.ndim == 2 else np.median(samples, axis=0)
    fig = plot_forecast(
        context,
        None if samples.ndim == 3 else samples,
        samples=samples if samples.ndim == 3 else None,
        truth=truth,
        channel_names=names,
        context_tail=min(len(context), 3 * len(point)),
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
    if point.shape[1] >= 2:
        attractor = Path(path).with_name(Path(path).stem + "_attractor.png")
        ax = plot_attractor(context, point, truth, title="DynaMix forecast in state space")
        _save_figure(ax, attractor)
        print(f"wrote {path} and {attractor}")
    else:
        print(f"wrote {path}")


def _cmd_explain(args: argparse.Namespace) -> int:
    from .composition import effective_experts, expert_usage
    from .pipeline import DynaMixPipeline

    for target in (args.output, args.plot):
        _check_writable(target)
    frame, index = read_csv_channels(Path(args.input), args.time_column)
    pipeline = DynaMixPipeline.from_pretrained(args.model)
    forecast, weights = pipeline.expert_weights(
        frame.to_numpy(dtype=np.float64),
        args.horizon,
        preprocessing_method=args.preprocessing,
        seed=args.seed,
        noise=not args.no_noise,
        divergence_guard=args.divergence_guard,
        progress=args.horizon >= PROGRESS_FROM,
        return_forecast=True,
    )
    forecast = np.asarray(forecast).reshape(args.horizon, -1)
    future = _future_index(index, args.horizon, len(frame))
    result = pd.DataFrame(weights, index=future, columns=[f"expert_{j}" for j in range(weights.shape[1])])
    for k, col in enumerate(frame.columns):
        result.insert(k, col, forecast[:, k])
    result.index.name = index.name if index is not None and index.name else "time"
    usage = expert_usage(weights)
    summary = ", ".join(f"{j}: {u:.2f}" for j, u in sorted(enumerate(usage), key=lambda x: -x[1])[:3])
    print(
        f"expert usage (top 3): {summary}; effective number of experts {effective_experts(usage):.2f} of "
        f"{usage.shape[0]}",
        file=sys.stderr,
    )
    if args.output:
        result.to_csv(args.output)
        print(f"wrote {args.output} (forecast and {weights.shape[1]} expert weights per step)")
    else:
        result.to_csv(sys.stdout)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .plots import plot_expert_composition

        tail = frame.to_numpy()[-min(len(frame), 2 * args.horizon) :]
        fig = plot_expert_composition(forecast, weights, context=tail, title=f"Expert composition: {args.input}")
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    from .app import launch
    from .checkpoint import load_model

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}.")
    load_model(args.model)  # a wrong model name fails here, before the server starts
    print(f"DynaMix app on http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    launch(args.host, args.port, args.model)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .examples import lorenz63
    from .metrics import geometrical_misalignment, mase, temporal_misalignment
    from .pipeline import DynaMixPipeline

    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output-dir {out} is a file; pass a folder (it is created if missing).")
    for name, value, low in (
        ("--context", args.context, 3),
        ("--horizon", args.horizon, 1),
        ("--samples", args.samples, 1),
    ):
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}.")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise ValueError(f"--output-dir {out} is not writable.")
    traj = lorenz63(args.context + args.horizon)
    context, truth = traj[: args.context], traj[args.context :]
    frame = pd.DataFrame(context, columns=["x", "y", "z"])
    frame.to_csv(out / "lorenz63_context.csv", index_label="time")
    pipeline = DynaMixPipeline.from_pretrained(args.model)
    samples = pipeline.sample_paths(context, args.horizon, num_samples=args.samples, seed=args.seed, progress=True)
    samples = samples[:, :, 0]  # (samples, horizon, 3)
    median = np.median(samples, axis=0)
    result = _forecast_frame(
        ["x", "y", "z"], pd.RangeIndex(args.context, args.context + args.horizon), samples, [0.1, 0.5, 0.9]
    )
    result.to_csv(out / "lorenz63_forecast.csv", index_label="time")
    _save_plot(context, samples[:, :300], truth[:300], str(out / "lorenz63_forecast.png"), ["x", "y", "z"])

    from .plots import plot_attractor

    ax = plot_attractor(context, samples[0], truth, title="Lorenz-63: one DynaMix sample path vs truth")
    _save_figure(ax, out / "lorenz63_long_attractor.png")
    print(
        f"D_stsp {geometrical_misalignment(samples[0], truth):.3f}  D_H {temporal_misalignment(samples[0], truth):.3f}  "
        f"MASE(10) {mase(median, truth):.3f}  (sample 0 vs the true continuation)"
    )
    print(f"wrote {out / 'lorenz63_forecast.csv'} and plots in {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``dynamix`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="dynamix", description="Zero-shot forecasts with the DynaMix foundation model."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fc = sub.add_parser("forecast", help="forecast the series in a CSV file (columns = channels)")
    fc.add_argument("input", help="CSV file; numeric columns are channels, an optional leading/--time-column is time")
    fc.add_argument("--horizon", type=int, required=True, help="number of steps to forecast")
    fc.add_argument("--model", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    fc.add_argument("--samples", type=int, default=1, help="sample paths; >1 adds q0.1/q0.5/q0.9 columns")
    fc.add_argument("--seed", type=int, default=None, help="seed for reproducible noise")
    fc.add_argument("--output", help="output CSV (default: stdout)")
    fc.add_argument("--plot", help="PNG of context, forecast and band (plus an attractor plot for >=2 channels)")
    fc.add_argument("--time-column", help="name of the time column")
    fc.add_argument("--preprocessing", default="pos_embedding", choices=EMBEDDINGS, help="embedding for < N channels")
    fc.add_argument("--nonstationary", action="store_true", help="Box-Cox + power-law detrending (trending series)")
    fc.add_argument("--no-standardize", action="store_true", help="do not standardize the channels")
    fc.add_argument("--no-noise", action="store_true", help="deterministic forecast (gating noise off)")
    fc.add_argument("--divergence-guard", type=float, default=None, help="bound the latent state at this multiple")
    fc.set_defaults(func=_cmd_forecast)

    ex = sub.add_parser("explain", help="forecast a CSV file and show which experts compose the forecast")
    ex.add_argument("input", help="CSV file; numeric columns are channels, an optional leading/--time-column is time")
    ex.add_argument("--horizon", type=int, required=True, help="number of steps to forecast")
    ex.add_argument("--model", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    ex.add_argument("--seed", type=int, default=0, help="seed of the gating noise (default: %(default)s)")
    ex.add_argument("--output", help="CSV of the forecast and the expert weights per step (default: stdout)")
    ex.add_argument("--plot", help="PNG of the forecast with its stacked expert weights underneath")
    ex.add_argument("--time-column", help="name of the time column")
    ex.add_argument("--preprocessing", default="pos_embedding", choices=EMBEDDINGS, help="embedding for < N channels")
    ex.add_argument("--no-noise", action="store_true", help="deterministic forecast (gating noise off)")
    ex.add_argument("--divergence-guard", type=float, default=None, help="bound the latent state at this multiple")
    ex.set_defaults(func=_cmd_explain)

    app = sub.add_parser("app", help="a local web app: upload a CSV, see and download the forecast (needs gradio)")
    app.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default: %(default)s, this machine only)"
    )
    app.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    app.add_argument("--model", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    app.set_defaults(func=_cmd_app)

    demo = sub.add_parser("demo", help="integrate Lorenz-63 with scipy, forecast it, write CSV and PNG files")
    demo.add_argument("--output-dir", default="demo-output", help="folder for the files (default: %(default)s)")
    demo.add_argument("--model", default=DEFAULT_MODEL, help="model name or path (default: %(default)s)")
    demo.add_argument("--context", type=int, default=2000, help="context length (default: %(default)s)")
    demo.add_argument("--horizon", type=int, default=5000, help="forecast horizon (default: %(default)s)")
    demo.add_argument("--samples", type=int, default=20, help="sample paths (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    demo.set_defaults(func=_cmd_demo)

    from .training.settings import TrainingSettings

    train = sub.add_parser(
        "train",
        help="pre-train or fine-tune DynaMix with sparse teacher forcing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train DynaMix. Defaults are the published hyper-parameters; a settings file (JSON) and "
        "--override key=value change them. Settings (name, default, meaning):\n\n" + TrainingSettings.help_text(),
    )
    train.add_argument("--config", help="JSON file of settings (see the list above); default: all defaults")
    train.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE", help="change single settings")
    train.add_argument("--write-defaults", metavar="PATH", help="write the default settings file and exit")
    train.set_defaults(func=_cmd_train)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import Trainer, TrainingSettings

    if args.write_defaults:
        TrainingSettings().to_json(args.write_defaults)
        print(f"wrote {args.write_defaults}")
        return 0
    settings = TrainingSettings.from_json(args.config, args.override)
    trainer = Trainer(settings)
    rows = trainer.fit(progress=True)
    weights = trainer.save()
    last = rows[-1] if rows else {}
    print(f"checkpoint: {weights} (epoch {trainer.epoch}, loss {last.get('loss', float('nan')):.4f})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dynamix`` console script.

    Every failure prints ``error: ...`` and returns 2 (no traceback; set ``DYNAMIX_DEBUG=1`` to see one);
    Ctrl-C returns 130.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("DYNAMIX_DEBUG"):
            raise
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, ValueError | TypeError | OSError | FloatingPointError):
            message = f"{type(exc).__name__}: {message}"
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
