"""Scores of the two protocols: fev's MASE and WQL (time series) and the paper's D_stsp, D_H, MASE (systems)."""

from __future__ import annotations

import numpy as np

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def seasonal_scale(history: np.ndarray, m: int) -> float:
    """Mean absolute seasonal difference of a history (NaNs ignored); 1.0 where undefined (fev 0.6.0's rule:
    a history no longer than ``m`` or without a finite difference is scaled by 1, not dropped)."""
    diffs = np.abs(history[m:] - history[:-m]) if history.shape[0] > m else np.array([])
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else 1.0


def task_mase(histories: list[np.ndarray], targets: list[np.ndarray], medians: np.ndarray, m: int) -> float:
    """fev MASE: mean over all (series, step) of ``|y - median| / scale`` over the finite terms (a series with a
    zero scale gives only non-finite terms, so it drops out; an undefined scale is 1)."""
    errors = []
    for history, target, median in zip(histories, targets, medians, strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(target - median) / seasonal_scale(history, m)
        errors.append(err[np.isfinite(err)])
    return float(np.concatenate(errors).mean())


def task_wql(targets: list[np.ndarray], quantile_preds: np.ndarray, levels=QUANTILES) -> float:
    """fev WQL: mean over levels of ``2 * sum pinball / sum |y|`` over the whole task (NaN targets ignored)."""
    y = np.stack(targets)  # (S, H)
    mask = np.isfinite(y)
    denom = np.abs(y[mask]).sum()
    losses = []
    for q, pred in zip(levels, quantile_preds, strict=True):  # pred (S, H)
        diff = y - pred
        pinball = np.maximum(q * diff, (q - 1) * diff)
        losses.append(2 * pinball[mask].sum() / denom)
    return float(np.mean(losses))


def geometric_mean(values) -> float:
    """Geometric mean of positive values (NaN if any is missing)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        return float("nan")
    return float(np.exp(np.log(arr).mean()))


def quantile_coverage(targets: list[np.ndarray], quantile_preds: np.ndarray, levels=QUANTILES) -> dict[str, float]:
    """Empirical coverage of quantile forecasts ``(Q, S, H)`` over a task (NaN targets ignored).

    ``coverage@q``: the share of outcomes at or below the level-``q`` forecast (nominal ``q``);
    ``band_10_90``: the share inside the 0.1 to 0.9 band (nominal 0.8), ends included.
    ``mid_coverage@q`` and ``mid_band_10_90`` count an outcome equal to a forecast as half covered (the
    randomized-PIT convention for discrete data), so that a forecast of exactly 0 for an outcome of 0 does
    not count as inside every band.
    """
    y = np.stack(targets)
    mask = np.isfinite(y)
    out: dict[str, float] = {}
    for q, pred in zip(levels, quantile_preds, strict=True):
        out[f"coverage@{q:g}"] = float(np.mean((y <= pred)[mask]))
        out[f"mid_coverage@{q:g}"] = float(np.mean(((y < pred) + 0.5 * (y == pred))[mask]))
    lo, hi = f"{0.1:g}", f"{0.9:g}"
    out["band_10_90"] = out[f"coverage@{hi}"] - float(np.mean((y < quantile_preds[list(levels).index(0.1)])[mask]))
    out["mid_band_10_90"] = out[f"mid_coverage@{hi}"] - out[f"mid_coverage@{lo}"]
    return out
