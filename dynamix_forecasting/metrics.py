"""Evaluation measures of the DynaMix paper: D_stsp (geometry), D_H (time scales) and MASE.

All functions take numpy arrays or torch tensors of shape ``(T, N)`` (a 1-D series is ``(T,)``)
and return a Python float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Most histogram cells of the binned D_stsp (n_bins ** dimensions); 30 bins in 3-D are 27,000.
MAX_CELLS = 20_000_000


def _count(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
    return int(value)


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}.")
    return float(value)


def _as_2d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a (T, N) or (T,) array with T >= 2, got shape {arr.shape}.")
    return arr


def _check_pair(x_gen: Any, x_true: Any) -> tuple[np.ndarray, np.ndarray]:
    gen, true = _as_2d(x_gen, "x_gen"), _as_2d(x_true, "x_true")
    if gen.shape[1] != true.shape[1]:
        raise ValueError(f"x_gen has {gen.shape[1]} channels but x_true has {true.shape[1]}.")
    if not np.isfinite(true).all():
        raise ValueError("x_true contains NaN/inf values.")
    return gen, true


def _binned_kl(gen: np.ndarray, true: np.ndarray, n_bins: int, alpha: float) -> float:
    low, high = true.min(0), true.max(0)
    span = np.where(high > low, high - low, 1.0)

    def histogram(x: np.ndarray) -> np.ndarray:
        x = x[np.isfinite(x).all(1)]
        coords = np.floor(n_bins * (x - low) / span).astype(np.int64)
        # As in the released code: points outside the grid and in the lowest bin (index 0) are dropped.
        inside = ((coords > 0) & (coords < n_bins)).all(1)
        flat = np.ravel_multi_index(tuple(coords[inside].T), (n_bins,) * x.shape[1])
        return np.bincount(flat, minlength=n_bins ** x.shape[1]).astype(np.float64)

    h_true, h_gen = histogram(true), histogram(gen)
    if h_gen.sum() == 0 or h_true.sum() == 0:
        return float("nan")
    cells = n_bins ** true.shape[1]
    p_true = (h_true + alpha) / (h_true.sum() + alpha * cells)
    p_gen = (h_gen + alpha) / (h_gen.sum() + alpha * cells)
    return float(np.sum(p_true * np.log(p_true / p_gen)))


def _gmm_kl(gen: np.ndarray, true: np.ndarray, scaling: float, n_mc: int, max_used: int, seed: int | None) -> float:
    # Each trajectory point is the centre of an isotropic Gaussian (variance `scaling`); the KL divergence
    # of the two mixtures is estimated by Monte Carlo from samples of the true mixture.
    rng = np.random.default_rng(seed)
    steps = min(true.shape[0], gen.shape[0], max_used)
    mu_true, mu_gen = true[:steps], gen[:steps]
    mu_gen = mu_gen[np.isfinite(mu_gen).all(1)]
    if mu_gen.shape[0] == 0:
        return float("nan")
    centres = mu_true[rng.integers(0, steps, n_mc)]
    samples = centres + np.sqrt(scaling) * rng.standard_normal(centres.shape)

    def likelihood(mu: np.ndarray) -> np.ndarray:
        out = np.zeros(n_mc)
        for lo in range(0, mu.shape[0], 2048):
            d2 = ((samples[:, None, :] - mu[None, lo : lo + 2048, :]) ** 2).sum(-1)
            out += np.exp(-0.5 * d2 / scaling).sum(1)
        return out / (mu.shape[0] * scaling ** (true.shape[1] / 2))

    p_true, p_gen = likelihood(mu_true), likelihood(mu_gen)
    keep = p_gen != 0
    return float(np.mean(np.log(p_true[keep] + 1e-8) - np.log(p_gen[keep] + 1e-8)))


def geometrical_misalignment(
    x_gen: Any,
    x_true: Any,
    n_bins: int = 30,
    *,
    method: str = "auto",
    smoothing_alpha: float = 1e-5,
    gmm_scaling: float = 1.0,
    n_mc: int = 1000,
    max_used: int = 10_000,
    seed: int | None = 0,
) -> float:
    """State-space divergence ``D_stsp``: KL divergence of the true from the generated attractor.

    Parameters
    ----------
    x_gen, x_true : array-like
        Generated and true trajectories ``(T, N)``.
    n_bins : int, default 30
        Bins per dimension of the histogram (binned method).
    method : {"auto", "binned", "gmm"}, default "auto"
        ``"binned"``: histograms on a grid spanning the true trajectory's range, Laplace smoothing.
        ``"gmm"``: Gaussian-mixture Monte-Carlo estimate, for high dimensions. ``"auto"`` uses the
        binned method up to 3 dimensions and the Gaussian mixture above.
    smoothing_alpha : float, default 1e-5
        Laplace smoothing of the histograms.
    gmm_scaling, n_mc, max_used, seed
        Variance of the mixture components, Monte-Carlo samples, points used and the seed of
        the Gaussian-mixture estimate.

    Returns
    -------
    float
        ``D_stsp`` (0 for identical distributions; NaN if the generated trajectory never enters
        the true trajectory's range).
    """
    gen, true = _check_pair(x_gen, x_true)
    if method == "auto":
        method = "binned" if true.shape[1] <= 3 else "gmm"
    if method == "binned":
        n_bins = _count("n_bins", n_bins, 2)
        if float(n_bins) ** true.shape[1] > MAX_CELLS:
            raise ValueError(
                f"n_bins={n_bins} in {true.shape[1]} dimensions makes {float(n_bins) ** true.shape[1]:.3g} histogram "
                f"cells (at most {MAX_CELLS:,}); use fewer bins or method='gmm'."
            )
        return _binned_kl(gen, true, n_bins, _positive("smoothing_alpha", smoothing_alpha))
    if method == "gmm":
        return _gmm_kl(
            gen,
            true,
            _positive("gmm_scaling", gmm_scaling),
            _count("n_mc", n_mc),
            _count("max_used", max_used),
            seed,
        )
    raise ValueError(f"Unknown method {method!r}; use 'auto', 'binned' or 'gmm'.")


def _smoothed_spectrum(x: np.ndarray, smoothing: float) -> np.ndarray:
    std = x.std()
    z = (x - x.mean()) / (std if std > 0 else 1.0)
    spectrum = np.abs(np.fft.rfft(z)) ** 2 * 2 / len(z)
    from scipy.ndimage import gaussian_filter1d  # loaded on first use: importing the package stays quick

    smoothed = gaussian_filter1d(spectrum, smoothing)
    return smoothed / smoothed.sum()


def temporal_misalignment(x_gen: Any, x_true: Any, smoothing: float = 20.0) -> float:
    """Power-spectrum distance ``D_H``: mean over channels of the Hellinger distance of smoothed spectra.

    Parameters
    ----------
    x_gen, x_true : array-like
        Generated and true trajectories ``(T, N)``; compared over their common length.
    smoothing : float, default 20
        Standard deviation (in frequency bins) of the Gaussian smoothing of the spectra.

    Returns
    -------
    float
        ``D_H`` in ``[0, 1]``; NaN if the generated trajectory is not finite. A constant generated
        channel has no power spectrum and counts as distance 1 (0 if the true channel is constant too).
    """
    gen, true = _check_pair(x_gen, x_true)
    smoothing = _positive("smoothing", smoothing, allow_zero=True)
    steps = min(gen.shape[0], true.shape[0])
    gen, true = gen[:steps], true[:steps]
    if not np.isfinite(gen).all():
        return float("nan")
    distances = []
    for k in range(true.shape[1]):
        flat_gen, flat_true = np.ptp(gen[:, k]) == 0, np.ptp(true[:, k]) == 0
        if flat_gen or flat_true:
            distances.append(0.0 if flat_gen and flat_true else 1.0)
            continue
        p, q = _smoothed_spectrum(true[:, k], smoothing), _smoothed_spectrum(gen[:, k], smoothing)
        distances.append(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))
    return float(np.mean(distances))


def mase(forecast: Any, truth: Any, steps: int = 10) -> float:
    """Mean absolute scaled error over the first ``steps`` forecast steps.

    The mean absolute error is divided by the mean absolute lag-1 difference of the TRUE series over
    the same steps (per channel, then averaged over channels). The authors' notebooks pass the
    arguments the other way round and so scale by the forecast's own differences; this function
    scales by the truth, as MASE is defined.

    Parameters
    ----------
    forecast, truth : array-like
        ``(T, N)`` or ``(T,)``; at least ``steps`` points each.
    steps : int, default 10
        Number of leading steps compared.

    Returns
    -------
    float
    """
    f, y = _as_2d(forecast, "forecast"), _as_2d(truth, "truth")
    if f.shape[1] != y.shape[1]:
        raise ValueError(f"forecast has {f.shape[1]} channels but truth has {y.shape[1]}.")
    steps = _count("steps", steps, 2)
    if f.shape[0] < steps or y.shape[0] < steps:
        raise ValueError(f"mase needs steps >= 2 and at least {steps} points in both series.")
    f, y = f[:steps], y[:steps]
    scale = np.abs(np.diff(y, axis=0)).mean(0)
    if np.any(scale == 0):
        raise ValueError("The true series is constant over the compared steps: MASE is undefined.")
    return float(np.mean(np.abs(f - y).mean(0) / scale))
