"""Synthetic time series for training a time-series checkpoint, and batches laid out as the time-series mode sees them.

Three sources, none of them from a benchmark dataset:

* **Gaussian-process kernel compositions** in the style of KernelSynth (Chronos): one to four kernels
  drawn from a bank (periodic at common seasons, squared-exponential, rational-quadratic, linear, white
  noise), combined with random sums and products, sampled on ``length`` points.
* **Structural mixtures**: trend with change points, a few seasonal harmonics, AR(1) noise, level shifts,
  optionally multiplicative, non-negative or intermittent (counts).
* **Dynamical systems**: one channel of a chaotic training trajectory, subsampled at a random rate.

:class:`TimeSeriesSampler` cuts windows from these as the time-series mode uses DynaMix: a short context
(8 to 128 points) standardized by its own mean and standard deviation, lifted to the model's channels by
the zero embedding or (for series with a known season) the positional embedding at that season, and the
training sequence that continues it from the context's last point.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..preprocessing import embed

#: Windows whose standardized values leave this bound are drawn again: a nearly constant context makes the
#: continuation's standardized values huge, and a few such windows would dominate the squared loss.
MAX_STANDARDIZED = 8.0
MAX_REDRAWS = 20
#: Season lengths (in steps) of the periodic kernels and seasonal harmonics: hourly, daily, weekly, monthly, quarterly.
SEASONS = (4, 6, 7, 12, 24, 52)


def _kernel(kind: str, t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """One kernel matrix on the grid ``t`` (in steps) and its period (periodic kernels only)."""
    d = t[:, None] - t[None, :]
    n = t.shape[0]
    if kind == "periodic":
        period = int(rng.choice(SEASONS))
        scale = rng.choice([0.5, 1.0, 2.0])
        return np.exp(-2 * np.sin(np.pi * np.abs(d) / period) ** 2 / scale**2), period
    if kind == "rbf":
        ell = n * rng.choice([0.01, 0.05, 0.2, 1.0])
        return np.exp(-0.5 * (d / ell) ** 2), None
    if kind == "rq":
        ell, alpha = n * rng.choice([0.02, 0.1, 0.5]), rng.choice([0.1, 1.0, 10.0])
        return (1 + d**2 / (2 * alpha * ell**2)) ** (-alpha), None
    if kind == "linear":
        u = t / n
        return rng.choice([0.0, 0.5, 2.0]) + u[:, None] * u[None, :], None
    return rng.choice([0.01, 0.1]) * np.eye(n), None  # white noise


def kernel_synth(length: int, rng: np.random.Generator, max_kernels: int = 4) -> tuple[np.ndarray, int | None]:
    """One Gaussian-process sample of a random kernel composition, and its shortest period if it has one."""
    t = np.arange(length, dtype=np.float64)
    kinds = rng.choice(["periodic", "periodic", "rbf", "rq", "linear", "white"], size=rng.integers(1, max_kernels + 1))
    total, periods = None, []
    for kind in kinds:
        k, period = _kernel(str(kind), t, rng)
        if period:
            periods.append(period)
        total = k if total is None else (total + k if rng.random() < 0.5 else total * k)
    assert total is not None
    cov = total + 1e-6 * np.eye(length)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # a product of kernels can lose definiteness to rounding
        w, v = np.linalg.eigh(cov)
        chol = v * np.sqrt(np.clip(w, 0, None))
    return chol @ rng.standard_normal(length), (min(periods) if periods else None)


def structural(length: int, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """Trend with change points + seasonal harmonics + AR(1) noise + level shifts, sometimes counts."""
    t = np.arange(length, dtype=np.float64)
    slopes = rng.normal(0, 0.02, size=rng.integers(1, 4))
    cuts = np.sort(rng.integers(0, length, size=slopes.size - 1))
    trend = np.cumsum(np.repeat(slopes, np.diff(np.r_[0, cuts, length])))
    period = int(rng.choice(SEASONS)) if rng.random() < 0.8 else None
    season = np.zeros(length)
    if period:
        for k in range(1, rng.integers(1, 4) + 1):
            season += rng.normal(0, 1.0 / k) * np.sin(2 * np.pi * k * t / period + rng.uniform(0, 2 * np.pi))
    phi, noise = rng.uniform(0, 0.95), np.zeros(length)
    shocks = rng.normal(0, rng.choice([0.1, 0.3, 0.6]), size=length)
    for i in range(1, length):
        noise[i] = phi * noise[i - 1] + shocks[i]
    shifts = np.cumsum((rng.random(length) < 0.005) * rng.normal(0, 2, size=length))
    y = trend + season + noise + shifts
    if rng.random() < 0.3:  # multiplicative seasonality around a positive level
        y = np.exp(0.3 * (y - y.mean()) / (y.std() + 1e-9)) * (5 + trend - trend.min())
    if rng.random() < 0.15:  # counts, often intermittent
        rate = np.exp((y - y.mean()) / (y.std() + 1e-9) + rng.uniform(-2.5, 1.5))
        y = rng.poisson(rate).astype(np.float64)
    return y, period


def dynamical(trajectories: list[np.ndarray], length: int, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """One channel of a chaotic trajectory (50 points per period), subsampled by 1 to 10."""
    traj = trajectories[rng.integers(0, len(trajectories))]
    every = int(rng.choice([1, 2, 3, 5, 10]))
    start = rng.integers(0, traj.shape[0] - length * every)
    return traj[start : start + length * every : every, rng.integers(0, traj.shape[1])].astype(np.float64), None


def growth(length: int, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """Trend-dominated series, as yearly and quarterly business data are: a random walk with drift,
    exponential or logistic growth, with multiplicative noise and sometimes a season."""
    t = np.arange(length, dtype=np.float64) / length
    kind = rng.integers(0, 3)
    if kind == 0:
        level = np.cumsum(rng.normal(rng.normal(0, 0.05), 0.03, size=length))
    elif kind == 1:
        level = rng.normal(0, 2.5) * t
    else:
        level = 2.5 / (1 + np.exp(-rng.uniform(5, 20) * (t - rng.uniform(0.2, 0.8))))
    period = int(rng.choice(SEASONS)) if rng.random() < 0.3 else None
    season = 0.05 * np.sin(2 * np.pi * np.arange(length) / period + rng.uniform(0, 6)) if period else 0.0
    y = np.exp(level + season + rng.normal(0, rng.choice([0.01, 0.03, 0.08]), size=length))
    return y, period


def synthetic_corpus(
    n_series: int,
    length: int = 512,
    seed: int = 0,
    trajectories: list[np.ndarray] | None = None,
    mix: tuple[float, float, float] = (0.6, 0.25, 0.15),
    progress: bool = True,
    growth_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_series`` synthetic series ``(n_series, length)`` and their periods (0: none known).

    ``mix`` gives the shares of kernel compositions, structural mixtures and dynamical systems (the last
    only when ``trajectories`` are given; otherwise its share goes to the kernel compositions);
    ``growth_share`` of the series are trend-dominated instead (:func:`growth`; 0 draws exactly the
    corpus of earlier versions).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n_series, length))
    periods = np.zeros(n_series, dtype=np.int64)
    shares = np.asarray(mix if trajectories else (mix[0] + mix[2], mix[1], 0.0), dtype=np.float64)
    if growth_share:
        shares = np.append(shares / shares.sum() * (1 - growth_share), growth_share)
    sources = rng.choice(shares.size, size=n_series, p=shares / shares.sum())
    for i in tqdm(range(n_series), desc="synthetic series", disable=not progress):
        if sources[i] == 0:
            y, period = kernel_synth(length, rng)
        elif sources[i] == 1:
            y, period = structural(length, rng)
        elif sources[i] == 2:
            assert trajectories is not None
            y, period = dynamical(trajectories, length, rng)
        else:
            y, period = growth(length, rng)
        out[i], periods[i] = y, period or 0
    return out, periods


class TimeSeriesSampler:
    """Seedable batches laid out as the time-series mode feeds DynaMix (same interface as ``WindowSampler``).

    Parameters
    ----------
    series : numpy.ndarray
        ``(n_series, length)`` univariate series.
    periods : numpy.ndarray
        ``(n_series,)`` known season of each series (0: none); those with one may get the positional embedding.
    n_obs : int
        The model's channels (the series plus ``n_obs - 1`` embedding channels).
    context_lengths : sequence of int
        Context lengths, one drawn per batch.
    sequence_length : int
        Points of the training sequence, the first being the context's last point.
    input_noise : float
        Standard deviation of the noise on the teacher signal (standardized units).
    positional_share : float
        Share of batches with the positional embedding (the others use the zero embedding).
    seed : int
        Seed of every batch.
    """

    def __init__(
        self,
        series: np.ndarray,
        periods: np.ndarray,
        n_obs: int,
        context_lengths: tuple[int, ...] | list[int] = (16, 32, 64, 128),
        sequence_length: int = 49,
        input_noise: float = 0.05,
        positional_share: float = 0.4,
        seed: int = 0,
    ) -> None:
        series = np.asarray(series, dtype=np.float64)
        if series.ndim != 2 or not np.isfinite(series).all():
            raise ValueError("series must be a finite (n_series, length) array.")
        self.context_lengths = tuple(int(c) for c in context_lengths)
        if min(self.context_lengths) < 3:
            raise ValueError(f"Context lengths must be at least 3, got {self.context_lengths}.")
        self.window = max(self.context_lengths) + sequence_length - 1
        if series.shape[1] < self.window:
            raise ValueError(f"Series of {series.shape[1]} points are shorter than a window of {self.window}.")
        self.series, self.periods, self.n_obs = series, np.asarray(periods), n_obs
        self.sequence_length, self.input_noise = sequence_length, input_noise
        self.positional_share, self.seed = positional_share, seed
        self.seasonal = np.flatnonzero(self.periods > 1)

    def batch(self, batch_size: int, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Context ``(Tc, B, n_obs)``, clean targets and noisy teacher ``(Ts, B, n_obs)``."""
        rng = np.random.default_rng([self.seed, index])
        c = int(self.context_lengths[rng.integers(0, len(self.context_lengths))])
        positional = self.n_obs > 1 and self.seasonal.size > 0 and rng.random() < self.positional_share
        pool = self.seasonal if positional else np.arange(self.series.shape[0])
        rows = pool[rng.integers(0, pool.size, size=batch_size)]
        length = c + self.sequence_length - 1
        windows = np.empty((length, batch_size, self.n_obs), dtype=np.float32)
        for b in range(batch_size):
            r = rows[b]
            for _ in range(MAX_REDRAWS):
                s = rng.integers(0, self.series.shape[1] - length + 1)
                w = self.series[r, s : s + length]
                mean, std = w[:c].mean(), w[:c].std()
                w = (w - mean) / (std if std > 1e-8 else 1.0)  # standardized by the context, as the pipeline does
                if np.abs(w).max() <= MAX_STANDARDIZED:
                    break
                r = pool[rng.integers(0, pool.size)]
            else:
                w = np.clip(w, -MAX_STANDARDIZED, MAX_STANDARDIZED)
            method = "pos_embedding" if positional else "zero_embedding"
            windows[:, b] = embed(w[:, None], self.n_obs, method, tau=int(self.periods[r]) if positional else None)
        context = torch.from_numpy(windows[:c])
        target = torch.from_numpy(windows[c - 1 :])
        noise = torch.from_numpy(rng.standard_normal(target.shape).astype(np.float32)) * self.input_noise
        noise[..., 1:] = 0  # the embedding channels are exact
        return context, target, target + noise
