"""The time-series mode: per-series preprocessing chosen from the history, and calibrated quantiles.

The published pipeline forecasts a standardized context as a dynamical system. Ordinary time series
(sales, tourism, energy, ...) need more: their season is known but ruins the model's guess of a period,
their trend is not an attractor, and the gating-noise spread of the sample paths is not a forecast
distribution. This module wraps the model's rollout (passed in as ``roll``, so it depends on nothing
above numpy) in a recipe that uses only each series' own history:

1. **Seasonal adjustment**: where the 90 % autocorrelation test finds the season, classical
   decomposition removes it (multiplicative for positive series) and puts it back on the forecast.
2. **Candidates**: DynaMix forecasts the adjusted series under a few preprocessing choices (context
   length, embedding, part of the context's linear trend extrapolated); see :func:`default_candidates`.
3. **Rolling origins inside the history**: the same recipe forecasts the last ``windows`` horizons of
   the history from what came before them. Each series weighs its candidates by the inverse fourth
   power of their scaled errors there, and the errors of the weighted forecast give the spread of its quantiles.
4. **Calibrated quantiles**: ``point + interval_scale * z_q * s_k``, with ``z_q`` the Laplace quantile
   and ``s_k = a k^b`` fitted per series to the mean absolute errors of those windows (``k`` the step
   ahead), clipped at zero for non-negative series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .seasonality import SeasonalAdjustment, fit_adjustment

# roll(contexts, horizon, method, season_length) -> (S, H) point forecasts of the (adjusted) contexts.
RollFn = Callable[[list[np.ndarray], int, str, int | None], np.ndarray]

# Multiplies the fitted error spread; chosen on the tuning half of the time-series track
# (benchmarks/splits.py) so that the 10-90 % band covers about 80 % there (77 %, ties split).
INTERVAL_SCALE = 1.6
# Rolling-origin windows at the end of the history (each one horizon long).
WINDOWS = 3
# Candidates are weighted by (1 / scaled error) ** WEIGHT_POWER: 4 leans towards each series' best
# candidates while still averaging the close ones (tuning half: MASE 0.913 against 0.929 with power 1).
WEIGHT_POWER = 4.0


def laplace_quantile(q: np.ndarray) -> np.ndarray:
    """Quantiles of the Laplace distribution with mean absolute deviation 1 (heavier tails than a normal:
    forecast errors of real series have them)."""
    return np.where(q < 0.5, np.log(2 * q), -np.log(2 * (1 - q)))


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
    """

    method: str
    context_length: int
    trend: float

    @property
    def label(self) -> str:
        kind = "zero" if self.method == "zero_embedding" else "pos"
        return f"{kind}{self.context_length}_trend{self.trend:g}"


def default_candidates(season_length: int) -> tuple[Candidate, ...]:
    """The eleven preprocessing choices of the time-series mode (chosen on the tuning half).

    Zero embedding on the last 8, 16, 32, 64 and 128 points, on 16 and 32 points also with half the
    context's trend and on 32 with all of it; for seasonal data (``season_length > 1``) the positional
    embedding at the season length on the last 3 seasons (with no and half the trend) and 6 seasons.
    """
    out = [Candidate("zero_embedding", n, 0.0) for n in (8, 16, 32, 64, 128)]
    out += [Candidate("zero_embedding", 16, 0.5), Candidate("zero_embedding", 32, 0.5)]
    out.append(Candidate("zero_embedding", 32, 1.0))
    if season_length > 1:
        three, six = max(3 * season_length, 8), max(6 * season_length, 8)
        out += [Candidate("pos_embedding", three, 0.0), Candidate("pos_embedding", three, 0.5)]
        out.append(Candidate("pos_embedding", six, 0.0))
    return tuple(out)


@dataclass(frozen=True)
class TimeSeriesForecast:
    """The time-series mode's forecast of ``S`` series, ``H`` steps.

    Attributes
    ----------
    point : numpy.ndarray
        ``(S, H)`` point forecasts (the weighted combination of the candidates' median paths).
    spread : numpy.ndarray
        ``(S, H)`` calibrated error scale ``interval_scale * s_k`` of each step.
    nonnegative : numpy.ndarray
        ``(S,)`` whether a series' history never went below zero (its quantiles are clipped at 0).
    weights : numpy.ndarray
        ``(C, S)`` weight of each candidate per series.
    seasonal : numpy.ndarray
        ``(S,)`` whether the series was seasonally adjusted.
    candidates : tuple of Candidate
        The candidates, in the order of ``weights``.
    """

    point: np.ndarray
    spread: np.ndarray
    nonnegative: np.ndarray
    weights: np.ndarray
    seasonal: np.ndarray
    candidates: tuple[Candidate, ...]

    def quantiles(self, levels: Sequence[float] | np.ndarray) -> np.ndarray:
        """``(Q, S, H)`` quantile forecasts at ``levels`` (each in ``(0, 1)``), never crossing."""
        q = np.asarray(levels, dtype=np.float64)
        if q.ndim != 1 or np.any((q <= 0) | (q >= 1)):
            raise ValueError(f"Quantile levels must lie strictly between 0 and 1, got {np.ravel(q).tolist()}.")
        out = self.point[None] + laplace_quantile(q)[:, None, None] * self.spread[None]
        return np.maximum(out, self._floor)

    def sample(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """``(K, S, H)`` independent draws from the calibrated distribution of every step."""
        u = np.random.default_rng(seed).uniform(size=(num_samples, *self.point.shape))
        u = np.clip(u, 1e-12, 1 - 1e-12)
        return np.maximum(self.point[None] + laplace_quantile(u) * self.spread[None], self._floor)

    @property
    def _floor(self) -> np.ndarray:
        return np.where(self.nonnegative, 0.0, -np.inf)[None, :, None]


def forecast_time_series(
    histories: Sequence[np.ndarray],
    horizon: int,
    roll: RollFn,
    season_length: int,
    *,
    candidates: Sequence[Candidate] | None = None,
    windows: int = WINDOWS,
    interval_scale: float = INTERVAL_SCALE,
) -> TimeSeriesForecast:
    """Forecast univariate series with the time-series mode (see the module docstring).

    Parameters
    ----------
    histories : sequence of numpy.ndarray
        ``(T_i,)`` finite histories.
    horizon : int
        Steps ahead.
    roll : callable
        ``roll(contexts, horizon, method, season_length) -> (S, H)``: DynaMix's point forecasts of
        contexts (the pipeline passes its own).
    season_length : int
        The data's season (1 for none).
    candidates : sequence of Candidate, optional
        The preprocessing choices (default :func:`default_candidates`).
    windows : int, default 3
        Rolling-origin windows at the end of each history.
    interval_scale : float
        Multiplier of the fitted error spread.

    Returns
    -------
    TimeSeriesForecast
    """
    cands = tuple(candidates) if candidates is not None else default_candidates(season_length)
    ys = [np.asarray(h, dtype=np.float64) for h in histories]
    n_series = len(ys)
    points, seasonal = _candidate_points(ys, horizon, roll, season_length, cands)
    # Rolling origins: window j forecasts the j-th last horizon of the history from what precedes it.
    min_history = max(8, 2 * season_length + 1)
    errors = np.full((len(cands), n_series, windows, horizon), np.nan)  # signed, data units
    scales = np.ones(n_series)
    for j in range(1, windows + 1):
        idx = [i for i, y in enumerate(ys) if y.shape[0] - j * horizon >= min_history]
        if not idx:
            break
        subs = [ys[i][: ys[i].shape[0] - j * horizon] for i in idx]
        sub_points, _ = _candidate_points(subs, horizon, roll, season_length, cands)
        for q, i in enumerate(idx):
            truth = ys[i][subs[q].shape[0] : subs[q].shape[0] + horizon]
            errors[:, i, j - 1] = truth[None] - sub_points[:, q]
    for i, y in enumerate(ys):
        scales[i] = _scale(y, season_length)
    validated = np.isfinite(errors[0, :, :, 0])  # (S, W)
    has_windows = validated.any(axis=1)
    # Candidate weights: inverse mean scaled absolute error over the windows (equal without windows).
    flat = np.abs(errors).reshape(len(cands), n_series, -1)
    counted = np.isfinite(flat).sum(axis=2)
    mae = np.where(counted > 0, np.nansum(flat, axis=2) / np.maximum(counted, 1), np.inf) / scales[None]
    mae = np.where(np.isfinite(mae), mae, np.inf)
    finite_points = np.all(np.isfinite(points), axis=2)  # (C, S)
    inverse = np.where(finite_points, 1.0 / np.maximum(mae, 1e-12) ** WEIGHT_POWER, 0.0)
    equal = np.where(finite_points, 1.0, 0.0)
    raw = np.where(has_windows[None] & (_in_order(inverse) > 0)[None], inverse, equal)
    total = _in_order(raw)
    if np.any(total == 0):
        bad = int(np.argmax(total == 0))
        raise ValueError(
            f"Every DynaMix candidate forecast of series {bad} is non-finite: the model diverges on it even with the "
            "divergence guard. Check the series for extreme values, and the model's weights if it is not a "
            "released checkpoint."
        )
    weights = raw / total
    point = _in_order(weights[:, :, None] * np.nan_to_num(points))
    # A constant history is forecast as that constant, exactly (no candidate's rounding).
    constant = np.array([bool(np.ptp(y) == 0) for y in ys])
    point[constant] = np.array([y[-1] for y, c in zip(ys, constant, strict=True) if c])[:, None]
    combined = _in_order(weights[:, :, None, None] * errors)  # the weighted forecast's errors
    spread = _spread(combined, ys, season_length, horizon) * interval_scale
    nonnegative = np.array([bool(np.all(y >= 0)) for y in ys])
    return TimeSeriesForecast(point, spread, nonnegative, weights, seasonal, cands)


def _in_order(values: np.ndarray) -> np.ndarray:
    """The sum over the leading (candidate) axis, added one candidate after the other.

    numpy's reductions and ``einsum`` pick their summation order by the array's shape and the CPU's vector
    units, so a series' sum could change in the last bit with the batch it is in; this order is fixed, so a
    series' forecast is the same bits alone, in any batch or partition, on any CPU.
    """
    total = values[0].copy()
    for v in values[1:]:
        total += v
    return total


def _candidate_points(
    ys: list[np.ndarray], horizon: int, roll: RollFn, season_length: int, cands: Sequence[Candidate]
) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S, H)`` point forecasts of every candidate and ``(S,)`` whether each series was adjusted."""
    adjustments: list[SeasonalAdjustment | None] = [fit_adjustment(y, season_length) for y in ys]
    adjusted = [y if a is None else a.adjust(y) for y, a in zip(ys, adjustments, strict=True)]
    out = np.empty((len(cands), len(ys), horizon))
    steps = np.arange(1, horizon + 1)
    for c, cand in enumerate(cands):
        contexts, slopes = [], np.zeros(len(ys))
        for i, a in enumerate(adjusted):
            ctx = a[-cand.context_length :]
            if cand.trend and ctx.shape[0] >= 3:
                t = np.arange(ctx.shape[0]) - (ctx.shape[0] - 1)
                slopes[i] = cand.trend * np.polyfit(t, ctx, 1)[0]
                ctx = ctx - slopes[i] * t
            contexts.append(ctx)
        period = season_length if cand.method == "pos_embedding" else None
        f = roll(contexts, horizon, cand.method, period) + slopes[:, None] * steps[None]
        for i, adjustment in enumerate(adjustments):
            out[c, i] = f[i] if adjustment is None else adjustment.restore(f[i], ys[i].shape[0])
    return out, np.array([a is not None for a in adjustments])


def _scale(y: np.ndarray, season_length: int) -> float:
    """Mean absolute seasonal difference (lag 1 where the series is shorter than a season); 1 if zero."""
    lag = season_length if y.shape[0] > season_length else 1
    if y.shape[0] <= lag:
        return 1.0
    value = float(np.mean(np.abs(y[lag:] - y[:-lag])))
    return value if value > 0 else 1.0


def _spread(errors: np.ndarray, ys: list[np.ndarray], season_length: int, horizon: int) -> np.ndarray:
    """``(S, H)`` error scale ``a k^b`` per series from its rolling-origin errors ``(S, W, H)``.

    ``b`` (growth with the step ahead) is fitted to the mean absolute error per step, clipped to
    ``[0, 1]`` and shrunk halfway to the random walk's 0.5, since a few windows give a noisy fit; ``a``
    matches the mean absolute error over all windows and steps. Series too short for any window
    use the in-sample one-step (or seasonal) naive errors and ``b = 0.5``.
    """
    steps = np.arange(1, horizon + 1, dtype=np.float64)
    out = np.empty((len(ys), horizon))
    for i, y in enumerate(ys):
        e = errors[i]
        e = e[np.isfinite(e).all(axis=1)]
        if e.shape[0] == 0:
            diffs = np.diff(y) if y.shape[0] > 1 else np.zeros(1)
            a = float(np.mean(np.abs(diffs)))
            out[i] = a * np.sqrt(steps)
            continue
        b = 0.5
        per_step = np.mean(np.abs(e), axis=0)
        if horizon > 1 and np.all(per_step > 0):
            slope = np.polyfit(np.log(steps), np.log(per_step), 1)[0]
            b = 0.5 * (float(np.clip(slope, 0.0, 1.0)) + 0.5)
        growth = steps**b
        a = float(np.mean(np.abs(e / growth[None])))
        out[i] = a * growth
    return out
