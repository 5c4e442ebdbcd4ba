"""The time-series mode's forecast distribution: the error spread, each series' error shape, the step-to-step
persistence of its errors, and the quantiles and coherent sample paths they give (:class:`TimeSeriesForecast`).

Everything here is computed per series from its rolling-origin errors, with sums in a fixed order, so a series'
distribution is the same bits alone or in any batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .batch_stats import sums_in_order
from .ragged import Ragged

# Step-to-step correlation of the forecast errors where a series has no rolling-origin windows to measure it.
DEFAULT_PERSISTENCE = 0.9

#: The levels at which a series' error shape is measured; beyond them the Laplace tail, scaled to the end values.
SHAPE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def laplace_quantile(q: np.ndarray) -> np.ndarray:
    """Quantiles of the Laplace distribution with mean absolute deviation 1 (heavier tails than a normal:
    forecast errors of real series have them)."""
    return np.where(q < 0.5, np.log(2 * q), -np.log(2 * (1 - q)))


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
    candidates : tuple of timeseries.Candidate
        The candidates, in the order of ``weights``.
    shape : numpy.ndarray, optional
        ``(S, len(SHAPE_LEVELS))`` each series' standardized error quantiles at :data:`SHAPE_LEVELS` (None: the
        Laplace quantile for every series).
    persistence : numpy.ndarray
        ``(S,)`` step-to-step correlation of each series' forecast errors (from its rolling origins), which ties
        the steps of a sample path together.

    Notes
    -----
    A constant history carries no evidence of variation: its point forecast is that constant and its
    quantiles collapse onto it (zero-width intervals), by design.
    """

    point: np.ndarray
    spread: np.ndarray
    nonnegative: np.ndarray
    weights: np.ndarray
    seasonal: np.ndarray
    candidates: tuple[Any, ...]  # timeseries.Candidate
    persistence: np.ndarray | None = None
    shape: np.ndarray | None = None

    def quantiles(self, levels: Sequence[float] | np.ndarray) -> np.ndarray:
        """``(Q, S, H)`` quantile forecasts at ``levels`` (each in ``(0, 1)``), never crossing."""
        q = np.asarray(levels, dtype=np.float64)
        if q.ndim != 1 or np.any((q <= 0) | (q >= 1)):
            raise ValueError(f"Quantile levels must lie strictly between 0 and 1, got {np.ravel(q).tolist()}.")
        out = self.point[None] + self._z(q[:, None])[:, :, None] * self.spread[None]
        return np.maximum(out, self._floor)

    def sample(self, num_samples: int, seed: int | None = None) -> np.ndarray:
        """``(K, S, H)`` sample paths: coherent trajectories whose every step has the calibrated distribution.

        A Gaussian copula ties the steps: each path's latent ``z_h = rho z_{h-1} + sqrt(1 - rho^2) e_h`` (unit
        variance at every step, ``rho`` the series' :attr:`persistence`) is mapped through the Laplace quantile
        of the step. So the quantiles of many paths are :meth:`quantiles` (to Monte Carlo error), and a path
        wanders as the series' own forecast errors did instead of jumping from step to step. The draws ``e`` are
        taken step by step and shared by all series: a series' paths do not depend on the other series or on the
        horizon (a shorter horizon gives a prefix).
        """
        from scipy.special import ndtr

        n_series, horizon = self.point.shape
        eps = np.random.default_rng(seed).standard_normal((horizon, num_samples))  # step-major: prefixes agree
        rho = np.full(n_series, DEFAULT_PERSISTENCE) if self.persistence is None else self.persistence
        z = np.empty((num_samples, n_series, horizon))
        z[:, :, 0] = eps[0][:, None]
        keep = np.sqrt(1.0 - rho**2)[None]
        for h in range(1, horizon):
            z[:, :, h] = rho[None] * z[:, :, h - 1] + keep * eps[h][:, None]
        u = np.clip(ndtr(z), 1e-12, 1 - 1e-12)
        z_of = np.swapaxes(self._z(np.swapaxes(u, 1, 2)), 1, 2)  # (K, H, S) -> per-series shapes -> (K, S, H)
        return np.maximum(self.point[None] + z_of * self.spread[None], self._floor)

    def _z(self, q: np.ndarray) -> np.ndarray:
        """Multiple of the spread at levels ``q`` ``(..., S)`` (or ``(..., 1)``, the same for every series): each
        series' error shape where measured, else the Laplace quantile; ``(..., S)``."""
        n_series = self.point.shape[0]
        q = np.broadcast_to(q, (*q.shape[:-1], n_series))
        if self.shape is None:
            return laplace_quantile(q)
        levels = np.asarray(SHAPE_LEVELS)
        table = np.maximum.accumulate(self.shape, axis=1)  # (S, L), non-decreasing
        upper = np.clip(np.searchsorted(levels, q), 1, levels.size - 1)  # linear between two levels
        frac = np.clip((q - levels[upper - 1]) / (levels[upper] - levels[upper - 1]), 0.0, 1.0)
        rows = np.arange(n_series)  # the last axis
        out = table[rows, upper - 1] + frac * (table[rows, upper] - table[rows, upper - 1])
        first, last = table[:, 0], table[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            low = first * laplace_quantile(q) / laplace_quantile(levels[:1])[0]
            high = last * laplace_quantile(q) / laplace_quantile(levels[-1:])[0]
        out = np.where(q < levels[0], np.minimum(low, first), out)
        return np.where(q > levels[-1], np.maximum(high, last), out)

    @property
    def _floor(self) -> np.ndarray:
        return np.where(self.nonnegative, 0.0, -np.inf)[None, :, None]


def error_shape(errors: np.ndarray, unit: np.ndarray, prior_weight: float) -> np.ndarray:
    """``(S, len(SHAPE_LEVELS))``: the quantiles of each series' rolling-origin errors ``(S, W, L)`` divided by its
    fitted spread ``(S, L)``, shrunk towards the Laplace quantiles by ``n / (n + prior_weight)``."""
    levels = np.asarray(SHAPE_LEVELS)
    prior = laplace_quantile(levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = errors / unit[:, None, :]
    u = np.sort(np.where(np.isfinite(u), u, np.inf).reshape(u.shape[0], -1), axis=1)  # measured ones first
    n = np.isfinite(u).sum(axis=1)
    # numpy's default ("linear") quantile of each row's n measured values, all rows at once
    position = (np.maximum(n, 1) - 1)[:, None] * levels[None]
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(n, 1)[:, None] - 1)
    low, high = np.take_along_axis(u, below, axis=1), np.take_along_axis(u, above, axis=1)
    with np.errstate(invalid="ignore"):
        empirical = low + (position - below) * (high - low)
    w = (n / (n + prior_weight))[:, None]
    return np.where((n >= 2)[:, None], w * empirical + (1 - w) * prior[None], prior[None])


def error_persistence(errors: np.ndarray) -> np.ndarray:
    """``(S,)`` lag-one correlation of each series' forecast errors ``(S, W, L)`` along the steps, pooled over its
    windows (uncentred: errors are deviations from the forecast), clipped to [0, 0.99];
    :data:`DEFAULT_PERSISTENCE` where fewer than two consecutive steps were measured."""
    pair = np.isfinite(errors[:, :, 1:]) & np.isfinite(errors[:, :, :-1])
    a = np.where(pair, errors[:, :, 1:], 0.0).reshape(errors.shape[0], -1)
    b = np.where(pair, errors[:, :, :-1], 0.0).reshape(errors.shape[0], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = row_sum(a * b) / np.sqrt(row_sum(a * a) * row_sum(b * b))
    enough = pair.reshape(errors.shape[0], -1).sum(axis=1) >= 2
    return np.where(enough & np.isfinite(rho), np.clip(rho, 0.0, 0.99), DEFAULT_PERSISTENCE)


def row_sum(values: np.ndarray) -> np.ndarray:
    """The sum along the last axis, added in order: unlike numpy's pairwise sums it does not change with padding
    at the end (the windows' NaN-as-zero beyond a series' own window length, set by the other series)."""
    return sums_in_order(values)


def in_order(values: np.ndarray) -> np.ndarray:
    """The sum over the leading (candidate) axis, added one candidate after the other.

    numpy's reductions and ``einsum`` pick their summation order by the array's shape and the CPU's vector
    units, so a series' sum could change in the last bit with the batch it is in; this order is fixed, so a
    series' forecast is the same bits alone, in any batch or partition, on any CPU.
    """
    total = values[0].copy()
    for v in values[1:]:
        total += v
    return total


def error_spread(errors: np.ndarray, ys: Ragged | Sequence[np.ndarray], horizon: int) -> np.ndarray:
    """``(S, H)`` error scale ``a k^b`` per series from its rolling-origin errors ``(S, W, L)`` (NaN where a
    window ends or is missing), fitted on the windows' steps and evaluated at the ``H`` steps ahead.

    ``b`` (growth with the step ahead) is fitted to the mean absolute error per step, clipped to
    ``[0, 1]`` and shrunk halfway to the random walk's 0.5, since a few windows give a noisy fit; ``a``
    matches the mean absolute error over all windows and steps. Series without any window use the in-sample
    one-step naive errors and ``b = 0.5``.
    """
    span = errors.shape[2]
    steps = np.arange(1, span + 1, dtype=np.float64)
    ahead = np.arange(1, horizon + 1, dtype=np.float64)
    valid = np.isfinite(errors)  # (S, W, L)
    abs_err = np.where(valid, np.abs(errors), 0.0)
    per_count = valid.sum(axis=1)  # (S, L)
    per_step = abs_err.sum(axis=1) / np.maximum(per_count, 1)
    step_ok = per_count > 0
    n_ok = step_ok.sum(axis=1)
    usable = (n_ok >= 2) & np.all(np.where(step_ok, per_step > 0, True), axis=1)
    logs = np.where(step_ok & (per_step > 0), np.log(np.where(per_step > 0, per_step, 1.0)), 0.0)
    log_steps = np.log(steps)[None]
    # Sums in order along the steps (see row_sum): a series' spread does not depend on the other series.
    with np.errstate(divide="ignore", invalid="ignore"):
        x_bar = row_sum(np.where(step_ok, log_steps, 0.0)) / n_ok
        y_bar = row_sum(logs) / n_ok
        dx = np.where(step_ok, log_steps - x_bar[:, None], 0.0)
        slope = row_sum(dx * (logs - y_bar[:, None])) / row_sum(dx * dx)
    b = np.where(usable, 0.5 * (np.clip(np.nan_to_num(slope), 0.0, 1.0) + 0.5), 0.5)
    counted = valid.sum(axis=(1, 2))
    scaled = abs_err / steps[None, None] ** b[:, None, None]
    a = row_sum(scaled.reshape(scaled.shape[0], -1)) / np.maximum(counted, 1)
    out = a[:, None] * ahead[None] ** b[:, None]
    for i in np.flatnonzero(counted == 0):
        y = ys[int(i)]
        diffs = np.diff(y) if y.shape[0] > 1 else np.zeros(1)
        out[i] = float(np.mean(np.abs(diffs))) * np.sqrt(ahead)
    return out
