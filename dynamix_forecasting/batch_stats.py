"""Standardization of many series at once, exact and the same bits for a series alone or in any batch.

The fast paths (the compiled kernel with noise, the time-series mode) standardize every row here: one
compiled pass over a ragged batch (all rows concatenated, with offsets) computes each row's per-channel
mean and standard deviation in float64, in a fixed sequential order, so a row's statistics depend only on
its own values, never on the batch, the CPU's vector units or numpy's choice of summation. The statistics are
those of :func:`~dynamix_forecasting.preprocessing.standardization` (exact for any scale and offset, constant
channels get std 1), to float64 rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .ragged import Ragged


@njit(cache=True, nogil=True)
def _stats(x):  # pragma: no cover - compiled
    """Mean, standard deviation (ddof 1; 1 where zero) and constancy of a 1-D array, in a fixed order; the std
    from deviations scaled by their largest absolute value (exact for any scale and offset)."""
    n = x.shape[0]
    total = 0.0
    same = True
    for t in range(n):
        total += x[t]
        if x[t] != x[0]:
            same = False
    m = total / n
    reach = 0.0
    for t in range(n):
        reach = max(reach, abs(x[t] - m))
    s = 0.0
    if reach > 0.0 and n > 1:
        acc = 0.0
        for t in range(n):
            q = (x[t] - m) / reach
            acc += q * q
        s = reach * np.sqrt(acc / (n - 1))
    return m, s if s > 0.0 else 1.0, same


@njit(cache=True, nogil=True)
def _row_stats(values, offsets, mean, std, constant):  # pragma: no cover - compiled
    for r in range(offsets.shape[0] - 1):
        for f in range(values.shape[1]):
            mean[r, f], std[r, f], constant[r, f] = _stats(values[offsets[r] : offsets[r + 1], f])


def standardize_rows(rows: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Every row standardized with its own exact statistics: float32 rows and ``(R, n)`` mean, std, constancy.

    One concatenated array and elementwise operations: a row's values are the same bits alone or in any batch.
    """
    lengths = np.array([r.shape[0] for r in rows])
    values = np.concatenate(rows, axis=0) if len(rows) > 1 else np.ascontiguousarray(rows[0], dtype=np.float64)
    mean, std, constant = row_statistics(rows, values)
    scaled = ((values - np.repeat(mean, lengths, axis=0)) / np.repeat(std, lengths, axis=0)).astype(np.float32)
    return np.split(scaled, np.cumsum(lengths)[:-1]), mean, std, constant


def row_statistics(
    rows: list[np.ndarray], values: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row, per-channel mean, standard deviation (ddof 1; 1 for a constant channel) and constancy.

    Parameters
    ----------
    rows : list of numpy.ndarray
        ``R`` float64 rows ``(T_r, F)`` of one channel count.
    values : numpy.ndarray, optional
        The rows already concatenated along time.

    Returns
    -------
    mean, std : numpy.ndarray
        ``(R, F)`` float64.
    constant : numpy.ndarray
        ``(R, F)`` bool: the channel holds one value.
    """
    n_ch = rows[0].shape[1]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([r.shape[0] for r in rows], out=offsets[1:])
    if values is None:
        values = np.concatenate(rows, axis=0) if len(rows) > 1 else np.ascontiguousarray(rows[0])
    mean = np.empty((len(rows), n_ch))
    std = np.empty((len(rows), n_ch))
    constant = np.empty((len(rows), n_ch), dtype=np.bool_)
    _row_stats(np.ascontiguousarray(values, dtype=np.float64), offsets, mean, std, constant)
    return mean, std, constant


@njit(cache=True, nogil=True)
def _aligned_stats(values, lengths, mean, std, constant, scaled):  # pragma: no cover - compiled
    width = values.shape[1]
    for r in range(values.shape[0]):
        lo = width - lengths[r]
        m, sd, same = _stats(values[r, lo:])
        mean[r], std[r], constant[r] = m, sd, same
        for t in range(lo):
            scaled[r, t] = np.float32(0.0)
        for t in range(lo, width):
            scaled[r, t] = np.float32((values[r, t] - m) / sd)


def standardize_aligned(
    values: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Univariate rows right-aligned in ``values`` ``(R, W)`` (row ``r`` is its last ``lengths[r]`` entries),
    each standardized with its own exact statistics (the same as :func:`row_statistics`).

    Returns the float32 standardized rows (zero before each row's start) and ``(R,)`` mean, std, constancy.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    mean = np.empty(values.shape[0])
    std = np.empty(values.shape[0])
    constant = np.empty(values.shape[0], dtype=np.bool_)
    scaled = np.empty(values.shape, dtype=np.float32)
    _aligned_stats(values, lengths, mean, std, constant, scaled)
    return scaled, mean, std, constant


@njit(cache=True, nogil=True)
def _seasonal_rows(values, starts, stops, m, z, seasonal, multiplicative, indices):  # pragma: no cover - compiled
    """The seasonality test and classical decomposition of each row (see ``seasonality.fit_adjustments``),
    every sum over the row's own values in a fixed order."""
    half = m // 2
    r = np.empty(m + 1)
    sums = np.empty(m)
    counts = np.empty(m)
    for g in range(starts.shape[0]):
        lo, hi = starts[g], stops[g]
        n = hi - lo
        if n < 3 * m:
            continue
        total = 0.0
        positive = True
        for t in range(lo, hi):
            total += values[t]
            if not values[t] > 0.0:
                positive = False
        mean = total / n
        denom = 0.0
        for t in range(lo, hi):
            c = values[t] - mean
            denom += c * c
        if denom == 0.0:
            continue
        for k in range(1, m + 1):
            acc = 0.0
            for t in range(lo, hi - k):
                acc += (values[t] - mean) * (values[t + k] - mean)
            r[k] = acc / denom
        spread = 0.0
        for k in range(1, m):
            spread += r[k] * r[k]
        if not abs(r[m]) > z * np.sqrt((1.0 + 2.0 * spread) / n):
            continue
        for k in range(m):
            sums[k] = 0.0
            counts[k] = 0.0
        for t in range(half, n - half):
            if m % 2 == 1:
                acc = 0.0
                for i in range(t - half, t + half + 1):
                    acc += values[lo + i]
            else:
                acc = 0.5 * values[lo + t - half]
                for i in range(t - half + 1, t + half):
                    acc += values[lo + i]
                acc += 0.5 * values[lo + t + half]
            trend = acc / m
            x = values[lo + t]
            sums[t % m] += x / trend if positive else x - trend
            counts[t % m] += 1.0
        level = 0.0
        for k in range(m):
            sums[k] = sums[k] / counts[k]
            level += sums[k]
        level /= m
        usable = True
        for k in range(m):
            sums[k] = sums[k] / level if positive else sums[k] - level
            if not np.isfinite(sums[k]) or (positive and not sums[k] > 0.0):
                usable = False
        multiplicative[g] = positive
        if usable:
            seasonal[g] = True
            for k in range(m):
                indices[g, k] = sums[k]


def seasonal_rows(series: Ragged, m: int, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_seasonal_rows` of 1-D series: ``(G,)`` seasonal and multiplicative flags, ``(G, m)`` indices (0
    where not seasonal)."""
    count = len(series)
    seasonal = np.zeros(count, dtype=np.bool_)
    multiplicative = np.zeros(count, dtype=np.bool_)
    indices = np.zeros((count, m))
    values = np.ascontiguousarray(series.values, dtype=np.float64)
    _seasonal_rows(values, series.starts, series.stops, m, z, seasonal, multiplicative, indices)
    return seasonal, multiplicative, indices


@njit(cache=True, nogil=True)
def _sums_in_order(rows, out):  # pragma: no cover - compiled
    for r in range(rows.shape[0]):
        total = 0.0
        for k in range(rows.shape[1]):
            total += rows[r, k]
        out[r] = total


def sums_in_order(values: np.ndarray) -> np.ndarray:
    """The sum along the last axis of float64 ``values``, added left to right (the numbers of
    ``np.cumsum(values, axis=-1)[..., -1]``, without its temporary)."""
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1])
    rows = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
    out = np.empty(rows.shape[0])
    _sums_in_order(rows, out)
    return out.reshape(values.shape[:-1])
