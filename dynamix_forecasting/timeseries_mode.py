"""The time-series mode over a batch: every (series, channel) row through the recipe of
:mod:`~dynamix_forecasting.timeseries`, with DynaMix's noise-free rollouts from the engine.

The rollouts use the compiled kernel where the model's experts allow it (each row computed on its own, so a
series' forecast is the same bits alone, in any batch or partition), else the reference step.
"""

from __future__ import annotations

import warnings

import numpy as np
from tqdm.auto import tqdm

from .dynamics_mode import dynamics_paths
from .engine import DivergenceWarning
from .inputs import SeriesBatch
from .memory import check_memory
from .model import DynaMix
from .options import ForecastOptions
from .rollout import choose_backend
from .rows import season_per_series
from .seasonality import estimate_season_length
from .timeseries import INTERVAL_SCALE, TimeSeriesForecast, forecast_time_series

#: Shortest history the time-series mode forecasts.
TS_MIN_HISTORY = 3
#: The time-series mode's divergence guard unless one is given (diverging candidates stay finite and are
#: down-weighted by their errors).
TS_GUARD = 10.0


def row_seasons(rows: list[np.ndarray], n_data: int, season_length: int | tuple[int, ...] | None) -> list[int]:
    """The season of every (series, channel) row: the option's (one for all, or one per series), else
    estimated from each row's history (:func:`~dynamix_forecasting.seasonality.estimate_season_length`)."""
    periods = season_per_series(season_length, len(rows) // n_data)
    if periods is None:
        return [estimate_season_length(r) for r in rows]
    return [p for p in periods for _ in range(n_data)]


def time_series_forecast(
    model: DynaMix, batch: SeriesBatch, horizon: int, options: ForecastOptions
) -> TimeSeriesForecast:
    """The time-series mode's forecast of every (series, channel) row of ``batch``, series-major.

    Parameters
    ----------
    model : DynaMix
        The model.
    batch : SeriesBatch
        The context (already cut to ``options.context_length``).
    horizon : int
        Steps ahead.
    options : ForecastOptions
        Options resolved to ``mode="time_series"``.

    Returns
    -------
    TimeSeriesForecast
        ``S * F`` rows: row ``s * F + f`` is channel ``f`` of series ``s``.
    """
    n_series, n_data = len(batch.series), batch.n_channels
    for i, series in enumerate(batch.series):
        if series.shape[0] < TS_MIN_HISTORY:
            name = "the context" if n_series == 1 else f"series {i}"
            raise ValueError(
                f"{name} has {series.shape[0]} points; the time-series mode needs at least {TS_MIN_HISTORY}. Pass "
                + ("a longer context or a larger context_length." if options.context_length else "a longer context.")
            )
    rows = [series[:, f] for series in batch.series for f in range(n_data)]
    row_periods = row_seasons(rows, n_data, options.season_length)
    check_memory(
        n_rows=len(rows),
        num_samples=1,
        horizon=horizon,
        n_values=len(rows),
        context_values=sum(r.shape[0] for r in rows) * model.N,
        batch_size=options.batch_size,
    )
    scale = INTERVAL_SCALE if options.interval_scale is None else options.interval_scale
    step_kind = choose_backend(model, model.B.device, options.backend, noise=False, batch_invariant=True)
    guard = TS_GUARD if options.divergence_guard is None else options.divergence_guard

    def roll(contexts: list[np.ndarray], h: int, method: str, period: int | None) -> np.ndarray:
        inner = ForecastOptions(
            mode="dynamics",
            preprocessing_method=method,  # type: ignore[arg-type]  # a candidate's embedding
            season_length=period,
            noise=False,
            divergence_guard=guard,
            batch_size=options.batch_size,
            backend=step_kind,  # type: ignore[arg-type]  # a concrete backend chosen above
        )
        with warnings.catch_warnings():
            # Diverging candidates are bounded by the guard and down-weighted by their errors.
            warnings.simplefilter("ignore", DivergenceWarning)
            paths = dynamics_paths(
                model, SeriesBatch([c[:, None] for c in contexts], "list"), h, inner, stacklevel=3, warn=False
            ).paths
        return paths[0, :, :, 0].T

    groups: dict[int, list[int]] = {}
    for r, p in enumerate(row_periods):
        groups.setdefault(p, []).append(r)
    point = np.empty((len(rows), horizon))
    spread = np.empty((len(rows), horizon))
    nonnegative = np.empty(len(rows), dtype=bool)
    seasonal = np.empty(len(rows), dtype=bool)
    forecasts = []
    for period, members in tqdm(groups.items(), disable=not options.progress, desc="DynaMix time-series mode"):
        fc = forecast_time_series([rows[r] for r in members], horizon, roll, period, interval_scale=scale)
        point[members], spread[members] = fc.point, fc.spread
        nonnegative[members], seasonal[members] = fc.nonnegative, fc.seasonal
        forecasts.append(fc)
    # Candidate weights are reported where all rows share one season (one set of candidates).
    single = forecasts[0] if len(forecasts) == 1 else None
    return TimeSeriesForecast(
        point,
        spread,
        nonnegative,
        single.weights if single is not None else np.empty((0, len(rows))),
        seasonal,
        single.candidates if single is not None else (),
    )
