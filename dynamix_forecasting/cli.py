"""Command line: ``dynamix forecast`` for CSV files, ``dynamix explain`` for the expert composition of a forecast,
``dynamix demo`` for a self-made Lorenz-63 example and ``dynamix train``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checkpoint import DEFAULT_MODEL
from .csv_io import read_csv_channels
from .options import EMBEDDINGS, MODES, ForecastOptions

MODE_HELP = (
    "auto (default): a one-column CSV as a time series, several columns (or a dynamics-only flag) as a "
    "dynamical system; time_series; dynamics (the published pipeline)"
)
EMBED_HELP = "dynamics mode: embedding for fewer channels than the model's N (default: pos_embedding)"
# Forecasts with more (series x steps) than this show a progress bar.
PROGRESS_FROM = 20_000


def _future_index(index: pd.Index | None, horizon: int, length: int) -> pd.Index:
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
    if index is not None and pd.api.types.is_numeric_dtype(index) and len(index) >= 2:
        step = index[-1] - index[-2]
        return pd.Index(index[-1] + step * np.arange(1, horizon + 1))
    return pd.RangeIndex(length, length + horizon)


LEVELS = (0.1, 0.5, 0.9)


def _forecast_table(columns, index, point: np.ndarray, quantiles: np.ndarray | None) -> pd.DataFrame:
    """The point forecast ``(H, F)`` and, when given, ``(H, F, Q)`` quantiles as ``<channel>_q<level>`` columns."""
    out = pd.DataFrame(point, columns=columns, index=index)
    if quantiles is not None:
        for j, q in enumerate(LEVELS):
            for k, col in enumerate(columns):
                out[f"{col}_q{q:g}"] = quantiles[:, k, j]
    return out


def _options(args: argparse.Namespace) -> ForecastOptions:
    """The forecast options of ``dynamix forecast``/``explain``: a flag left out is an option not set (so
    ``--mode auto`` decides as everywhere else)."""
    return ForecastOptions(
        mode=getattr(args, "mode", "dynamics"),  # explain has no --mode: expert weights are of the dynamics mode
        preprocessing_method=args.preprocessing,
        standardize=False if getattr(args, "no_standardize", False) else None,
        fit_nonstationary=True if getattr(args, "nonstationary", False) else None,
        seed=args.seed,
        noise=False if args.no_noise else None,
        divergence_guard=args.divergence_guard,
    )


def _cmd_forecast(args: argparse.Namespace) -> int:
    from .pipeline import DynaMixPipeline

    for target in (args.output, args.plot):
        _check_writable(target)
    options = _options(args)
    frame, index = read_csv_channels(Path(args.input), args.time_column)
    pipeline = DynaMixPipeline.from_pretrained(args.model)
    values = frame.to_numpy(dtype=np.float64)
    options = options.replace(num_samples=args.samples, progress=args.horizon * args.samples >= PROGRESS_FROM)
    quantiles = None
    if args.samples > 1:
        q, point = pipeline.predict_quantiles(values, args.horizon, LEVELS, options)
        quantiles = np.asarray(q)
    else:
        point = pipeline.forecast(values, args.horizon, options)
    point = np.asarray(point).reshape(args.horizon, -1)
    future = _future_index(index, args.horizon, len(frame))
    result = _forecast_table(list(frame.columns), future, point, quantiles)
    result.index.name = index.name if index is not None and index.name else "time"
    if args.output:
        result.to_csv(args.output)
        print(f"wrote {args.output} ({args.horizon} steps, {frame.shape[1]} channel(s))")
    else:
        result.to_csv(sys.stdout)
    if args.plot:
        samples = pipeline.sample_paths(values, args.horizon, options)[:, :, 0]
        _save_plot(frame.to_numpy(), samples if args.samples > 1 else samples[0], None, args.plot, list(frame.columns))
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
        _options(args).replace(progress=args.horizon >= PROGRESS_FROM),
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
    options = ForecastOptions(mode="dynamics", num_samples=args.samples, seed=args.seed, progress=True)
    samples = pipeline.sample_paths(context, args.horizon, options)[:, :, 0]  # (samples, horizon, 3)
    median = np.median(samples, axis=0)
    quantiles = np.moveaxis(np.quantile(samples, LEVELS, axis=0), 0, -1) if args.samples > 1 else None
    result = _forecast_table(
        ["x", "y", "z"], pd.RangeIndex(args.context, args.context + args.horizon), median, quantiles
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
    fc.add_argument("--mode", default="auto", choices=MODES, help=MODE_HELP)
    fc.add_argument("--samples", type=int, default=1, help="sample paths; >1 adds q0.1/q0.5/q0.9 columns")
    fc.add_argument("--seed", type=int, default=0, help="seed of the noise and draws (default: %(default)s)")
    fc.add_argument("--output", help="output CSV (default: stdout)")
    fc.add_argument("--plot", help="PNG of context, forecast and band (plus an attractor plot for >=2 channels)")
    fc.add_argument("--time-column", help="name of the time column")
    fc.add_argument("--preprocessing", choices=EMBEDDINGS, help=EMBED_HELP)
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
    ex.add_argument("--preprocessing", choices=EMBEDDINGS, help=EMBED_HELP)
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

    gen = sub.add_parser(
        "generate-systems",
        help="generate a corpus of new chaotic flows from the training systems (resumable; see docs/training.md)",
        add_help=False,
    )
    gen.add_argument("rest", nargs=argparse.REMAINDER, help="--cache DIR --candidates N [--dim 3|6] [--seed S] ...")
    gen.set_defaults(func=_cmd_generate_systems)
    return parser


def _cmd_generate_systems(args: argparse.Namespace) -> int:
    from .training.universe import main as generate_main

    generate_main(args.rest)
    return 0


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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["generate-systems"]:  # its own parser: argparse's REMAINDER drops a leading --help
        args = argparse.Namespace(func=_cmd_generate_systems, rest=argv[1:])
    else:
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
