"""``dynamix app``: a local web app in the style of the authors' Hugging Face Space (gradio).

Upload a CSV (or pick a bundled example), choose the horizon, embedding, season length, samples and mode,
and see the forecast with its quantile band, a 3-D attractor view for 3-channel data and the expert
composition; download the forecast as CSV. :func:`run_forecast` is the whole computation (the page and its
API call it); every bad input returns a message for the page, never a traceback.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checkpoint import DEFAULT_MODEL
from .csv_io import read_csv_channels
from .options import EMBEDDINGS, MODES, ForecastOptions

#: Limits of what the page accepts: a local app, but a file picked by mistake must not freeze it.
MAX_FILE_BYTES = 20_000_000
MAX_ROWS = 200_000
MAX_CHANNELS = 20
MIN_ROWS = 20
MAX_HORIZON = 20_000
MAX_SAMPLES = 200
EXAMPLES = ("Lorenz-63 (3-D chaotic system)", "Seasonal series with trend (synthetic)")
QUANTILES = (0.1, 0.5, 0.9)


def example_frame(name: str) -> pd.DataFrame:
    """A bundled example: a Lorenz-63 trajectory integrated here, or a synthetic monthly-like series."""
    if name == EXAMPLES[0]:
        from .examples import lorenz63

        return pd.DataFrame(lorenz63(2000), columns=["x", "y", "z"])
    if name == EXAMPLES[1]:
        t = np.arange(240)
        rng = np.random.default_rng(0)
        values = 100 + 0.4 * t + 12 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, t.size)
        return pd.DataFrame({"value": values})
    raise ValueError(f"Unknown example {name!r}; pick one of {list(EXAMPLES)}.")


def read_upload(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The numeric columns of an uploaded CSV, checked: size, emptiness, numbers, missing values, length."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"The file is {size / 1e6:.1f} MB; the app takes files up to {MAX_FILE_BYTES / 1e6:.0f} MB.")
    if size == 0:
        raise ValueError("The file is empty. Upload a CSV with one numeric column per channel.")
    try:
        frame, _ = read_csv_channels(path, None)
    except ValueError as exc:
        raise ValueError(f"Cannot use this file: {exc}") from None
    if frame.shape[0] > MAX_ROWS or frame.shape[1] > MAX_CHANNELS:
        raise ValueError(
            f"The file has {frame.shape[0]} rows and {frame.shape[1]} columns; the app takes at most {MAX_ROWS} rows "
            f"and {MAX_CHANNELS} columns. Use the Python API or `dynamix forecast` for larger data."
        )
    values = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        rows = np.where(~np.isfinite(values).all(1))[0]
        raise ValueError(
            f"The file has missing or non-finite values (first at row {rows[0] + 1} of {len(values)}). Fill or "
            "drop them before uploading."
        )
    if frame.shape[0] < MIN_ROWS:
        raise ValueError(f"The file has {frame.shape[0]} rows; the app needs at least {MIN_ROWS} to forecast.")
    return frame


@dataclass
class AppResult:
    """What the page shows: a message and, when the forecast ran, its table and figures."""

    message: str
    table: pd.DataFrame | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    csv_path: str | None = None


def _int_option(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from None
    if not np.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(number)


#: The embedding choice that leaves the option unset (the dynamics mode then uses pos_embedding).
DEFAULT_EMBEDDING = "default"


def run_forecast(
    upload: str | None,
    example: str | None,
    horizon: Any = 500,
    embedding: str = DEFAULT_EMBEDDING,
    season_length: Any = 0,
    samples: Any = 20,
    mode: str = "auto",
    seed: Any = 0,
    model: str = DEFAULT_MODEL,
    progress: bool = False,
) -> AppResult:
    """Forecast an uploaded CSV or a bundled example with the page's options.

    Parameters
    ----------
    upload : str or None
        Path of the uploaded CSV; it wins over ``example``.
    example : str or None
        One of :data:`EXAMPLES`.
    horizon, samples, season_length, seed
        Steps to forecast, sample paths, the season length (0: estimated from the data), the seed.
    embedding : str
        The dynamics mode's ``preprocessing_method``, or ``"default"`` (not set).
    mode : str
        ``"auto"`` (as everywhere: one channel as a time series, several as a dynamical system),
        ``"dynamics"`` (the published pipeline) or ``"time_series"`` (seasonal adjustment, calibrated quantiles).

    Returns
    -------
    AppResult
        On bad input: only ``message`` (what is wrong and how to fix it).
    """
    try:
        return _run(upload, example, horizon, embedding, season_length, samples, mode, seed, model, progress)
    except (ValueError, TypeError, FloatingPointError) as exc:
        return AppResult(message=f"**Error:** {exc}")


def _run(upload, example, horizon, embedding, season_length, samples, mode, seed, model, progress) -> AppResult:
    import warnings

    from .engine import DivergenceWarning
    from .model_cache import cached_pipeline

    if upload:
        frame, source = read_upload(upload), Path(str(upload)).name
    elif example:
        frame, source = example_frame(example), example
    else:
        raise ValueError("Upload a CSV file or pick an example first.")
    horizon = _int_option("Horizon", horizon, 1, MAX_HORIZON)
    samples = _int_option("Samples", samples, 1, MAX_SAMPLES)
    season = _int_option("Season length", season_length, 0, max(0, len(frame) // 2))
    seed = _int_option("Seed", seed, 0, 2**31 - 1)
    if mode not in MODES:
        raise ValueError(f"Mode must be one of {list(MODES)}, got {mode!r}.")
    if embedding != DEFAULT_EMBEDDING and embedding not in EMBEDDINGS:
        raise ValueError(f"Embedding must be one of {[DEFAULT_EMBEDDING, *EMBEDDINGS]}, got {embedding!r}.")
    options = ForecastOptions(
        mode=mode,
        preprocessing_method=None if embedding == DEFAULT_EMBEDDING else embedding,
        season_length=season or None,
        num_samples=samples,
        seed=seed,
        divergence_guard=10.0,
        progress=progress,
    ).resolve(frame.shape[1])
    pipeline = cached_pipeline(model)
    values = frame.to_numpy(dtype=np.float64)
    notes: list[str] = []
    weights, first_path = None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantiles, point = pipeline.predict_quantiles(values, horizon, QUANTILES, options)
        if options.mode == "dynamics" and values.shape[1] > pipeline.model.N:
            notes.append("More channels than the model observes: each channel was forecast on its own.")
        elif options.mode == "dynamics":
            # The same rollout as the quantiles (same options and seed): its first path and that path's composition.
            drawn, weights = pipeline.expert_weights(values, horizon, options, return_forecast=True)
            first_path = np.asarray(drawn).reshape(samples, horizon, -1)[0]  # the median of chaotic paths is not one
            weights = weights if samples == 1 else weights[0]
    notes += [str(w.message).split(". ")[0] + "." for w in caught if issubclass(w.category, DivergenceWarning)]
    point = np.asarray(point).reshape(horizon, -1)
    quantiles = np.moveaxis(np.asarray(quantiles).reshape(horizon, -1, len(QUANTILES)), -1, 0)  # (Q, H, F)
    table = pd.DataFrame(point, columns=list(frame.columns))
    table.index = pd.RangeIndex(len(frame), len(frame) + horizon, name="step")
    for q, band in zip(QUANTILES, quantiles, strict=True):
        for k, col in enumerate(frame.columns):
            table[f"{col}_q{q:g}"] = band[:, k]
    folder = tempfile.mkdtemp(prefix="dynamix-app-")
    csv_path = os.path.join(folder, "dynamix_forecast.csv")
    table.to_csv(csv_path)
    path = point if first_path is None else np.asarray(first_path).reshape(horizon, -1)
    figures = _figures(values, point, quantiles, path, weights, list(frame.columns))
    message = (
        f"Forecast of **{source}** ({len(frame)} points, {frame.shape[1]} channel(s)), {horizon} steps, mode "
        f"`{options.mode}`" + (f", {samples} sample paths" if options.mode == "dynamics" else "") + "."
    )
    if notes:
        message += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return AppResult(message=message, table=table, figures=figures, csv_path=csv_path)


def _figures(values, point, quantiles, path, weights, names) -> dict[str, Any]:
    """The band plot (median and 10-90 %), the 3-D view and the composition of one sample path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_attractor, plot_expert_composition

    n = len(names)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n), squeeze=False)
    tail = values[-min(len(values), 3 * point.shape[0]) :]
    t_ctx = np.arange(len(values) - len(tail), len(values))
    t_fc = np.arange(len(values), len(values) + point.shape[0])
    for k, ax in enumerate(axes[:, 0]):
        ax.plot(t_ctx, tail[:, k], color="#4c72b0", lw=0.9, label="context")
        ax.fill_between(t_fc, quantiles[0, :, k], quantiles[-1, :, k], color="#dd5143", alpha=0.25, label="10-90 %")
        ax.plot(t_fc, point[:, k], color="#dd5143", lw=1.0, label="median forecast")
        ax.set_ylabel(names[k])
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    out: dict[str, Any] = {"forecast": fig}
    if values.shape[1] == 3:
        ax3 = plot_attractor(values, path, title="State space: context and one forecast path")
        out["attractor"] = ax3.get_figure()
    if weights is not None:
        out["composition"] = plot_expert_composition(
            path, weights, context=tail[-point.shape[0] :], title="Expert composition of the first sample path"
        )
    return out


def build_app(model: str = DEFAULT_MODEL):
    """The gradio Blocks app (needs ``pip install dynamix-forecasting[app]``)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImportError("The app needs gradio: pip install 'dynamix-forecasting[app]'.") from exc

    track = gr.Progress(track_tqdm=True)  # gradio fills in a progress bar where a parameter defaults to one

    def forecast(upload, example, horizon, embedding, season, samples, mode, seed, progress=track):
        result = run_forecast(upload, example, horizon, embedding, season, samples, mode, seed, model, progress=True)
        figs = result.figures
        return (
            result.message,
            figs.get("forecast"),
            gr.update(value=figs.get("attractor"), visible="attractor" in figs),
            gr.update(value=figs.get("composition"), visible="composition" in figs),
            result.csv_path,
        )

    with gr.Blocks(title="DynaMix forecasting") as app:
        gr.Markdown(
            "# DynaMix: zero-shot forecasts of dynamical systems and time series\n"
            "Upload a CSV (one numeric column per channel, an optional leading time column) or pick an example, "
            "then press **Forecast**. Runs locally; nothing is uploaded anywhere."
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="CSV file", file_types=[".csv"], type="filepath", elem_id="upload")
                example = gr.Dropdown(list(EXAMPLES), value=EXAMPLES[0], label="or an example", elem_id="example")
                horizon = gr.Number(value=500, precision=0, label="Horizon (steps)", elem_id="horizon")
                mode = gr.Radio(list(MODES), value="auto", label="Mode (auto: 1 column time series, more dynamics)")
                embedding = gr.Dropdown(
                    [DEFAULT_EMBEDDING, *EMBEDDINGS],
                    value=DEFAULT_EMBEDDING,
                    label="Embedding (dynamics mode, fewer channels than 3)",
                )
                season = gr.Number(value=0, precision=0, label="Season length (0: estimated)")
                samples = gr.Number(value=20, precision=0, label="Sample paths")
                seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Forecast", variant="primary", elem_id="forecast-button")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="message")
                forecast_plot = gr.Plot(label="Forecast with 10-90 % band", elem_id="forecast-plot")
                attractor_plot = gr.Plot(label="Attractor (3 channels)", visible=False)
                composition_plot = gr.Plot(label="Expert composition", visible=False)
                download = gr.File(label="Forecast (CSV)", elem_id="download")
        button.click(
            forecast,
            inputs=[upload, example, horizon, embedding, season, samples, mode, seed],
            outputs=[message, forecast_plot, attractor_plot, composition_plot, download],
            api_name="forecast",
        )
    return app


def launch(host: str = "127.0.0.1", port: int = 7860, model: str = DEFAULT_MODEL, **kwargs: Any):
    """Serve the app on ``host:port`` (blocking unless ``prevent_thread_lock=True`` is passed)."""
    return build_app(model).launch(server_name=host, server_port=port, share=False, show_error=False, **kwargs)
