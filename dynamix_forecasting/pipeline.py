"""DynaMixPipeline: zero-shot forecasts from raw context series.

The pipeline runs every step of the published forecasting recipe for each series: optional
non-stationary transforms, standardization, embedding up to the model's ``N`` channels, the
initial condition, one batched rollout for all series and samples, and the inverse transforms.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import DEFAULT_MODEL, load_model
from .inputs import SeriesBatch, as_series_batch, check_bool, check_guard, check_seed, positive_int
from .memory import check_memory
from .model import DynaMix
from .preprocessing import (
    BOXCOX_REACH,
    EMBEDDINGS,
    NonstationaryTransform,
    complete_initial_condition,
    embed,
    min_context_length,
    positional_taus,
    standardize_univariate,
)
from .preprocessing import standardize as standardize_series
from .rollout import BACKENDS, NoiseStreams, choose_backend, rollout
from .timeseries import INTERVAL_SCALE, TimeSeriesForecast, forecast_time_series

# A standardized series whose forecast leaves this multiple of its context's range counts as diverged.
DIVERGENCE_FACTOR = 10.0


class DivergenceWarning(RuntimeWarning):
    """A forecast left the range of its context by far, or became non-finite."""


@dataclass(frozen=True)
class _Inverse:
    """What undoes one row's preprocessing on its forecast (data units, float64)."""

    n_data: int
    mean: np.ndarray | None
    std: np.ndarray | None
    nonstationary: NonstationaryTransform | None
    constant: np.ndarray
    constant_values: np.ndarray

    def apply(self, f: np.ndarray) -> np.ndarray:
        """Invert ``f`` ``(K, H, n)`` in place; returns each sample's first step (1-based) where the inverse
        Box-Cox had to be bounded, 0 where it never was."""
        saturated = np.zeros(f.shape[0], dtype=np.int64)
        if self.std is not None:
            f *= self.std
            f += self.mean
        if self.nonstationary is not None:
            f[...], clipped = self.nonstationary.inverse(f)
            hit = np.asarray(clipped.any(axis=-1))  # (K, H)
            saturated = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
        if self.constant.any():
            f[..., self.constant] = self.constant_values[self.constant]
        return saturated


def _transform_row(series: np.ndarray, standardize: bool, fit_nonstationary: bool) -> tuple[np.ndarray, _Inverse]:
    """Non-stationary transforms and standardization of one series: the float32 data the model sees and the
    inverse. Statistics are per series and accurate for any scale and offset (see
    :func:`~dynamix_forecasting.preprocessing.standardize`), so a forecast does not depend on the other series
    of a batch, nor (beyond float32 rounding of the standardized context) on the series' scale and offset."""
    data, mean, std, nonstationary = series, None, None, None
    if fit_nonstationary:
        nonstationary, data = NonstationaryTransform.fit_transform(data)
    if standardize:
        data, mean, std = standardize_series(data)
    constant = np.ptp(series, axis=0) == 0
    inverse = _Inverse(series.shape[1], mean, std, nonstationary, constant, series[0].copy())
    return np.asarray(data, dtype=np.float32), inverse


def _transform_rows(
    rows: list[np.ndarray], standardize: bool, fit_nonstationary: bool
) -> list[tuple[np.ndarray, _Inverse]]:
    """:func:`_transform_row` of every row; univariate rows of equal length are standardized together
    (:func:`~dynamix_forecasting.preprocessing.standardize_univariate`, the same bits as one by one)."""
    out: list[tuple[np.ndarray, _Inverse] | None] = [None] * len(rows)
    if standardize and not fit_nonstationary:
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            if r.shape[1] == 1:
                groups.setdefault(r.shape[0], []).append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            batch = np.stack([rows[i][:, 0] for i in members])
            data, mean, std = standardize_univariate(batch)
            for k, i in enumerate(members):
                series = rows[i]
                inverse = _Inverse(
                    1, mean[k : k + 1], std[k : k + 1], None, np.ptp(series, axis=0) == 0, series[0].copy()
                )
                out[i] = (data[k][:, None], inverse)
    return [
        o if o is not None else _transform_row(r, standardize, fit_nonstationary)
        for o, r in zip(out, rows, strict=True)
    ]


def _embed_row(
    data: np.ndarray,
    inverse: _Inverse,
    initial_x: np.ndarray | None,
    n_model: int,
    method: str,
    rng: np.random.Generator,
    tau: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embedding up to the model's ``N`` channels and the initial condition of one series: ``(embedded, x0)``."""
    embedded = embed(data, n_model, method, rng, tau=tau)
    if embedded.shape[0] < 2:
        raise ValueError(
            f"A context of {data.shape[0]} points leaves {embedded.shape[0]} frame(s) after {method}; "
            f"DynaMix needs at least 2. Pass a longer context (at least "
            f"{min_context_length(data.shape[1], n_model, method)} points) or use preprocessing_method='zero_embedding'."
        )
    if initial_x is None:
        return embedded, embedded[-1]
    x = initial_x if inverse.std is None else (initial_x - inverse.mean) / inverse.std
    x = x.astype(np.float32)
    return embedded, x if x.shape[0] == n_model else complete_initial_condition(x, embedded)


def quantiles(
    samples: np.ndarray | torch.Tensor, q: Any = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), axis: int = 0
):
    """Quantile forecasts from sample paths.

    Parameters
    ----------
    samples : numpy.ndarray or torch.Tensor
        Sample forecasts with the samples along ``axis`` (``forecast(..., num_samples=K)`` puts them first).
    q : float or sequence of float
        Quantile levels in ``[0, 1]``.
    axis : int, default 0
        The samples axis.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Quantiles stacked along a new leading axis (dropped for a scalar ``q``).
    """
    levels = np.asarray(q, dtype=np.float64)
    if np.any((levels < 0) | (levels > 1)):
        raise ValueError(f"Quantile levels must lie in [0, 1], got {levels.tolist()}.")
    if isinstance(samples, torch.Tensor):
        return torch.quantile(samples, torch.as_tensor(levels, dtype=samples.dtype, device=samples.device), dim=axis)
    return np.quantile(np.asarray(samples), levels, axis=axis)


class DynaMixPipeline:
    """Forecast dynamical systems and time series zero-shot with a DynaMix model.

    Parameters
    ----------
    model : DynaMix
        A loaded model (see :func:`dynamix_forecasting.load_model`).

    Examples
    --------
    >>> import numpy as np
    >>> from dynamix_forecasting import DynaMix, DynaMixConfig, DynaMixPipeline
    >>> pipeline = DynaMixPipeline(DynaMix(DynaMixConfig(M=8, N=3, Experts=2, P=1)))
    >>> t = np.linspace(0, 20, 200)
    >>> pipeline.forecast(np.sin(t)[:, None], horizon=5, seed=0).shape
    (5, 1)
    """

    def __init__(self, model: DynaMix) -> None:
        if not isinstance(model, DynaMix):
            raise TypeError(f"DynaMixPipeline needs a DynaMix model, got {type(model).__name__}.")
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, **kwargs: Any) -> DynaMixPipeline:
        """Load a model with :func:`~dynamix_forecasting.load_model` and wrap it."""
        return cls(load_model(name_or_path, **kwargs))

    def min_context_length(self, n_channels: int, preprocessing_method: str = "pos_embedding") -> int:
        """Shortest context of ``n_channels`` channels that ``forecast`` accepts with ``preprocessing_method``.

        The one home of this rule: the adapters ask here. More channels than the model's ``N`` are forecast
        one by one, so they need what one channel needs.
        """
        if preprocessing_method not in EMBEDDINGS:
            raise ValueError(f"Unknown preprocessing_method {preprocessing_method!r}; choose one of {EMBEDDINGS}.")
        n_model = self.model.N
        return min_context_length(1 if n_channels > n_model else n_channels, n_model, preprocessing_method)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return self.model.B.device

    def _initial_x_rows(self, initial_x: Any, batch: SeriesBatch, split: bool) -> list[np.ndarray | None]:
        n_series, n_data = len(batch.series), batch.n_channels
        if initial_x is None:
            return [None] * (n_series * (n_data if split else 1))
        arr = np.asarray(
            initial_x.detach().cpu() if isinstance(initial_x, torch.Tensor) else initial_x, dtype=np.float64
        )
        if arr.ndim == 1:
            arr = np.broadcast_to(arr, (n_series, arr.shape[0]))
        if arr.ndim != 2 or arr.shape != (n_series, n_data):
            raise ValueError(
                f"initial_x has shape {np.shape(initial_x)}; expected ({n_data},) or ({n_series}, {n_data}) "
                "(one value per data channel, optionally per series)."
            )
        if not np.isfinite(arr).all():
            raise ValueError("initial_x contains NaN/inf values; pass finite initial values.")
        if split:
            return [arr[s, f : f + 1] for s in range(n_series) for f in range(n_data)]
        return [arr[s] for s in range(n_series)]

    def forecast(
        self,
        context: Any,
        horizon: int,
        *,
        preprocessing_method: str = "pos_embedding",
        season_length: Any = None,
        context_length: int | None = None,
        standardize: bool = True,
        fit_nonstationary: bool = False,
        initial_x: Any = None,
        num_samples: int = 1,
        seed: int | None = None,
        noise: bool = True,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        backend: str = "auto",
        mode: str = "dynamics",
    ) -> np.ndarray | torch.Tensor:
        """Forecast ``horizon`` steps ahead of each context series.

        Parameters
        ----------
        context : array-like
            ``(T,)``, ``(T, F)`` or ``(T, S, F)`` numpy array, torch tensor or pandas object, or a
            list of ``(T_i, F)`` series of unequal lengths (each then keeps its whole context).
        horizon : int
            Number of steps to forecast.
        preprocessing_method : str, default "pos_embedding"
            How ``F < N`` channels are lifted to the model's ``N``: ``"pos_embedding"``,
            ``"delay_embedding"``, ``"delay_embedding_random"`` or ``"zero_embedding"``.
        season_length : int or sequence of int, optional
            The period of ``"pos_embedding"`` (one for all series, or one per series) instead of the
            published guess from the context's autocorrelation. Pass the data's season length (12 for
            monthly data, 24 for hourly, ...): the guess is often a multiple or a fraction of it.
        context_length : int, optional
            Use only the most recent ``context_length`` points of each series (default: all of them).
        standardize : bool, default True
            Standardize each channel with the context's mean and std.
        fit_nonstationary : bool, default False
            Box-Cox and power-law detrend each channel first (for trending series).
        initial_x : array-like, optional
            Initial condition ``(F,)`` or ``(S, F)`` in data units instead of the last context
            value; with fewer entries than ``N`` the rest comes from the nearest context frame.
        num_samples : int, default 1
            Number of sample paths per series (independent gating-noise draws, one batched rollout).
        seed : int, optional
            Seed for the noise (and random delays); the global torch RNG is not touched. Sample ``k``
            of every series uses the same noise stream, so a series gets the same forecast alone or in
            a batch, and a shorter horizon gives a prefix of a longer one.
        noise : bool, default True
            Gating noise as in the published model; False gives the deterministic forecast.
        divergence_guard : float, optional
            Bound every latent entry to this multiple of the context's largest absolute
            standardized value, so a diverging series stays finite. Off by default (exact model).
        batch_size : int, optional
            Roll out at most this many (series x samples) rows at a time to bound memory.
        progress : bool, default False
            Show a progress bar over the rollout.
        backend : str, default "auto"
            The step implementation: ``"reference"`` repeats the published implementation's float32
            arithmetic operation for operation (bit-identical deterministic forecasts); ``"numba"`` (the
            compiled CPU kernel) and ``"torch"`` (fused batched torch ops, for GPUs) compute the same maths
            in another rounding order, much faster. ``"auto"``: the reference step when ``noise=False``,
            else numba on CPUs and torch on GPUs.
        mode : str, default "dynamics"
            ``"dynamics"``: the published pipeline. ``"time_series"``: the time-series mode for ordinary
            series (see :mod:`dynamix_forecasting.timeseries`): each channel is seasonally adjusted
            where its history shows the season ``season_length``, forecast under several preprocessing
            choices weighted by their errors on rolling origins inside the history, and the season put
            back. It returns the point forecast (no samples axis): the noise-free forecast of each
            choice, or with ``num_samples > 1`` the median of that many noisy paths. ``backend="auto"``
            is the compiled kernel here (torch on GPUs), so a series' forecast does not depend on the
            batch it is in. ``season_length``
            (default 1: no season) and ``context_length`` apply; the embedding, standardization,
            ``fit_nonstationary`` and ``initial_x`` options belong to the dynamics mode. Use
            :meth:`predict_quantiles` for its calibrated quantiles.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            ``(H, F)`` for a single series, ``(H, S, F)`` for several (``(H,)`` for 1-D input), with
            a leading samples axis when ``num_samples > 1`` (dynamics mode). A tensor for tensor input.

        Warns
        -----
        DivergenceWarning
            If a forecast becomes non-finite or leaves ten times its context's range.
        UserWarning
            If ``F > N`` and channels are forecast one by one.
        """
        if _check_mode(mode) == "time_series":
            _refuse_dynamics_options(
                preprocessing_method=preprocessing_method,
                standardize=standardize,
                fit_nonstationary=fit_nonstationary,
                initial_x=initial_x,
            )
            result, batch = self._time_series(
                context,
                horizon,
                season_length=season_length,
                context_length=context_length,
                num_samples=num_samples,
                seed=seed,
                noise=noise,
                divergence_guard=divergence_guard,
                batch_size=batch_size,
                progress=progress,
                backend=backend,
            )
            return _shaped(_rows_to_hsf(result.point, batch), batch)
        paths, batch, _ = self._paths(
            context,
            horizon,
            preprocessing_method=preprocessing_method,
            season_length=season_length,
            context_length=context_length,
            standardize=standardize,
            fit_nonstationary=fit_nonstationary,
            initial_x=initial_x,
            num_samples=num_samples,
            seed=seed,
            noise=noise,
            divergence_guard=divergence_guard,
            batch_size=batch_size,
            progress=progress,
            backend=backend,
            stacklevel=3,
        )
        return _shaped(paths if num_samples > 1 else paths[0], batch)

    def predict_quantiles(
        self,
        context: Any,
        horizon: int,
        quantile_levels: Any = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        *,
        mode: str = "dynamics",
        season_length: Any = None,
        context_length: int | None = None,
        num_samples: int | None = None,
        seed: int | None = 0,
        interval_scale: float | None = None,
        **options: Any,
    ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Quantile and point forecasts.

        Parameters
        ----------
        context, horizon
            As in :meth:`forecast`.
        quantile_levels : sequence of float
            Levels strictly between 0 and 1.
        mode : str, default "dynamics"
            ``"dynamics"``: quantiles and median of ``num_samples`` (default 100) sample paths of the
            published pipeline (their spread is the gating noise, not calibrated for real data).
            ``"time_series"``: the time-series mode's point forecast and quantiles calibrated on each
            series' own rolling-origin errors (see :mod:`dynamix_forecasting.timeseries`).
        season_length, context_length, seed
            As in :meth:`forecast`.
        num_samples : int, optional
            Sample paths: 100 in the dynamics mode; 1 (noise-free) in the time-series mode.
        interval_scale : float, optional
            Time-series mode: multiplier of the calibrated spread (default
            :data:`~dynamix_forecasting.timeseries.INTERVAL_SCALE`).
        **options
            Further options of :meth:`forecast` (``divergence_guard``, ``batch_size``, ``backend``, ...).

        Returns
        -------
        quantiles : numpy.ndarray or torch.Tensor
            The quantiles stacked along a new leading axis: ``(Q, *shape)`` with ``shape`` the shape
            :meth:`forecast` returns for one sample.
        point : numpy.ndarray or torch.Tensor
            ``shape``: the median of the paths (dynamics) or the point forecast (time series).
        """
        levels = _levels(quantile_levels)
        if _check_mode(mode) == "time_series":
            _refuse_dynamics_options(**options)
            if interval_scale is not None and not (
                isinstance(interval_scale, int | float) and np.isfinite(interval_scale) and interval_scale > 0
            ):
                raise ValueError(f"interval_scale must be a positive finite number, got {interval_scale!r}.")
            result, batch = self._time_series(
                context,
                horizon,
                season_length=season_length,
                context_length=context_length,
                num_samples=1 if num_samples is None else num_samples,
                seed=seed,
                interval_scale=interval_scale,
                **options,
            )
            quantiles = _rows_to_hsf(result.quantiles(levels), batch)
            return _shaped(quantiles, batch), _shaped(_rows_to_hsf(result.point, batch), batch)
        if interval_scale is not None:
            raise ValueError("interval_scale applies to mode='time_series' only; drop it or set that mode.")
        paths, batch, _ = self._paths(
            context,
            horizon,
            **{**_DYNAMICS_DEFAULTS, **options},
            season_length=season_length,
            context_length=context_length,
            num_samples=100 if num_samples is None else num_samples,
            seed=seed,
            stacklevel=3,
        )
        return _shaped(np.quantile(paths, levels, axis=0), batch), _shaped(np.median(paths, axis=0), batch)

    def predict_df(
        self,
        df: Any,
        prediction_length: int,
        *,
        id_column: str = "unique_id",
        timestamp_column: str = "ds",
        target: str = "y",
        quantile_levels: Any = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        seed: int | None = 0,
        mode: str = "time_series",
        num_partitions: int | None = None,
        whole_series_partitions: bool = False,
        **options: Any,
    ) -> Any:
        """Forecast every series of a long-format frame (pandas, PySpark, Dask or Ray Data) on its own engine.

        Parameters
        ----------
        df : pandas.DataFrame, pyspark.sql.DataFrame, dask.dataframe.DataFrame or ray.data.Dataset
            One row per series and time stamp.
        prediction_length : int
            Steps ahead.
        id_column, timestamp_column, target : str
            Column names of the series id, the time stamps (datetimes or integers, regular per series) and
            the values.
        quantile_levels : sequence of float
            Levels of the quantile columns.
        seed : int, optional
            Seed of the noise (dynamics mode) or of nothing (the time-series mode is noise-free).
        mode : str, default "time_series"
            As in :meth:`predict_quantiles`; the point forecast goes to ``predictions``.
        num_partitions : int, optional
            Partitions of whole series on a distributed engine (default: Spark's shuffle partitions,
            Dask's partitions, Ray's CPUs).
        whole_series_partitions : bool, default False
            Declare that every series already lies in one partition of ``df`` (a table written sorted or
            partitioned by id and read back by row groups): Spark and Dask then skip the shuffle by id.
            Wrong when a series spans partitions (it would be forecast once per piece).
        **options
            Further options of :meth:`predict_quantiles` (``season_length``, ``context_length``, ...).

        Returns
        -------
        The same kind of frame: the id, the continued time stamps, ``predictions`` and one column per
        level named by the level (``"0.1"``, ...), ``prediction_length`` rows per series. Distributed
        engines return it lazily (computed when collected).
        """
        from .long_format import FrameSpec
        from .scale_out import predict_df

        levels = tuple(float(q) for q in _levels(quantile_levels))
        spec = FrameSpec(
            positive_int("prediction_length", prediction_length),
            id_column,
            timestamp_column,
            target,
            levels,
            {"mode": _check_mode(mode), "seed": check_seed(seed), **options},
        )
        return predict_df(
            self, df, spec, num_partitions, check_bool("whole_series_partitions", whole_series_partitions)
        )

    def _time_series(
        self,
        context: Any,
        horizon: int,
        *,
        season_length: Any,
        context_length: int | None,
        num_samples: int,
        seed: int | None,
        noise: bool = True,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        backend: str = "auto",
        interval_scale: float | None = None,
    ) -> tuple[TimeSeriesForecast, SeriesBatch]:
        """The time-series mode over every (series, channel) row: a forecast of ``S * F`` rows, series-major."""
        horizon = positive_int("horizon", horizon)
        num_samples = positive_int("num_samples", num_samples)
        for name, flag in (("noise", noise), ("progress", progress)):
            check_bool(name, flag)
        seed = check_seed(seed)
        guard = 10.0 if divergence_guard is None else check_guard(divergence_guard)
        batch = as_series_batch(context)
        if context_length is not None:
            context_length = positive_int("context_length", context_length)
            batch = batch.tail(context_length)
        n_series, n_data = len(batch.series), batch.n_channels
        periods = [1] * n_series if season_length is None else _season_lengths(season_length, n_series, "pos_embedding")
        for i, series in enumerate(batch.series):
            if series.shape[0] < TS_MIN_HISTORY:
                name = "the context" if n_series == 1 else f"series {i}"
                raise ValueError(
                    f"{name} has {series.shape[0]} points; the time-series mode needs at least {TS_MIN_HISTORY}."
                )
        rows = [series[:, f] for series in batch.series for f in range(n_data)]
        row_periods = [p for p in (periods or []) for _ in range(n_data)]
        check_memory(n_rows=len(rows), num_samples=num_samples, horizon=horizon, n_values=len(rows),
                     context_values=sum(r.shape[0] for r in rows) * self.model.N, batch_size=batch_size)  # fmt: skip
        scale = INTERVAL_SCALE if interval_scale is None else float(interval_scale)
        if backend == "auto":
            # The compiled kernel computes every row on its own, so a series' forecast is the same bits
            # alone, in any batch or partition (the reference step's batched products are not).
            backend = "numba" if self.device.type == "cpu" else "torch"

        def roll(contexts: list[np.ndarray], h: int, method: str, period: int | None) -> np.ndarray:
            with warnings.catch_warnings():
                # Diverging candidates are bounded by the guard and down-weighted by their errors.
                warnings.simplefilter("ignore", DivergenceWarning)
                paths = self.sample_paths(
                    [c[:, None] for c in contexts],
                    h,
                    preprocessing_method=method,
                    season_length=period,
                    num_samples=num_samples,
                    seed=seed,
                    noise=noise and num_samples > 1,
                    divergence_guard=guard,
                    batch_size=batch_size,
                    backend=backend,
                )
            return np.median(paths[..., 0], axis=0).T

        parts: dict[int, list[int]] = {}
        for r, p in enumerate(row_periods):
            parts.setdefault(p, []).append(r)
        point = np.empty((len(rows), horizon))
        spread = np.empty((len(rows), horizon))
        nonnegative = np.empty(len(rows), dtype=bool)
        seasonal = np.empty(len(rows), dtype=bool)
        weights: list[np.ndarray] = []
        for period, members in tqdm(parts.items(), disable=not progress, desc="DynaMix time-series mode"):
            fc = forecast_time_series([rows[r] for r in members], horizon, roll, period, interval_scale=scale)
            point[members], spread[members] = fc.point, fc.spread
            nonnegative[members], seasonal[members] = fc.nonnegative, fc.seasonal
            weights.append(fc.weights)
        result = TimeSeriesForecast(
            point,
            spread,
            nonnegative,
            weights[0] if len(weights) == 1 else np.empty((0, len(rows))),
            seasonal,
            fc.candidates if len(parts) == 1 else (),
        )
        return result, batch

    def expert_weights(
        self,
        context: Any,
        horizon: int,
        *,
        preprocessing_method: str = "pos_embedding",
        season_length: Any = None,
        context_length: int | None = None,
        standardize: bool = True,
        fit_nonstationary: bool = False,
        initial_x: Any = None,
        num_samples: int = 1,
        seed: int | None = None,
        noise: bool = True,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        backend: str = "auto",
        return_forecast: bool = False,
    ) -> np.ndarray | tuple[np.ndarray | torch.Tensor, np.ndarray]:
        """The gating network's expert weights at every step of a forecast: how the experts compose it.

        The weights come from the same rollout as the forecast (same options, same seed: the forecast of
        :meth:`forecast` with these options), on every backend.

        Parameters
        ----------
        context, horizon
            As in :meth:`forecast`.
        preprocessing_method, season_length, context_length, standardize, fit_nonstationary, initial_x
            As in :meth:`forecast` (dynamics mode; the time-series mode mixes many forecasts).
        num_samples, seed, noise, divergence_guard, batch_size, progress, backend
            As in :meth:`forecast`; with ``num_samples > 1`` each sample path has its own weights.
        return_forecast : bool, default False
            Also return the forecast of the same rollout (as :meth:`forecast` returns it, every path when
            ``num_samples > 1``).

        Returns
        -------
        numpy.ndarray or tuple
            Weights ``(horizon, experts)`` for one series, ``(horizon, series, experts)`` for a batch, with
            a leading samples axis when ``num_samples > 1``; each step's weights sum to one. With
            ``return_forecast``, ``(forecast, weights)``.

        Examples
        --------
        >>> import numpy as np
        >>> from dynamix_forecasting import DynaMixPipeline
        >>> pipe = DynaMixPipeline.from_pretrained()
        >>> t = np.arange(600) * 0.05
        >>> w = pipe.expert_weights(np.stack([np.sin(t), np.cos(t), np.sin(2 * t)], 1), 50, noise=False)
        >>> w.shape, bool(np.allclose(w.sum(-1), 1.0))
        ((50, 10), True)
        """
        check_bool("return_forecast", return_forecast)
        paths, batch, weights = self._paths(
            context,
            horizon,
            preprocessing_method=preprocessing_method,
            season_length=season_length,
            context_length=context_length,
            standardize=standardize,
            fit_nonstationary=fit_nonstationary,
            initial_x=initial_x,
            num_samples=num_samples,
            seed=seed,
            noise=noise,
            divergence_guard=divergence_guard,
            batch_size=batch_size,
            progress=progress,
            backend=backend,
            stacklevel=3,
            record_weights=True,
        )
        assert weights is not None  # recorded above
        out = weights if num_samples > 1 else weights[0]
        if batch.layout in ("1d", "2d"):
            out = out[..., 0, :]
        if not return_forecast:
            return out
        return _shaped(paths if num_samples > 1 else paths[0], batch), out

    def sample_paths(
        self,
        context: Any,
        horizon: int,
        *,
        preprocessing_method: str = "pos_embedding",
        season_length: Any = None,
        context_length: int | None = None,
        standardize: bool = True,
        fit_nonstationary: bool = False,
        initial_x: Any = None,
        num_samples: int = 1,
        seed: int | None = None,
        noise: bool = True,
        divergence_guard: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        backend: str = "auto",
        mode: str = "dynamics",
    ) -> np.ndarray:
        """Sample paths of every series as one float64 array ``(samples, horizon, series, channels)``.

        The call behind :meth:`forecast` (which only drops the axes the input did not have) and the
        adapters; the options are those of :meth:`forecast`. With ``mode="time_series"`` the samples are
        independent draws (seeded by ``seed``) from the time-series mode's calibrated distribution of
        each step, around its noise-free point forecast.
        """
        if _check_mode(mode) == "time_series":
            _refuse_dynamics_options(
                preprocessing_method=preprocessing_method,
                standardize=standardize,
                fit_nonstationary=fit_nonstationary,
                initial_x=initial_x,
            )
            result, batch = self._time_series(
                context,
                horizon,
                season_length=season_length,
                context_length=context_length,
                num_samples=1,
                seed=seed,
                noise=noise,
                divergence_guard=divergence_guard,
                batch_size=batch_size,
                progress=progress,
                backend=backend,
            )
            draws = result.sample(positive_int("num_samples", num_samples), check_seed(seed))
            return _rows_to_hsf(draws, batch)
        paths, _, _ = self._paths(
            context,
            horizon,
            preprocessing_method=preprocessing_method,
            season_length=season_length,
            context_length=context_length,
            standardize=standardize,
            fit_nonstationary=fit_nonstationary,
            initial_x=initial_x,
            num_samples=num_samples,
            seed=seed,
            noise=noise,
            divergence_guard=divergence_guard,
            batch_size=batch_size,
            progress=progress,
            backend=backend,
            stacklevel=3,
        )
        return paths

    def _paths(
        self,
        context: Any,
        horizon: int,
        *,
        preprocessing_method: str,
        season_length: Any,
        context_length: int | None,
        standardize: bool,
        fit_nonstationary: bool,
        initial_x: Any,
        num_samples: int,
        seed: int | None,
        noise: bool,
        divergence_guard: float | None,
        batch_size: int | None,
        progress: bool,
        backend: str,
        stacklevel: int,
        record_weights: bool = False,
    ) -> tuple[np.ndarray, SeriesBatch, np.ndarray | None]:
        """Validate, preprocess, roll out and invert: ``(K, H, S, F)`` paths, the parsed input and, with
        ``record_weights``, the expert weights ``(K, H, S, J)`` of the same rollout."""
        horizon = positive_int("horizon", horizon)
        if preprocessing_method not in EMBEDDINGS:
            raise ValueError(f"Unknown preprocessing_method {preprocessing_method!r}; choose one of {EMBEDDINGS}.")
        num_samples = positive_int("num_samples", num_samples)
        for name, flag in (("standardize", standardize), ("fit_nonstationary", fit_nonstationary), ("noise", noise),
                           ("progress", progress)):  # fmt: skip
            check_bool(name, flag)
        seed = check_seed(seed)
        if initial_x is not None and fit_nonstationary:
            raise ValueError(
                "initial_x cannot be combined with fit_nonstationary=True: the non-stationary transforms are "
                "defined on the context's time axis. Drop initial_x or set fit_nonstationary=False."
            )
        divergence_guard = check_guard(divergence_guard)
        batch_size = None if batch_size is None else positive_int("batch_size", batch_size)
        if backend not in BACKENDS:
            raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
        step_kind = choose_backend(self.model, self.device, backend, noise)
        batch = as_series_batch(context)
        n_model, n_data = self.model.N, batch.n_channels
        need = self.min_context_length(n_data, preprocessing_method)
        if context_length is not None:
            context_length = positive_int("context_length", context_length)
            if context_length < need:
                raise ValueError(
                    f"context_length={context_length} is shorter than the {need} points {preprocessing_method} "
                    f"needs; pass context_length >= {need}."
                )
            batch = batch.tail(context_length)
        periods = _season_lengths(season_length, len(batch.series), preprocessing_method)
        for i, s in enumerate(batch.series):
            if s.shape[0] < need:
                name = "the context" if len(batch.series) == 1 else f"series {i}"
                raise ValueError(
                    f"{name} has {s.shape[0]} points; {preprocessing_method} needs at least {need}. "
                    "Pass a longer context."
                )
        split = n_data > n_model
        if split and record_weights:
            raise ValueError(
                f"The context has {n_data} channels but the model observes {n_model}, so each channel would be "
                "its own forecast with its own expert weights; pass the channels one at a time (or at most "
                f"{n_model} of them) to get expert weights."
            )
        if split:
            warnings.warn(
                f"The context has {n_data} channels but the model was trained for {self.model.N}; "
                "each channel is forecast as its own univariate series.",
                UserWarning,
                stacklevel=stacklevel,
            )
            rows = [s[:, [f]] for s in batch.series for f in range(n_data)]
        else:
            rows = list(batch.series)
        check_memory(
            n_rows=len(rows),
            num_samples=num_samples,
            horizon=horizon,
            n_values=len(batch.series) * n_data,
            context_values=sum(r.shape[0] for r in rows) * n_model,
            batch_size=batch_size,
        )
        init_rows = self._initial_x_rows(initial_x, batch, split)
        rng = np.random.default_rng(seed)
        staged = _transform_rows(rows, standardize, fit_nonstationary)
        taus: list[int | None] = [None] * len(rows)
        if periods is not None:
            taus = [p for p in periods for _ in range(n_data)] if split else list(periods)
        elif preprocessing_method == "pos_embedding" and len(rows) > 1 and rows[0].shape[1] < n_model:
            # The embedding periods of many series from batched FFTs (one series keeps the exact 1-D path).
            taus = list(positional_taus([data for data, _ in staged]))
        embedded = [
            _embed_row(data, inverse, x, n_model, preprocessing_method, rng, tau)
            for (data, inverse), x, tau in zip(staged, init_rows, taus, strict=True)
        ]
        obs, gates = self._roll(
            [e for e, _ in embedded],
            np.stack([x0 for _, x0 in embedded]),
            batch.layout == "list",
            horizon,
            num_samples,
            seed,
            noise,
            divergence_guard,
            batch_size,
            progress,
            step_kind,
            max(inverse.n_data for _, inverse in staged),
            stacklevel + 1,
            record_weights,
        )
        paths = self._invert([inverse for _, inverse in staged], obs, batch, split, num_samples, stacklevel + 1)
        weights = None
        if gates is not None:  # rows are sample-major: (K * S, H, J) -> (K, H, S, J)
            weights = gates.reshape(num_samples, len(rows), horizon, -1).transpose(0, 2, 1, 3).astype(np.float64)
        return paths, batch, weights

    def _roll(
        self,
        embedded: list[np.ndarray],
        x0: np.ndarray,
        keep_lengths: bool,
        horizon: int,
        num_samples: int,
        seed: int | None,
        noise: bool,
        guard: float | None,
        batch_size: int | None,
        progress: bool,
        step_kind: str,
        n_obs: int,
        stacklevel: int,
        record_weights: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The rollout of every (sample, series) row: float32 ``(K * R, H, n_obs)``, rows sample-major, and
        with ``record_weights`` the expert weights ``(K * R, H, J)``."""
        lengths = np.array([e.shape[0] for e in embedded])
        n_rows, n_model = len(embedded), self.model.N
        if keep_lengths:
            # A list of series keeps each whole context: shorter ones are left-padded and the padding is
            # masked out of the attention, so each series is forecast exactly as if it were alone.
            t_len = int(lengths.max())
            ctx = np.zeros((n_rows, t_len, n_model), dtype=np.float32)
            for i, e in enumerate(embedded):
                ctx[i, t_len - lengths[i] :] = e
        else:
            # Arrays are cut to the shortest embedded length, as the published pipeline does.
            t_len = int(lengths.min())
            ctx = np.stack([e[-t_len:] for e in embedded]).astype(np.float32, copy=False)
            lengths = np.full(n_rows, t_len)
        device = self.device
        contexts = torch.as_tensor(ctx, device=device)  # (R, T, N), batch-first through every backend
        lengths_t = torch.as_tensor(lengths, dtype=torch.int64, device=device)
        x0_t = torch.as_tensor(x0, dtype=torch.float32, device=device)
        # Each row's divergence scale: its context's largest absolute standardized value (padding is 0).
        scale = contexts.abs().amax(dim=(1, 2)).clamp_min(1.0)
        # Rows are sample-major: row k * R + r is sample k of series r; rows share their series' context.
        rows = n_rows * num_samples
        row_ctx = torch.arange(n_rows, device=device).repeat(num_samples)
        x0_all, scale_all = x0_t.repeat(num_samples, 1), scale.repeat(num_samples)
        # One noise stream per sample index, shared by all series: a series' forecast does not depend
        # on the other series in the batch, on the horizon (prefixes agree) or on batch_size.
        streams = NoiseStreams.fresh(num_samples, seed, rows=torch.arange(num_samples).repeat_interleave(n_rows))
        # With the guard on, a series that reaches the bound is reported too (it was diverging).
        limit = DIVERGENCE_FACTOR if guard is None else min(DIVERGENCE_FACTOR, guard)
        chunk = batch_size or max(1, (1 << 26) // max(1, t_len * n_model))
        obs = np.empty((rows, horizon, n_obs), dtype=np.float32)
        gates = np.empty((rows, horizon, len(self.model.experts)), dtype=np.float32) if record_weights else None
        steps = np.zeros(rows, dtype=np.int64)
        bar = tqdm(total=horizon * rows, disable=not progress, unit="step", unit_scale=True, desc="DynaMix rollout")
        with torch.no_grad():
            for lo in range(0, rows, chunk):
                hi = min(lo + chunk, rows)
                # The compiled kernel computes each row on its own; its initial states are built row by row
                # too, so a series' forecast is the same bits alone, in any batch or chunk.
                z0 = self.model.initial_state(x0_all[lo:hi], batch_invariant=step_kind == "numba").t()
                result = rollout(
                    self.model,
                    contexts,
                    z0,
                    horizon,
                    lengths=lengths_t,
                    rows=row_ctx[lo:hi],
                    noise=noise,
                    streams=streams.subset(lo, hi),
                    backend=step_kind,
                    n_obs=n_obs,
                    bound=None if guard is None else guard * scale_all[lo:hi],
                    threshold=limit * scale_all[lo:hi],
                    on_block=_progress(bar, hi - lo),
                    record_weights=record_weights,
                )
                obs[lo:hi] = result.observations.cpu().numpy()
                if gates is not None and result.expert_weights is not None:
                    gates[lo:hi] = result.expert_weights.cpu().numpy()
                steps[lo:hi] = result.diverged_at.cpu().numpy()
        bar.close()
        if steps.any():
            fix = (
                f"The divergence guard bounded its latent state at {guard:g}x, so the forecast is finite "
                "but saturated from there on."
                if guard is not None
                else "Pass divergence_guard=10.0 to bound the latent state and keep the forecast finite."
            )
            _warn_divergence(
                steps,
                n_rows,
                num_samples,
                f"non-finite or beyond {limit:g}x the context's largest standardized value",
                fix,
                stacklevel,
            )
        return obs, gates

    @staticmethod
    def _invert(
        inverses: list[_Inverse],
        obs: np.ndarray,
        batch: SeriesBatch,
        split: bool,
        num_samples: int,
        stacklevel: int,
    ) -> np.ndarray:
        """Undo each row's preprocessing into one ``(K, H, S, F)`` float64 array."""
        n_series, n_data = len(batch.series), batch.n_channels
        n_rows, horizon = len(inverses), obs.shape[1]
        out = np.empty((num_samples, horizon, n_series, n_data))
        saturated = np.zeros(num_samples * n_rows, dtype=np.int64)
        for r, inverse in enumerate(inverses):
            # Row r is series r, or channel r % F of series r // F when channels are forecast one by one.
            s, cols = (r // n_data, slice(r % n_data, r % n_data + 1)) if split else (r, slice(None))
            # Written in place into the output (no temporaries of the output's size): peak memory is the
            # float32 rollout plus the float64 result.
            f = out[:, :, s, cols]  # (K, H, n) view
            f[...] = obs[r::n_rows, :, : inverse.n_data]
            saturated[r::n_rows] = inverse.apply(f)
        if saturated.any():
            # The rollout's check is in standardized units; the inverse Box-Cox can still run away in data units.
            _warn_divergence(
                saturated,
                n_rows,
                num_samples,
                f"its inverse Box-Cox transform left {BOXCOX_REACH:g}x the context's range and was bounded there",
                "The non-stationary transforms do not suit this series: try fit_nonstationary=False, or a "
                "shorter horizon.",
                stacklevel,
            )
        return out


TS_MIN_HISTORY = 3
_MODES = ("dynamics", "time_series")
_DYNAMICS_DEFAULTS: dict[str, Any] = {
    "preprocessing_method": "pos_embedding",
    "standardize": True,
    "fit_nonstationary": False,
    "initial_x": None,
    "noise": True,
    "divergence_guard": None,
    "batch_size": None,
    "progress": False,
    "backend": "auto",
}


def _check_mode(mode: Any) -> str:
    if mode not in _MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose 'dynamics' (the published pipeline) or 'time_series'.")
    return str(mode)


def _refuse_dynamics_options(**options: Any) -> None:
    """Options of the dynamics mode that the time-series mode would otherwise ignore: refuse them."""
    own = {"preprocessing_method", "standardize", "fit_nonstationary", "initial_x"}
    for name, value in options.items():
        if name in own and value != _DYNAMICS_DEFAULTS[name]:
            raise ValueError(
                f"{name}={value!r} belongs to mode='dynamics'; the time-series mode chooses its own "
                "preprocessing. Drop it, or use mode='dynamics'."
            )
        if name not in _DYNAMICS_DEFAULTS:
            raise TypeError(f"Unknown forecast option {name!r}.")


def _levels(quantile_levels: Any) -> np.ndarray:
    levels = np.atleast_1d(np.asarray(quantile_levels, dtype=np.float64))
    if levels.ndim != 1 or levels.size == 0 or np.any(~((levels > 0) & (levels < 1))):
        raise ValueError(
            f"quantile_levels must be one or more levels strictly between 0 and 1, got {np.ravel(levels).tolist()}."
        )
    return levels


def _rows_to_hsf(rows: np.ndarray, batch: SeriesBatch) -> np.ndarray:
    """``(..., S * F, H)`` series-major rows as ``(..., H, S, F)``."""
    n_series, n_data = len(batch.series), batch.n_channels
    out = rows.reshape(*rows.shape[:-2], n_series, n_data, rows.shape[-1])
    return np.moveaxis(out, -1, -3)


def _shaped(out: np.ndarray, batch: SeriesBatch) -> np.ndarray | torch.Tensor:
    """Drop the trailing ``(H, S, F)`` axes the input did not have; a tensor for tensor input."""
    if batch.layout in ("1d", "2d"):
        out = out[..., 0, :]
        if batch.layout == "1d":
            out = out[..., 0]
    if batch.as_torch:
        return torch.as_tensor(out, dtype=torch.float32, device=batch.device)
    return out


def _season_lengths(season_length: Any, n_series: int, method: str) -> list[int] | None:
    """One validated embedding period per series, or None to guess them (the published behaviour)."""
    if season_length is None:
        return None
    if method != "pos_embedding":
        raise ValueError(
            f"season_length sets the period of preprocessing_method='pos_embedding', not {method!r}; "
            "drop season_length or use pos_embedding."
        )
    values = np.atleast_1d(np.asarray(season_length, dtype=object))
    if values.ndim != 1 or values.size not in (1, n_series):
        raise ValueError(
            f"season_length must be one int or one per series ({n_series}), got {np.shape(season_length)}."
        )
    periods = [positive_int("season_length", v) for v in values]
    return periods * n_series if len(periods) == 1 else periods


def _progress(bar: Any, rows: int) -> Callable[[int], None]:
    """Progress-bar callback of one chunk of ``rows`` rows: ``steps`` done for each of them."""

    def update(steps: int) -> None:
        bar.update(steps * rows)

    return update


def _warn_divergence(steps: np.ndarray, n_rows: int, num_samples: int, what: str, fix: str, stacklevel: int) -> None:
    """One :class:`DivergenceWarning` naming the first few (series, sample, step) that diverged."""
    bad = np.nonzero(steps)[0]
    described = ", ".join(
        f"series {r % n_rows}" + (f" sample {r // n_rows}" if num_samples > 1 else "") + f" at step {steps[r]}"
        for r in bad[:5]
    )
    more = f" and {bad.size - 5} more" if bad.size > 5 else ""
    warnings.warn(
        f"DynaMix forecast diverged ({what}) for {described}{more}. {fix}", DivergenceWarning, stacklevel=stacklevel + 1
    )
