"""The time-series mode: per-series preprocessing chosen from the history, and calibrated quantiles.

The published pipeline forecasts a standardized context as a dynamical system. Ordinary time series
(sales, tourism, energy, ...) need more: their season is known but ruins the model's guess of a period,
their trend is not an attractor, and the gating-noise spread of the sample paths is not a forecast
distribution. This module wraps the model's rollout (passed in as ``roll``, so it depends on nothing
above numpy) in a recipe that uses only each series' own history:

1. **Seasonal adjustment**: where the 90 % autocorrelation test finds the season, classical
   decomposition removes it (multiplicative for positive series) and puts it back on the forecast.
2. **Candidates**: DynaMix forecasts the adjusted series under a few preprocessing choices (context
   length, embedding, part of the context's linear trend extrapolated), and naive, seasonal naive and the
   recent median join them (the guard); see :func:`default_candidates`.
3. **Rolling origins inside the history**: the same recipe forecasts the last ``windows`` windows of
   the history from what came before them (each as long as five fit in the history, 4 to 96 steps, whatever
   the horizon asked for, so a step's forecast does not depend on the horizon). Each series weighs its
   candidates by the inverse eighth power of their scaled errors there, and the errors of the weighted forecast
   give the spread and the shape of its quantiles.
4. **Calibrated quantiles**: ``point + interval_scale * z_s(q) * s_k``, with ``s_k = a k^b`` fitted per series
   to the mean absolute errors of those windows (``k`` the step ahead) and ``z_s`` the series' own error
   shape (the quantiles of its window errors over ``s_k``, shrunk towards the Laplace quantiles), clipped at
   zero for non-negative series.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .ragged import Ragged
from .seasonality import fit_adjustments
from .ts_distribution import (
    SHAPE_LEVELS,
    TimeSeriesForecast,
    error_persistence,
    error_shape,
    error_spread,
    in_order,
    laplace_quantile,
    row_sum,
)

__all__ = ["SHAPE_LEVELS", "TimeSeriesForecast", "default_candidates", "forecast_time_series", "laplace_quantile"]

# roll(contexts, lengths, steps, method, season_length) -> (R, H) point forecasts of the (adjusted) contexts:
# contexts (R, W) right-aligned (row r's context is its last lengths[r] entries; entries before are NaN), steps
# (R,) the steps each row needs (H their largest; a row's entries beyond its steps are unspecified).
RollFn = Callable[[np.ndarray, np.ndarray, np.ndarray, str, int | None], np.ndarray]

# Multiplies the fitted error spread; chosen on the tuning half of the time-series track
# (benchmarks/splits.py) so that the 10-90 % band covers about 80 % there (77 %, ties split).
INTERVAL_SCALE = 1.6
# Rolling-origin windows at the end of the history. Four since the work-cut round of 2026-12-05 (issue 25; rule
# declared before it: a cut is kept if tuning-half MASE and WQL each stay within +0.5 %): four windows and no
# zero-embedding candidates on 8 or 128 points score 0.8615 / 0.6518 there against five windows' and all
# candidates' 0.8657 / 0.6511, with a fifth less rollout work (benchmarks/results/ts-tuning/tuning-log.csv).
WINDOWS = 4
# Their length: as long as the history affords WINDOWS of them, in [WINDOW_MIN, WINDOW_MAX] steps. It depends on
# each series' own history, never on the requested horizon, so the forecast of a step is the same whatever
# longer horizon is asked for; steps beyond a window use the candidates' weights and the spread's fitted growth.
# Chosen on the tuning half (benchmarks/results/ts-tuning/tuning-log.csv): 0.9165 / 0.7099 against the first
# recipe's one-horizon windows, 0.9134 / 0.6977, whose forecasts changed with the horizon.
WINDOW_MIN = 4
WINDOW_MAX = 96


def window_lengths(lengths: np.ndarray, season_length: int, windows: int) -> np.ndarray:
    """Each series' rolling-origin window length: as long as ``windows`` of them fit after the shortest history
    the recipe forecasts from, in ``[WINDOW_MIN, WINDOW_MAX]`` steps."""
    afford = (lengths - max(8, 2 * season_length + 1)) // max(windows, 1)
    return np.clip(afford, WINDOW_MIN, WINDOW_MAX)


# Candidates are weighted by (1 / scaled error) ** WEIGHT_POWER: 8 leans hard towards each series' best
# candidates (among them the baselines) while still averaging near-ties (tuning half with the guard: MASE
# 0.8657 against 0.8767 with power 4, 0.8947 with 2 and 0.8666 with 16).
WEIGHT_POWER = 8.0

#: Per-series error shape: each series' quantiles follow the quantiles of its own rolling-origin errors
#: (standardized by the fitted spread), shrunk towards the Laplace shape with weight n / (n + SHAPE_PRIOR) for n
#: measured errors (0: the Laplace shape for every series).
SHAPE_PRIOR = 20


@dataclass(frozen=True)
class Candidate:
    """One preprocessing choice of the time-series mode.

    Attributes
    ----------
    method : str
        ``"zero_embedding"`` or ``"pos_embedding"`` (then with the season length as its period).
    context_length : int
        The most recent points of the adjusted series that DynaMix sees.
    trend : float
        Fraction of the context's least-squares slope that is removed before and extrapolated after.
    period : int, optional
        The positional embedding's period where it is not the season (a second, longer cycle).
    """

    method: str
    context_length: int
    trend: float
    period: int | None = None

    @property
    def label(self) -> str:
        if self.method in BASELINES:
            return self.method
        kind = "zero" if self.method == "zero_embedding" else "pos"
        at = f"_period{self.period}" if self.period else ""
        return f"{kind}{self.context_length}_trend{self.trend:g}{at}"


#: Candidates that are not DynaMix: the last value, the last season repeated, the recent median and naive2 (the
#: last two are options). They are weighed by their rolling-origin errors like the others, so a series whose
#: history DynaMix forecasts worse than these leans on them (the guard against ending worse than seasonal naive).
BASELINES = ("naive", "seasonal_naive", "recent_median", "naive2")
#: Whether the baselines are among the default candidates.
GUARD = True
#: Long-context candidates (0: none): the zero embedding and, for seasonal data, the positional embedding on the
#: last LONG_CONTEXT points (DynaMix was built for contexts of 500-2,000 points; the others see at most 128 or 6
#: seasons).
LONG_CONTEXT = 0
#: Also naive2 (the M competitions' benchmark): the seasonally adjusted series' last value, the season put back.
NAIVE2_CANDIDATE = False
#: Sub-daily data (season of 24 or more steps) also gets the positional embedding at this many seasons (a week
#: of days) over three such cycles, where the history holds them (0: off).
SECOND_SEASON = 0
#: Context lengths of the zero-embedding candidates without trend (8 and 128 were dropped in the work-cut round:
#: see :data:`WINDOWS`).
ZERO_CONTEXTS = (16, 32, 64)
#: Also the median of the last two seasons (at least 8 points): a level for intermittent or noisy series.
MEDIAN_CANDIDATE = True


def default_candidates(season_length: int) -> tuple[Candidate, ...]:
    """The candidates of the time-series mode (chosen on the tuning half).

    Zero embedding on the last 16, 32 and 64 points, on 16 and 32 points also with half the
    context's trend and on 32 with all of it; for seasonal data (``season_length > 1``) the positional
    embedding at the season length on the last 3 seasons (with no and half the trend) and 6 seasons; then
    naive, seasonal naive (seasonal data) and the median of the last two seasons (at least 8 points).
    """
    out = [Candidate("zero_embedding", n, 0.0) for n in ZERO_CONTEXTS]
    out += [Candidate("zero_embedding", 16, 0.5), Candidate("zero_embedding", 32, 0.5)]
    out.append(Candidate("zero_embedding", 32, 1.0))
    if season_length > 1:
        three, six = max(3 * season_length, 8), max(6 * season_length, 8)
        out += [Candidate("pos_embedding", three, 0.0), Candidate("pos_embedding", three, 0.5)]
        out.append(Candidate("pos_embedding", six, 0.0))
    if SECOND_SEASON and season_length >= 24:
        long_period = SECOND_SEASON * season_length
        out.append(Candidate("pos_embedding", 3 * long_period, 0.0, long_period))
    if LONG_CONTEXT:
        out.append(Candidate("zero_embedding", LONG_CONTEXT, 0.0))
        if season_length > 1 and LONG_CONTEXT > 6 * season_length:
            out.append(Candidate("pos_embedding", LONG_CONTEXT, 0.0))
    if GUARD:
        out.append(Candidate("naive", 1, 0.0))
        if season_length > 1:
            out.append(Candidate("seasonal_naive", season_length, 0.0))
        if NAIVE2_CANDIDATE and season_length > 1:
            out.append(Candidate("naive2", 1, 0.0))
        if MEDIAN_CANDIDATE:
            out.append(Candidate("recent_median", max(2 * season_length, 8), 0.0))
    return tuple(out)


def forecast_time_series(
    histories: Sequence[np.ndarray],
    horizon: int,
    roll: RollFn,
    season_length: int,
    *,
    candidates: Sequence[Candidate] | None = None,
    windows: int | None = None,
    interval_scale: float = INTERVAL_SCALE,
) -> TimeSeriesForecast:
    """Forecast univariate series with the time-series mode (see the module docstring), all series at once.

    Every stage works on arrays of all series: the seasonal adjustment of every history and rolling origin
    (:func:`~dynamix_forecasting.seasonality.fit_adjustments`), the candidates' contexts and trends, one
    ``roll`` call per embedding for every (series, origin, candidate), the weights and the spread. A series'
    forecast depends only on its own history.

    Parameters
    ----------
    histories : sequence of numpy.ndarray
        ``(T_i,)`` finite histories.
    horizon : int
        Steps ahead.
    roll : callable
        ``roll(contexts, horizon, method, season_length) -> (R, H)``: DynaMix's point forecasts of
        contexts of any lengths (the pipeline passes its own).
    season_length : int
        The data's season (1 for none).
    candidates : sequence of Candidate, optional
        The preprocessing choices (default :func:`default_candidates`).
    windows : int, optional
        Rolling-origin windows at the end of each history (default :data:`WINDOWS`).
    interval_scale : float
        Multiplier of the fitted error spread.

    Returns
    -------
    TimeSeriesForecast
    """
    cands = tuple(candidates) if candidates is not None else default_candidates(season_length)
    windows = WINDOWS if windows is None else windows
    ys = Ragged.of([np.asarray(h, dtype=np.float64) for h in histories])
    n_series, n_cands = len(ys), len(cands)
    lengths = ys.lengths
    spans = window_lengths(lengths, season_length, windows)
    span = int(spans.max())
    # Origins: 0 is the forecast itself, j = 1..windows forecasts the j-th last window of the history.
    min_history = max(8, 2 * season_length + 1)
    series_of, origin_of = [], []
    for j in range(windows + 1):
        ok = np.ones(n_series, dtype=bool) if j == 0 else lengths - j * spans >= min_history
        series_of.append(np.flatnonzero(ok))
        origin_of.append(np.full(int(ok.sum()), j))
    sub_series, sub_origin = np.concatenate(series_of), np.concatenate(origin_of)
    ends = lengths[sub_series] - sub_origin * spans[sub_series]
    final = sub_origin == 0
    # Each history is rolled out as far as it is scored, in one call: the forecasts their horizon, the windows
    # their own length (a short window does not pay for a long one; the kernel stops each row at its steps).
    steps_needed = np.where(final, horizon, spans[sub_series])
    points = _candidate_points(ys.prefixes(sub_series, ends), steps_needed, roll, season_length, cands)
    forecast = np.empty((n_cands, n_series, horizon))
    forecast[:, sub_series[final]] = points.values[:, final, :horizon]
    errors = np.full((n_cands, n_series, windows, span), np.nan)  # signed, data units; NaN beyond a window
    win = np.flatnonzero(~final)
    if win.size:
        # Each window's truth gathered from the concatenated histories (NaN beyond the window), all at once.
        flat, first = ys.values, ys.starts
        reach = min(span, points.values.shape[2])
        k = np.arange(reach)
        inside = k[None, :] < spans[sub_series[win]][:, None]
        at = np.where(inside, first[sub_series[win]][:, None] + ends[win][:, None] + k[None, :], 0)
        truth = np.where(inside, flat[at], np.nan)
        errors[:, sub_series[win], sub_origin[win] - 1, :reach] = truth[None] - points.values[:, win, :reach]
    scales = _scales(ys, season_length)
    has_windows = np.isfinite(errors[0, :, :, 0]).any(axis=1)
    # Candidate weights: inverse mean scaled absolute error over the windows (equal without windows).
    flat = np.abs(errors).reshape(n_cands, n_series, -1)
    counted = np.isfinite(flat).sum(axis=2)
    total_error = row_sum(np.where(np.isfinite(flat), flat, 0.0))
    mae = np.where(counted > 0, total_error / np.maximum(counted, 1), np.inf) / scales[None]
    mae = np.where(np.isfinite(mae), mae, np.inf)
    finite_points = np.all(np.isfinite(forecast), axis=2)  # (C, S)
    inverse = np.where(finite_points, 1.0 / np.maximum(mae, 1e-12) ** WEIGHT_POWER, 0.0)
    equal = np.where(finite_points, 1.0, 0.0)
    raw = np.where(has_windows[None] & (in_order(inverse) > 0)[None], inverse, equal)
    total = in_order(raw)
    if np.any(total == 0):
        bad = int(np.argmax(total == 0))
        raise ValueError(
            f"Every DynaMix candidate forecast of series {bad} is non-finite: the model diverges on it even with the "
            "divergence guard. Check the series for extreme values, and the model's weights if it is not a "
            "released checkpoint."
        )
    weights = raw / total
    point = in_order(weights[:, :, None] * np.nan_to_num(forecast))
    # A constant history is forecast as that constant, exactly (no candidate's rounding).
    constant = ys.reduce(np.maximum) == ys.reduce(np.minimum)
    point[constant] = ys.last()[constant, None]
    combined = in_order(weights[:, :, None, None] * errors)  # the weighted forecast's errors
    unit = error_spread(combined, ys, max(horizon, span))
    spread = unit[:, :horizon] * interval_scale
    shape = error_shape(combined, unit[:, :span], SHAPE_PRIOR) if SHAPE_PRIOR else None
    nonnegative = ys.reduce(np.minimum) >= 0
    point = np.where(nonnegative[:, None], np.maximum(point, 0.0), point)  # a count or a price stays >= 0
    seasonal = np.zeros(n_series, dtype=bool)
    seasonal[sub_series[final]] = points.seasonal[final]
    return TimeSeriesForecast(point, spread, nonnegative, weights, seasonal, cands, error_persistence(combined), shape)


@dataclass(frozen=True)
class _Points:
    values: np.ndarray  # (C, U, H) every candidate's forecast of every history
    seasonal: np.ndarray  # (U,) whether each history was seasonally adjusted


def _candidate_points(
    ys: Ragged, steps: np.ndarray, roll: RollFn, season_length: int, cands: Sequence[Candidate]
) -> _Points:
    """Every candidate's point forecast of every history ``steps[i]`` ahead (``(C, S, max steps)``; entries
    beyond a history's steps are unspecified): the season removed and put back, the candidate's context and
    trend, and one ``roll`` call per embedding for all (history, candidate) pairs."""
    n, m = len(ys), season_length
    horizon = int(steps.max())
    lengths = ys.lengths
    adjustments = fit_adjustments(ys, m)
    # Only the last `width` points of each adjusted history are read (the candidates' contexts): one
    # right-aligned array of them (NaN before a short history's start).
    width = max(c.context_length for c in cands)
    tails = ys.tails(width)
    start = lengths - width  # time step of column 0 (negative where the history is shorter)
    factors = adjustments.factors(start % max(m, 1), width)
    with np.errstate(divide="ignore", invalid="ignore"):
        adjusted = np.where(adjustments.multiplicative[:, None], tails / factors, tails - factors)
    adjusted = np.where(adjustments.seasonal[:, None], adjusted, tails)
    ahead = np.arange(1, horizon + 1)
    out = np.empty((len(cands), n, horizon))
    for method, own_period in dict.fromkeys((c.method, c.period) for c in cands if c.method not in BASELINES):
        members = [c for c, cand in enumerate(cands) if (cand.method, cand.period) == (method, own_period)]
        reach = max(cands[c].context_length for c in members)
        contexts = np.full((len(members), n, reach), np.nan)
        sizes = np.empty((len(members), n), dtype=np.int64)
        slopes = np.zeros((len(members), n))
        for k, c in enumerate(members):
            cand = cands[c]
            block = adjusted[:, width - cand.context_length :]  # (S, n_c), NaN before short histories
            size = np.minimum(lengths, cand.context_length)
            t = np.arange(cand.context_length) - (cand.context_length - 1.0)
            if cand.trend:
                slopes[k] = np.where(size >= 3, cand.trend * _slopes(block, t), 0.0)
            contexts[k, :, reach - cand.context_length :] = block - slopes[k][:, None] * t[None]
            sizes[k] = size
        period = (own_period or m) if method == "pos_embedding" else None
        # Candidates with the same trend see the same context where a history is shorter than both their
        # context lengths (then each is the whole history): it is rolled out once, as far as either needs (the
        # rollout of a context does not depend on the others rolled out with it).
        row = np.arange(len(members) * n).reshape(len(members), n)  # (candidate, history) -> rolled row
        twin = row.copy()  # the row whose rollout each (candidate, history) takes: its own or an earlier twin's
        for k in range(1, len(members)):
            for k2 in range(k):
                if cands[members[k2]].trend == cands[members[k]].trend:
                    twin[k] = np.where((sizes[k2] == sizes[k]) & (twin[k] == row[k]), twin[k2], twin[k])
        flat_twin = twin.reshape(-1)
        own = np.flatnonzero(flat_twin == np.arange(flat_twin.size))
        where = np.empty(flat_twin.size, dtype=np.int64)
        where[own] = np.arange(own.size)
        furthest = np.zeros(own.size, dtype=np.int64)
        np.maximum.at(furthest, where[flat_twin], np.tile(steps, len(members)))
        f = roll(contexts.reshape(-1, reach)[own], sizes.reshape(-1)[own], furthest, method, period)
        out[members] = f[where[flat_twin]].reshape(len(members), n, horizon) + slopes[:, :, None] * ahead[None, None]
    for c, cand in enumerate(cands):
        if cand.method == "naive2":  # restored below with the DynaMix candidates
            out[c] = adjusted[:, -1:]
    seasonal = adjustments.seasonal
    if seasonal.any():  # unadjusted histories have neutral indices (1 or 0): restoring leaves them as they are
        out = adjustments.restore(out, lengths)
    for c, cand in enumerate(cands):  # the baselines read the raw history
        if cand.method == "recent_median":
            recent = tails[:, tails.shape[1] - cand.context_length :]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices cannot occur: lengths >= 1
                out[c] = np.nanmedian(recent, axis=1)[:, None]
        elif cand.method in ("naive", "seasonal_naive"):
            out[c] = _baseline(tails, lengths, horizon, cand.context_length if cand.method == "seasonal_naive" else 1)
    return _Points(out, seasonal)


def _baseline(tails: np.ndarray, lengths: np.ndarray, horizon: int, lag: int) -> np.ndarray:
    """``(S, H)``: the last ``lag`` values of each right-aligned history repeated (the last value where a
    history is shorter than ``lag``)."""
    width = tails.shape[1]
    lag_of = np.where(lengths >= lag, lag, 1)
    ahead = np.arange(horizon)
    columns = width - lag_of[:, None] + ahead[None] % lag_of[:, None]
    return np.take_along_axis(tails, columns, axis=1)


def _slopes(block: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The least-squares slope on ``t`` of every row of ``block`` ``(R, n)`` over its finite (trailing) entries
    (as ``numpy.polyfit(t, y, 1)[0]`` of each row's context)."""
    valid = np.isfinite(block)
    count = valid.sum(axis=1)
    tt = np.where(valid, t[None], 0.0)
    yy = np.where(valid, block, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = np.where(valid, t[None] - (tt.sum(1) / count)[:, None], 0.0)
        dy = np.where(valid, yy - (yy.sum(1) / count)[:, None], 0.0)
        # Row sums along the contiguous axis: each row's sum is computed on its own, whatever the batch.
        return (dt * dy).sum(axis=1) / (dt * dt).sum(axis=1)


def _scales(ys: Ragged, season_length: int) -> np.ndarray:
    """``(S,)`` each history's mean absolute seasonal difference (lag 1 where it is shorter than a season; 1
    where there is none or it is zero), the unit of the candidates' errors."""
    lags = np.where(ys.lengths > season_length, season_length, 1)
    t = np.arange(ys.values.shape[0])
    owner = np.repeat(np.arange(len(ys)), ys.lengths)  # the history of each value
    lag = lags[owner]
    inside = t - lag >= ys.starts[owner]  # the value a lag earlier is of the same history
    diffs = np.where(inside, np.abs(ys.values - ys.values[np.where(inside, t - lag, t)]), 0.0)
    counts = ys.lengths - lags
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.add.reduceat(diffs, ys.starts) / counts if len(ys) else np.empty(0)
    return np.where((counts > 0) & (value > 0), value, 1.0)
