"""Context preprocessing of the DynaMix forecasting pipeline, one series at a time.

Everything here works on one series ``(T, n)``: the non-stationary transforms (Box-Cox and
power-law detrending) with their inverses, standardization statistics, the four embeddings that
lift ``n < N`` channels to the model's ``N`` and the completion of a partial initial condition.
Values that enter the model are float32, computed with the same operations as the published pipeline
wherever those are accurate, so that deterministic forecasts reproduce the authors' numbers bit for bit
(the dynamics are chaotic: a last-bit difference in the context grows over a long horizon); where the
published float32 statistics are not accurate (large offsets, extreme scales) exact float64 ones are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .acf_peaks import acf_periods

EMBEDDINGS = ("pos_embedding", "delay_embedding", "delay_embedding_random", "zero_embedding")


def autocorrelation(x: np.ndarray, nlags: int) -> np.ndarray:
    """Biased sample autocorrelation of a 1-D series for lags ``0..nlags`` (as ``statsmodels.acf``).

    A constant series has no defined autocorrelation; it gets zeros beyond lag 0.
    """
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = x.shape[0]
    denom = float(np.dot(x, x))
    nlags = min(nlags, n - 1)
    if denom == 0.0:
        out = np.zeros(nlags + 1)
        out[0] = 1.0
        return out
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))
    spec = np.fft.rfft(x, size)
    acov = np.fft.irfft(spec * np.conj(spec), size)[: nlags + 1]
    return acov / denom


def autocorrelations(x: np.ndarray, nlags: int) -> np.ndarray:
    """:func:`autocorrelation` of each row of ``x`` ``(R, T)``, with one FFT call for all rows.

    The numbers agree with :func:`autocorrelation` to float64 rounding (numpy's batched inverse FFT
    rounds a little differently from the 1-D one).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    nlags = min(nlags, n - 1)
    denom = np.einsum("ij,ij->i", x, x)
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))
    spec = np.fft.rfft(x, size, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), size, axis=1)[:, : nlags + 1]
    flat = denom == 0.0
    out = acov / np.where(flat, 1.0, denom)[:, None]
    out[flat] = 0.0
    out[flat, 0] = 1.0
    return out


def positional_taus(datas: list[np.ndarray]) -> list[int]:
    """:func:`positional_tau` of many series, with one batched FFT per group of equal shapes and one compiled
    pass for the peaks.

    Much faster for many series (backtests); the periods agree with :func:`positional_tau` except
    where two autocorrelation peaks tie to float64 rounding.
    """
    taus = np.ones(len(datas), dtype=np.int64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, d in enumerate(datas):
        by_shape.setdefault(d.shape, []).append(i)
    for shape, members in by_shape.items():
        t_len = shape[0]
        block = np.stack([datas[i] for i in members])  # (S, T, C)
        varying = np.ptp(block, axis=1) > 0  # (S, C)
        varying[~varying.any(axis=1), 0] = True  # a constant series: its first channel
        series, channels = np.nonzero(varying)
        acfs = autocorrelations(block[series, :, channels], t_len - 1)
        periods = acf_periods(acfs, np.full(series.size, t_len // 10))
        np.maximum.at(taus, np.asarray(members)[series], periods)
    return [int(t) for t in taus]


def _varying(data: np.ndarray) -> list[int]:
    return [k for k in range(data.shape[1]) if np.ptp(data[:, k]) > 0]


def positional_tau(data: np.ndarray) -> int:
    """Period for the positional embedding: the lag of the highest autocorrelation peak beyond ``T // 10``.

    Maximum over channels; without a peak, the argmax of the autocorrelation beyond that lag.
    """
    t_len = data.shape[0]
    channels = _varying(data) or [0]
    acfs = np.stack([autocorrelation(data[:, k], t_len - 1) for k in channels])
    return max(int(acf_periods(acfs, np.full(len(channels), t_len // 10)).max()), 1)


def delay_tau(data: np.ndarray, threshold: float = 1.0 / np.e) -> int:
    """Delay for the delay embedding: first lag where the autocorrelation drops below ``1/e``.

    Maximum over channels; 1 where it never drops below.
    """
    t_len = data.shape[0]
    taus = [1]
    for k in _varying(data):
        acf = autocorrelation(data[:, k], t_len // 2)
        below = np.nonzero(acf[1:] < threshold)[0]
        taus.append(int(below[0]) + 1 if below.size else 1)
    return max(taus)


@lru_cache(maxsize=64)
def _time_steps(t_len: int) -> torch.Tensor:
    return torch.arange(1, t_len + 1, dtype=torch.float32)[:, None]


@lru_cache(maxsize=16)
def _phases(extra: int) -> torch.Tensor:
    # float32 explicitly: the published waves, whatever torch's default dtype is.
    return (
        torch.linspace(0.0, np.pi / 2, extra, dtype=torch.float32) if extra > 1 else torch.zeros(1, dtype=torch.float32)
    )


@lru_cache(maxsize=256)
def _waves(t_len: int, tau: int, extra: int) -> np.ndarray:
    """The positional sinusoids ``(T, extra)``, in float32 torch as published: float32(2 pi / tau) * t + phase,
    then sin. Cached: the series of a panel mostly share their length and period. Read-only."""
    waves = torch.sin(2 * np.pi / tau * _time_steps(t_len) + _phases(extra)[None, :]).numpy()
    waves.setflags(write=False)
    return waves


def positional_waves(t_len: int, tau: int, extra: int) -> np.ndarray:
    """The positional embedding's ``extra`` sinusoids of period ``tau`` at time steps ``1..t_len`` (float32,
    read-only; the same values :func:`embed` uses)."""
    return _waves(t_len, tau, extra)


def embed(
    data: np.ndarray,
    model_dim: int,
    method: str,
    rng: np.random.Generator | None = None,
    tau: int | None = None,
) -> np.ndarray:
    """Lift a series ``(T, n)`` with ``n <= model_dim`` channels to ``model_dim`` channels.

    Parameters
    ----------
    data : numpy.ndarray
        Standardized context ``(T, n)``.
    model_dim : int
        The model's observation dimension ``N``.
    method : str
        One of ``"pos_embedding"``, ``"delay_embedding"``, ``"delay_embedding_random"``,
        ``"zero_embedding"``.
    rng : numpy.random.Generator, optional
        Source of the random delays of ``"delay_embedding_random"``.
    tau : int, optional
        The period of ``"pos_embedding"`` when already known (see :func:`positional_taus`).

    Returns
    -------
    numpy.ndarray
        ``(T', model_dim)``; delay embeddings shorten the context by their largest delay.
    """
    t_len, n_data = data.shape
    extra = model_dim - n_data
    if extra <= 0:
        return data
    if method == "pos_embedding":
        tau = positional_tau(data) if tau is None else tau
        return np.concatenate([data, _waves(t_len, tau, extra).astype(data.dtype)], axis=1)
    if method == "zero_embedding":
        return np.concatenate([data, np.zeros((t_len, extra), dtype=data.dtype)], axis=1)
    if method == "delay_embedding":
        tau = delay_tau(data)
        start = extra * tau
        if start >= t_len:
            tau = max(1, t_len // (extra + 1))
            start = extra * tau
        ts = data[:, -1]
        delayed = [ts[start - i * tau : t_len - i * tau, None] for i in range(1, extra + 1)]
        return np.concatenate([data[start:], *delayed], axis=1)
    if method == "delay_embedding_random":
        rng = rng or np.random.default_rng()
        taus = rng.integers(3, 11, size=extra)
        start = int(taus.max())
        ts = data[:, 0]
        delayed = [ts[start - tau : t_len - tau, None] for tau in taus]
        return np.concatenate([data[start:], *delayed], axis=1)
    raise ValueError(f"Unknown preprocessing_method {method!r}; choose one of {EMBEDDINGS}.")


def min_context_length(n_data: int, model_dim: int, method: str) -> int:
    """Shortest context for which ``method`` leaves at least two embedded frames (one attention frame)."""
    extra = max(model_dim - n_data, 0)
    if method == "delay_embedding_random" and extra:
        return 12
    if method == "delay_embedding" and extra:
        return extra + 2
    return 3


#: The published float32 statistics are used where they are within this fraction of a std of the exact ones.
FLOAT32_STATS_TOLERANCE = 1e-4


def standardization(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and unbiased std over the first axis, exact in float64.

    ``data`` is ``(T, n)``. Computed on deviations scaled by their largest absolute value, so the
    statistics are exact for any scale and offset a float64 series can hold (a float32 mean of
    ``1e8 + x`` loses ``x``; squared deviations of ``1e-200 * x`` underflow). A constant channel gets
    std 1, so that it standardizes to zeros.

    Examples
    --------
    >>> import numpy as np
    >>> mean, std = standardization(np.array([[1e8 + 1.0], [1e8 + 3.0]]))
    >>> float(mean[0] - 1e8), float(std[0])
    (2.0, 1.4142135623730951)
    """
    x = np.asarray(data, dtype=np.float64)
    mean = x.mean(axis=0)
    dev = x - mean
    reach = np.abs(dev).max(axis=0)
    safe = np.where(reach > 0, reach, 1.0)
    std = safe * (dev / safe).std(axis=0, ddof=1 if x.shape[0] > 1 else 0)
    return mean, np.where(std > 0, std, 1.0)


def standardize(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize one series ``(T, n)`` per channel: ``(standardized float32, mean, std)``.

    Where the published pipeline's float32 statistics (torch mean and std, std clamped at 1e-6) are
    accurate, to :data:`FLOAT32_STATS_TOLERANCE` of a std, a channel is standardized exactly as published
    (so deterministic forecasts reproduce the authors' bits); elsewhere (large offsets, tiny or huge
    scales, constant channels) with the exact float64 statistics of :func:`standardization`, so that a
    forecast does not depend on the series' scale and offset. ``mean`` and ``std`` are float64.
    """
    x64 = np.asarray(data, dtype=np.float64)
    mean, std = standardization(x64)
    x32 = torch.as_tensor(x64.astype(np.float32))
    mean32 = torch.mean(x32, dim=0).numpy()
    std32 = torch.clamp(torch.std(x32, dim=0), min=1e-6).numpy()
    published = (np.abs(mean32 - mean) <= FLOAT32_STATS_TOLERANCE * std) & (
        np.abs(std32 - std) <= FLOAT32_STATS_TOLERANCE * std
    )
    published &= np.ptp(x64, axis=0) > 0
    out = ((x64 - mean) / std).astype(np.float32)
    if published.any():
        cols = np.nonzero(published)[0]
        out[:, cols] = ((x32.numpy() - mean32) / std32)[:, cols]
        mean, std = mean.copy(), std.copy()
        mean[cols], std[cols] = mean32[cols], std32[cols]
    return out, mean, std


def standardize_univariate(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`standardize` of many univariate series of one length at once: ``batch`` ``(S, T)``.

    Returns ``(standardized (S, T) float32, mean (S,), std (S,))``, each row the same bits as
    :func:`standardize` of that series alone (``(T, 1)``): the reductions used here give the single-series
    bits (numpy's float64 mean, max and std and torch's float32 mean along contiguous rows; tested), and
    torch's float32 std, which does not, runs per series as it does alone. A panel of short series
    (sktime, darts backtests, the time-series benchmark) then costs a few vectorized operations instead of
    a dozen small ones per series.
    """
    x64 = np.asarray(batch, dtype=np.float64)
    t_len = x64.shape[1]
    mean = x64.mean(axis=1)
    dev = x64 - mean[:, None]
    reach = np.abs(dev).max(axis=1)
    safe = np.where(reach > 0, reach, 1.0)
    std = safe * (dev / safe[:, None]).std(axis=1, ddof=1 if t_len > 1 else 0)
    std = np.where(std > 0, std, 1.0)
    x32 = torch.as_tensor(x64.astype(np.float32))
    mean32 = torch.mean(x32, dim=1).numpy()
    std32 = np.array([torch.clamp(torch.std(row[:, None], dim=0), min=1e-6).item() for row in x32], dtype=np.float32)
    published = (np.abs(mean32 - mean) <= FLOAT32_STATS_TOLERANCE * std) & (
        np.abs(std32 - std) <= FLOAT32_STATS_TOLERANCE * std
    )
    published &= np.ptp(x64, axis=1) > 0
    out = ((x64 - mean[:, None]) / std[:, None]).astype(np.float32)
    if published.any():
        rows = np.nonzero(published)[0]
        out[rows] = (x32.numpy()[rows] - mean32[rows, None]) / std32[rows, None]
        mean, std = mean.copy(), std.copy()
        mean[rows], std[rows] = mean32[rows], std32[rows]
    return out, mean, std


#: Box-Cox forecasts are bounded to the context's range widened by this many ranges on each side (in the
#: shifted, standardized units the transform works in): beyond it the inverse runs towards its pole.
BOXCOX_REACH = 10.0


@dataclass
class NonstationaryTransform:
    """Standardize, Box-Cox and power-law detrend one series; invert on forecasts.

    Attributes are per channel: the pre-standardization ``mean`` and ``std``, Box-Cox ``lambdas``
    and ``offsets``, the ``lows`` and ``highs`` of the shifted context that the inverse may reach
    ``BOXCOX_REACH`` ranges beyond, trend parameters ``trend`` ``(n, 3)`` for ``a * t**b + c`` and the
    context length ``t_len`` at which the trend is continued.
    """

    mean: np.ndarray
    std: np.ndarray
    lambdas: np.ndarray
    offsets: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    trend: np.ndarray
    t_len: int

    @classmethod
    def fit_transform(cls, data: np.ndarray) -> tuple[NonstationaryTransform, np.ndarray]:
        """Fit the transforms on a context ``(T, n)`` and return them with the transformed float32 context."""
        from scipy import stats

        t_len, n_data = data.shape
        x, mean, std = standardize(data)
        lambdas, offsets, trend = np.ones(n_data), np.zeros(n_data), np.zeros((n_data, 3))
        lows, highs = np.zeros(n_data), np.zeros(n_data)
        out = np.empty_like(x)
        t = np.arange(1, t_len + 1, dtype=np.float64)
        for k in range(n_data):
            col = x[:, k]
            low = float(col.min())
            offsets[k] = abs(low) + 1.2 if low <= 0 else 1.2
            shifted = col + np.float32(offsets[k])
            lows[k], highs[k] = float(shifted.min()), float(shifted.max())
            if np.ptp(shifted) > 0:
                _, lam = stats.boxcox(shifted)
                lambdas[k] = float(np.clip(lam, -2.0, 2.0))
                col = _boxcox(shifted, lambdas[k]).astype(np.float32)
            else:
                # A constant channel has no Box-Cox fit: leave it untransformed (lambda = NaN).
                lambdas[k], offsets[k] = np.nan, 0.0
            trend[k] = _fit_power_trend(col, t)
            out[:, k] = col - _power_trend(t, trend[k])
        return cls(mean, std, lambdas, offsets, lows, highs, trend, t_len), out

    def inverse(self, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Invert on forecasts ``(..., H, n)``: re-trend at ``t = T+1..T+H``, inverse Box-Cox, un-standardize.

        Returns
        -------
        values : numpy.ndarray
            The forecast in data units.
        saturated : numpy.ndarray
            Boolean, like ``forecast``: where the Box-Cox value had to be bounded to keep the inverse
            within ``BOXCOX_REACH`` context ranges (the inverse Box-Cox of a negative lambda has a pole,
            and any power of a runaway forecast explodes); non-finite inputs count as saturated too.
        """
        horizon = forecast.shape[-2]
        t = np.arange(self.t_len + 1, self.t_len + horizon + 1, dtype=np.float64)
        out = np.empty_like(forecast, dtype=np.float64)
        saturated = np.zeros(forecast.shape, dtype=bool)
        for k in range(forecast.shape[-1]):
            col = forecast[..., k] + _power_trend(t, self.trend[k])
            lam = self.lambdas[k]
            if not np.isnan(lam):
                span = self.highs[k] - self.lows[k]
                lowest = max(self.lows[k] - BOXCOX_REACH * span, 1e-6 * self.lows[k])
                highest = self.highs[k] + BOXCOX_REACH * span
                bc_low, bc_high = float(_boxcox(lowest, lam)), float(_boxcox(highest, lam))
                saturated[..., k] = ~((col >= bc_low) & (col <= bc_high))
                col = np.clip(col, bc_low, bc_high)  # NaN stays NaN
                col = np.exp(col) if abs(lam) < 1e-8 else np.maximum(lam * col + 1.0, 0.0) ** (1.0 / lam)
            out[..., k] = col - self.offsets[k]
        return out * self.std + self.mean, saturated


def _boxcox(x: np.ndarray, lam: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.log(x) if abs(lam) < 1e-8 else (x**lam - 1.0) / lam


def _power_trend(t: np.ndarray, params: np.ndarray) -> np.ndarray:
    a, b, c = params
    return a * t**b + c


def _fit_power_trend(col: np.ndarray, t: np.ndarray) -> np.ndarray:
    # Least squares for a * t**b + c with b in [0, 3], L-BFGS-B from (0, 1, first value) as published.
    def sse(p: np.ndarray) -> float:
        return float(np.sum((col - _power_trend(t, p)) ** 2))

    from scipy import optimize

    result = optimize.minimize(
        sse,
        np.array([0.0, 1.0, col[0]]),
        method="L-BFGS-B",
        bounds=[(None, None), (0.0, 3.0), (None, None)],
        options={"maxiter": 5000, "gtol": 1e-6, "maxfun": 1500, "maxcor": 10},
    )
    return np.round(result.x, 10)


def complete_initial_condition(partial: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """Fill the missing entries of a partial initial condition from the nearest embedded context frame.

    Parameters
    ----------
    partial : numpy.ndarray
        ``(k,)`` standardized initial values for the first ``k`` channels.
    embedded : numpy.ndarray
        Embedded context ``(T, N)`` with ``N >= k``.
    """
    k = partial.shape[0]
    nearest = int(np.argmin(((embedded[:, :k] - partial) ** 2).sum(1)))
    return np.concatenate([partial, embedded[nearest, k:]])
