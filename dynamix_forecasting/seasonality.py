"""Seasonality test and classical seasonal decomposition of univariate series (numpy only).

The pieces of the time-series mode that look at a series' season: the 90 % autocorrelation test of the
M competitions' "Naive2" benchmark and classical (moving-average) decomposition into seasonal indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    n = y.shape[0]
    if season_length <= 1 or n < 3 * season_length:
        return False
    centred = y - y.mean()
    denom = float(centred @ centred)
    if denom == 0.0:
        return False
    r = np.array([centred[k:] @ centred[:-k] for k in range(1, season_length + 1)]) / denom
    limit = SEASONALITY_Z * np.sqrt((1.0 + 2.0 * np.sum(r[:-1] ** 2)) / n)
    return bool(abs(r[-1]) > limit)


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
    """Classical decomposition's seasonal indices where :func:`is_seasonal` holds, else None.

    A centred moving average of one season (``2 x m`` for even ``m``) estimates the trend; the indices
    are the mean ratio (multiplicative, for strictly positive series) or difference (additive) to it
    at each position of the season, normalized to mean 1 or 0.
    """
    if not is_seasonal(y, season_length):
        return None
    m = season_length
    weights = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    trend = np.convolve(y, weights, mode="valid")
    offset = (weights.size - 1) // 2
    t = np.arange(offset, offset + trend.size)
    multiplicative = bool(np.all(y > 0))
    detrended = y[t] / trend if multiplicative else y[t] - trend
    indices = np.array([detrended[t % m == k].mean() for k in range(m)])
    if multiplicative:
        indices = indices / indices.mean()
        if not np.all(np.isfinite(indices)) or np.any(indices <= 0):
            return None
    else:
        indices = indices - indices.mean()
    return SeasonalAdjustment(indices, multiplicative)
