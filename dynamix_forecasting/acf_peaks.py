"""The positional embedding's period of many autocorrelation rows at once (compiled).

The period is the lag of the highest autocorrelation peak beyond a minimum lag, or without such a peak the
lag of the largest autocorrelation beyond it. A peak is a local maximum in the sense of
``scipy.signal.find_peaks`` without conditions: both neighbours are smaller; a flat top counts once, at its
middle sample (the left one of the two middle samples for an even width), and never at either end of the
row. One compiled pass over all rows replaces a Python call of ``find_peaks`` per series (tested to agree
with it, plateaus included).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _periods(acfs, min_lags, out):  # pragma: no cover - compiled
    n_rows, width = acfs.shape
    for r in range(n_rows):
        x = acfs[r]
        min_lag = min_lags[r]
        best, best_value = -1, -np.inf
        i = 1
        while i < width - 1:
            if x[i - 1] < x[i]:
                ahead = i + 1
                while ahead < width - 1 and x[ahead] == x[i]:
                    ahead += 1
                if x[ahead] < x[i]:
                    peak = (i + ahead - 1) // 2
                    if peak > min_lag and x[peak] > best_value:
                        best, best_value = peak, x[peak]
                    i = ahead
            i += 1
        if best < 0:  # no peak beyond the minimum lag: the largest value from min_lag + 1 on
            start = min(min_lag + 1, width - 1)
            best = start
            for t in range(start + 1, width):
                if x[t] > x[best]:
                    best = t
        out[r] = best


def acf_periods(acfs: np.ndarray, min_lags: np.ndarray) -> np.ndarray:
    """The period of every autocorrelation row (see the module docstring).

    Parameters
    ----------
    acfs : numpy.ndarray
        ``(R, L)`` autocorrelations from lag 0.
    min_lags : numpy.ndarray
        ``(R,)`` smallest lag a peak may have (exclusive).

    Returns
    -------
    numpy.ndarray
        ``(R,)`` int64 lags.
    """
    acfs = np.ascontiguousarray(acfs, dtype=np.float64)
    out = np.empty(acfs.shape[0], dtype=np.int64)
    if acfs.shape[0]:
        _periods(acfs, np.ascontiguousarray(np.broadcast_to(min_lags, acfs.shape[:1]), dtype=np.int64), out)
    return out
