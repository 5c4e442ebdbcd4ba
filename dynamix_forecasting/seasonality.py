"""Seasons of univariate series: estimated from a history, tested, and removed by classical decomposition.

The pieces of the time-series mode that look at a series' season: the season estimated from the
autocorrelation where none is given, the 90 % autocorrelation test of the M competitions' "Naive2" benchmark,
and classical (moving-average) decomposition into seasonal indices, for many series at once (each series in
one compiled pass, :mod:`~dynamix_forecasting.batch_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .preprocessing import autocorrelation
from .ragged import Ragged

# One-sided 90 % normal quantile of the seasonality test (as in the M4 competition's benchmarks).
SEASONALITY_Z = 1.645


def is_seasonal(y: np.ndarray, season_length: int) -> bool:
    """Whether ``y`` has a significant autocorrelation at lag ``season_length`` (90 % level).

    The test of the M4 benchmarks: ``|r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n)``. Needs at least
    three seasons of data; shorter series and ``season_length <= 1`` count as not seasonal.

    Parameters
    ----------
    y : numpy.ndarray
        ``(T,)`` finite values.
    season_length : int
        The candidate period.

    Returns
    -------
    bool
    """
    return bool(fit_adjustments([y], season_length).seasonal[0])


@dataclass(frozen=True)
class SeasonalAdjustment:
    """Seasonal indices of a series, to remove from its history and put back on its forecast.

    Attributes
    ----------
    indices : numpy.ndarray
        ``(m,)`` index of each position in the season (position ``t % m`` of the series' time step ``t``).
    multiplicative : bool
        Whether the indices divide (positive series) or are subtracted.
    """

    indices: np.ndarray
    multiplicative: bool

    def adjust(self, y: np.ndarray) -> np.ndarray:
        """The seasonally adjusted history (time steps ``0 .. T-1``)."""
        s = self.indices[np.arange(y.shape[0]) % self.indices.size]
        return y / s if self.multiplicative else y - s

    def restore(self, forecast: np.ndarray, start: int) -> np.ndarray:
        """Put the season back on ``forecast`` ``(..., H)`` whose first step is time step ``start``."""
        s = self.indices[np.arange(start, start + forecast.shape[-1]) % self.indices.size]
        return forecast * s if self.multiplicative else forecast + s


def fit_adjustment(y: np.ndarray, season_length: int) -> SeasonalAdjustment | None:
    """Classical decomposition's seasonal indices where :func:`is_seasonal` holds, else None (one series; see
    :func:`fit_adjustments`)."""
    batch = fit_adjustments([y], season_length)
    if not batch.seasonal[0]:
        return None
    return SeasonalAdjustment(batch.indices[0], bool(batch.multiplicative[0]))


@dataclass(frozen=True)
class SeasonalAdjustments:
    """The seasonal adjustment of many series at once.

    Attributes
    ----------
    seasonal : numpy.ndarray
        ``(G,)`` whether each series is adjusted (the test held and the indices are usable).
    multiplicative : numpy.ndarray
        ``(G,)`` whether its indices divide (strictly positive series) or are subtracted.
    indices : numpy.ndarray
        ``(G, m)`` its seasonal indices by position ``t % m`` (1 or 0 where not adjusted).
    """

    seasonal: np.ndarray
    multiplicative: np.ndarray
    indices: np.ndarray

    def factors(self, start: np.ndarray, length: int) -> np.ndarray:
        """``(G, length)`` indices of time steps ``start_g .. start_g + length - 1``."""
        m = self.indices.shape[1]
        pos = (start[:, None] + np.arange(length)[None]) % m
        return np.take_along_axis(self.indices, pos, axis=1)

    def adjust(self, values: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Remove the season from ``values`` ``(G, L)`` whose first column is time step ``start``."""
        f = self.factors(start, values.shape[1])
        with np.errstate(divide="ignore", invalid="ignore"):  # both branches are computed; one is kept
            return np.where(self.multiplicative[:, None], values / f, values - f)

    def restore(self, values: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Put the season back on ``values`` ``(..., G, H)`` whose first step is time step ``start``."""
        f = self.factors(start, values.shape[-1])
        # One multiply and one add per value: x * f + 0 where multiplicative, x * 1 + f where additive (the same
        # numbers as x * f and x + f); a diverged candidate may overflow, and is weighted out anyway.
        scale = np.where(self.multiplicative[:, None], f, 1.0)
        shift = np.where(self.multiplicative[:, None], 0.0, f)
        with np.errstate(invalid="ignore", over="ignore"):
            out = values * scale
            out += shift
        return out


def fit_adjustments(series: Sequence[np.ndarray] | Ragged, season_length: int) -> SeasonalAdjustments:
    """The seasonality test and classical decomposition of many series of one season length, vectorized.

    For each series: the test of :func:`is_seasonal` at lag ``m`` (at least three seasons); where it holds, a
    centred moving average of one season (``2 x m`` for even ``m``) estimates the trend, and the indices are
    the mean ratio (multiplicative, strictly positive series) or difference (additive) to it at each position
    of the season, normalized to mean 1 or 0. Series of any lengths are processed together,
    each in one compiled pass whose sums run over its own values in a fixed order, so a series' adjustment
    is the same bits alone or among any others.
    """
    from .batch_stats import seasonal_rows  # numba loads with the first forecast, not at import

    m = int(season_length)
    count = len(series)
    if m <= 1 or count == 0:
        return SeasonalAdjustments(np.zeros(count, dtype=bool), np.zeros(count, dtype=bool), np.zeros((count, 1)))
    rows = series if isinstance(series, Ragged) else Ragged.of([np.asarray(y, dtype=np.float64) for y in series])
    seasonal, multiplicative, indices = seasonal_rows(rows, m, SEASONALITY_Z)
    # Unadjusted series keep neutral indices (1 divides, 0 subtracts), so adjust/restore may run on every row.
    indices[~seasonal] = np.where(multiplicative[~seasonal, None], 1.0, 0.0)
    return SeasonalAdjustments(seasonal, multiplicative, indices)


#: Longest season :func:`estimate_season_length` looks for (a week of hourly data is 168, of 15-minute data 672).
MAX_SEASON = 1000


def estimate_season_length(y: np.ndarray, max_season: int = MAX_SEASON) -> int:
    """The season of ``y`` estimated from its history, or 1 where it shows none.

    The series is detrended by its least-squares line (so a trend does not hide the season), and the
    candidate periods are the local maxima of its autocorrelation at lags 2 to ``min(T // 3, max_season)``.
    A candidate counts where the test of :func:`is_seasonal` holds at that lag on the detrended series, at
    the 90 % level shared by all candidates (Bonferroni: white noise rarely shows a season); of those, the one
    with the highest autocorrelation wins, and a shorter candidate within 10 % of it is preferred (a multiple of the season correlates about as well as the season itself).

    Parameters
    ----------
    y : numpy.ndarray
        ``(T,)`` finite values.
    max_season : int, default 1000
        The longest period considered.

    Returns
    -------
    int
        The estimated season length (1: none found).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(300)
    >>> estimate_season_length(np.sin(2 * np.pi * t / 20) + 0.3 * np.random.default_rng(0).normal(size=300))
    20
    """
    x = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    top = min(n // 3, max_season)
    if top < 2:
        return 1
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, x, 1)
    x = x - (slope * t + intercept)
    denom = float(x @ x)
    if not np.isfinite(denom) or denom <= 1e-12 * max(1.0, float(np.max(np.abs(y))) ** 2) * n:
        return 1
    r = autocorrelation(x, top + 1)  # lags 0 .. top + 1
    lags = np.arange(2, top + 1)
    peaks = lags[(r[lags] > r[lags - 1]) & (r[lags] >= r[lags + 1]) & (r[lags] > 0)]
    if peaks.size == 0:
        return 1
    # The M4 test at each candidate lag m: |r_m| > z sqrt((1 + 2 sum_{k<m} r_k^2) / n), at a level divided
    # by the number of candidates (Bonferroni): testing many lags of white noise must not find a season.
    from scipy.stats import norm

    z = float(norm.ppf(1.0 - 0.1 / peaks.size))
    cumulative = np.cumsum(r[1 : top + 1] ** 2)  # cumulative[m - 2] = sum_{k=1}^{m-1} r_k^2
    limits = z * np.sqrt((1.0 + 2.0 * cumulative[peaks - 2]) / n)
    significant = peaks[r[peaks] > limits]
    if significant.size == 0:
        return 1
    best = float(r[significant].max())
    return int(significant[r[significant] >= 0.9 * best][0])
