"""The time-series mode over a batch: every (series, channel) row through the recipe of
:mod:`~dynamix_forecasting.timeseries`, with DynaMix's noise-free rollouts from the engine.

The rollouts use the compiled kernel where the model's experts allow it (each row computed on its own, so a
series' forecast is the same bits alone, in any batch or partition), else the reference step.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .batch_stats import standardize_aligned
from .engine import roll_rows
from .inputs import SeriesBatch
from .memory import check_memory
from .model import DynaMix
from .options import ForecastOptions
from .preprocessing import positional_waves
from .rollout import choose_backend
from .rows import season_per_series
from .seasonality import estimate_season_length
from .timeseries import INTERVAL_SCALE, SHAPE_LEVELS, TimeSeriesForecast, forecast_time_series

#: Series per call of the recipe (see :func:`time_series_forecast`).
TS_CHUNK_SERIES = 1000
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

    def roll(
        contexts: np.ndarray, lengths: np.ndarray, steps: np.ndarray, method: str, period: int | None
    ) -> np.ndarray:
        return roll_contexts(model, contexts, lengths, steps, method, period, guard, options.batch_size, step_kind)

    groups: dict[int, list[int]] = {}
    for r, p in enumerate(row_periods):
        groups.setdefault(p, []).append(r)
    point = np.empty((len(rows), horizon))
    spread = np.empty((len(rows), horizon))
    persistence = np.empty(len(rows))
    shape = np.empty((len(rows), len(SHAPE_LEVELS)))
    nonnegative = np.empty(len(rows), dtype=bool)
    seasonal = np.empty(len(rows), dtype=bool)
    # Rows of one season go through the recipe in chunks: a series' forecast is the same in any batch, and
    # chunks keep the recipe's (candidates x histories x steps) arrays small enough to stay in reused memory
    # (a 10,000-series panel in one piece spends a quarter of its time faulting in fresh pages).
    chunks = [
        (period, members[start : start + TS_CHUNK_SERIES])
        for period, members in groups.items()
        for start in range(0, len(members), TS_CHUNK_SERIES)
    ]
    forecasts = []
    for period, members in tqdm(chunks, disable=not options.progress, desc="DynaMix time-series mode"):
        fc = forecast_time_series([rows[r] for r in members], horizon, roll, period, interval_scale=scale)
        point[members], spread[members] = fc.point, fc.spread
        nonnegative[members], seasonal[members] = fc.nonnegative, fc.seasonal
        persistence[members] = fc.persistence
        if fc.shape is not None:
            shape[members] = fc.shape
        forecasts.append(fc)
    # Candidate weights are reported where all rows share one season (one set of candidates).
    single = len(groups) == 1
    return TimeSeriesForecast(
        point,
        spread,
        nonnegative,
        np.concatenate([fc.weights for fc in forecasts], axis=1) if single else np.empty((0, len(rows))),
        seasonal,
        forecasts[0].candidates if single else (),
        persistence,
        shape if all(fc.shape is not None for fc in forecasts) else None,
    )


#: Padded context values (rows x longest x channels) up to which all rows of a call are rolled out together.
ONE_CALL_VALUES = 1 << 24
#: Backends that stop each row at its own step count (the others are called per group of similar steps).
ROW_STEP_KERNELS = ("numba", "triton")


def roll_contexts(
    model: DynaMix,
    contexts: np.ndarray,
    lengths: np.ndarray,
    steps: int | np.ndarray,
    method: str,
    period: int | None,
    guard: float,
    batch_size: int | None,
    step_kind: str,
) -> np.ndarray:
    """Noise-free DynaMix forecasts ``(R, H)`` of univariate contexts of any lengths, right-aligned in
    ``contexts`` ``(R, W)`` (row ``r`` is its last ``lengths[r]`` entries), ``steps`` ahead: one horizon ``H``
    for all, or ``(R,)`` steps per row (``H`` their largest; a row's entries beyond its own steps are
    unspecified, and the compiled kernels do not compute them).

    Each context is standardized with its own exact statistics, lifted to the model's ``N`` channels with zeros
    or the positional waves of ``period``, left-padded into one array per group of similar lengths (the padding
    is masked out of the attention) and rolled out from its last frame; diverging rows are bounded by ``guard``
    and left to the recipe's weighting (no warning). The same bits for a context alone or among any others.
    """
    n_model, width = model.N, contexts.shape[1]
    row_steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), (contexts.shape[0],))
    horizon = int(row_steps.max()) if row_steps.size else 0
    data, mean, std, constant = standardize_aligned(contexts, lengths)
    out = np.empty((contexts.shape[0], horizon))
    # The kernel never computes a row's padding, only allocates it: all rows go in one call while the padded
    # array stays small (the recipe's contexts are at most a few hundred points); longer ones are grouped by
    # length within a factor of two. Each row's bits are the same either way.
    buckets = np.ceil(np.log2(np.maximum(lengths, 1))).astype(int)
    if contexts.shape[0] * width * n_model <= ONE_CALL_VALUES:
        buckets[:] = 0
    if step_kind not in ROW_STEP_KERNELS:  # these compute every row to its call's horizon: group by steps too
        buckets = buckets * 64 + np.ceil(np.log2(np.maximum(row_steps, 1))).astype(int)
    for bucket in np.unique(buckets):
        group = np.flatnonzero(buckets == bucket)
        t_len = int(lengths[group].max())
        ctx = np.zeros((group.size, t_len, n_model), dtype=np.float32)
        ctx[:, :, 0] = data[group, width - t_len :]
        if method == "pos_embedding" and period is not None and n_model > 1:
            for length in np.unique(lengths[group]):
                members = np.flatnonzero(lengths[group] == length)
                ctx[members, t_len - length :, 1:] = positional_waves(int(length), period, n_model - 1)[None]
        obs, _, _ = roll_rows(
            model,
            ctx,
            lengths[group],
            ctx[:, -1, :],
            horizon,
            num_samples=1,
            seed=0,
            noise=False,
            guard=guard,
            batch_size=batch_size,
            progress=False,
            step_kind=step_kind,
            n_obs=1,
            stacklevel=2,
            warn=False,
            row_steps=row_steps[group],
        )
        out[group] = obs[:, :, 0]
    out = out * std[:, None] + mean[:, None]
    if constant.any():
        out[constant] = contexts[constant, -1][:, None]
    return out
