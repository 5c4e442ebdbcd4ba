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
        Number of best distinct matches to follow (the output's leading axis): the stretches of two members
        never overlap (their starts differ by at least ``k``), so the ensemble is not one match shifted by a step.

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
            # The last stretch's successor is the context's last point: following it copies one step and
            # searches again from a match of the query with itself shifted by one, so it is left out.
            dist[-1:] = np.inf
            start = _distinct_matches(np.argsort(dist, kind="stable"), k, r + 1)[-1]
            follow = series[start + k : start + k + horizon - done]
            if follow.shape[0] == 0:
                follow = series[-1:]
            out[r, done : done + follow.shape[0]] = follow
            series = np.concatenate([series, follow])
            done += follow.shape[0]
    return out[..., 0] if squeeze else out


def _distinct_matches(order: np.ndarray, k: int, count: int) -> list[int]:
    """The first ``count`` starts in ``order`` (best first) whose stretches of ``k`` points do not overlap
    (fewer only when the context has too few; then the last one repeats)."""
    chosen: list[int] = []
    for start in order:
        if all(abs(int(start) - c) >= k for c in chosen):
            chosen.append(int(start))
            if len(chosen) == count:
                break
    return chosen + [chosen[-1]] * (count - len(chosen))
