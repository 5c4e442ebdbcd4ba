"""Context parroting (Zhang & Gilpin, 2025): copy what followed the best match of the context's last points.

Find where the last ``k`` points of the context best match an earlier stretch (Euclidean distance on
the standardized series) and copy what followed that stretch; when the copy reaches the end of the
context, append it and search again. Several of the best matches give an ensemble, whose spread gives
the quantiles. No parameters are fitted: a tough baseline for chaotic systems, whose contexts revisit
similar states.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def parrot(context: np.ndarray, horizon: int, k: int = 10, n_matches: int = 1) -> np.ndarray:
    """Parroted continuations of a context.

    Parameters
    ----------
    context : numpy.ndarray
        ``(T, F)`` or ``(T,)`` finite values.
    horizon : int
        Steps to forecast.
    k : int, default 10
        Length of the matched stretch (shortened for short contexts).
    n_matches : int, default 1
        Number of best (distinct) matches to follow: the output's leading axis.

    Returns
    -------
    numpy.ndarray
        ``(n_matches, horizon, F)`` (``F`` dropped for 1-D input).
    """
    x = np.asarray(context, dtype=np.float64)
    squeeze = x.ndim == 1
    x = x[:, None] if squeeze else x
    if not np.isfinite(x).all():
        raise ValueError("parrot needs a finite context; fill missing values first.")
    t_len = x.shape[0]
    if t_len < 3:  # nothing to match: repeat the last value
        out = np.broadcast_to(x[-1], (n_matches, horizon, x.shape[1])).copy()
        return out[..., 0] if squeeze else out
    k = int(max(1, min(k, (t_len - 1) // 2)))
    scale = x.std(0)
    scale[scale == 0] = 1.0
    out = np.empty((n_matches, horizon, x.shape[1]))
    for r in range(n_matches):
        series = x.copy()
        done = 0
        while done < horizon:
            z = series / scale
            query = z[-k:]
            windows = sliding_window_view(z[:-1], k, axis=0)  # stretches that have a successor
            windows = windows.transpose(0, 2, 1) if windows.ndim == 3 else windows[..., None]
            dist = ((windows - query) ** 2).sum(axis=(1, 2))
            dist[-1:] = np.inf  # the query itself
            order = np.argsort(dist, kind="stable")
            start = order[min(r, order.shape[0] - 1)]
            follow = series[start + k : start + k + horizon - done]
            if follow.shape[0] == 0:
                follow = series[-1:]
            out[r, done : done + follow.shape[0]] = follow
            series = np.concatenate([series, follow])
            done += follow.shape[0]
    return out[..., 0] if squeeze else out
