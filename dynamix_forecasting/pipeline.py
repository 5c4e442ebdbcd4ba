"""DynaMixPipeline: zero-shot forecasts from raw context series with a DynaMix model.

The pipeline is thin: it parses the context and the :class:`~dynamix_forecasting.options.ForecastOptions`
once (:class:`~dynamix_forecasting.base.BasePipeline`), sends them to the mode that applies
(:mod:`~dynamix_forecasting.dynamics_mode` or :mod:`~dynamix_forecasting.timeseries_mode`) and shapes the
result (:mod:`~dynamix_forecasting.output`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .base import BasePipeline
from .checkpoint import DEFAULT_MODEL, load_model
from .dynamics_mode import dynamics_min_context, dynamics_paths
from .inputs import SeriesBatch
from .model import DynaMix
from .options import DEFAULT_QUANTILE_SAMPLES, ForecastOptions, check_bool
from .output import rows_to_hsf, shaped
from .timeseries_mode import TS_MIN_HISTORY, row_seasons, time_series_forecast


class DynaMixPipeline(BasePipeline):
    """Forecast dynamical systems and time series zero-shot with a DynaMix model.

    Every method takes the context, the horizon and the options: a
    :class:`~dynamix_forecasting.options.ForecastOptions` and/or its fields as keywords. The default
    ``mode="auto"`` forecasts a univariate context with the time-series mode and a multivariate one with
    the published dynamics pipeline (see :meth:`ForecastOptions.resolve
    <dynamix_forecasting.options.ForecastOptions.resolve>`).

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
    >>> pipeline.forecast(np.stack([np.sin(t), np.cos(t)], axis=1), horizon=5).shape
    (5, 2)
    """

    def __init__(self, model: DynaMix) -> None:
        if not isinstance(model, DynaMix):
            raise TypeError(f"DynaMixPipeline needs a DynaMix model, got {type(model).__name__}.")
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, **kwargs: Any) -> DynaMixPipeline:
        """Load a model with :func:`~dynamix_forecasting.load_model` and wrap it."""
        return cls(load_model(name_or_path, **kwargs))

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return self.model.B.device

    def min_context_length(self, n_channels: int, options: ForecastOptions | None = None, **fields: Any) -> int:
        """Shortest context of ``n_channels`` channels that the forecasts accept with these options.

        The one home of this rule: the adapters ask here.
        """
        opts = ForecastOptions.of(options, **fields).resolve(n_channels)
        if opts.mode == "time_series":
            return TS_MIN_HISTORY
        return dynamics_min_context(self.model, n_channels, opts.embedding)

    def season_lengths(self, context: Any, options: ForecastOptions | None = None, **fields: Any) -> list[int]:
        """The season the time-series mode uses for each (series, channel) row, series-major: ``season_length``
        where given, else estimated from the history (1: none found).

        Examples
        --------
        >>> import numpy as np
        >>> from dynamix_forecasting import DynaMix, DynaMixConfig, DynaMixPipeline
        >>> pipeline = DynaMixPipeline(DynaMix(DynaMixConfig(M=8, N=3, Experts=2, P=1)))
        >>> pipeline.season_lengths(np.sin(2 * np.pi * np.arange(300) / 20))
        [20]
        """
        batch, _, opts = self._parse(context, 1, options, fields)
        rows = [s[:, f] for s in batch.series for f in range(batch.n_channels)]
        return row_seasons(rows, batch.n_channels, opts.season_length)

    def forecast(
        self, context: Any, horizon: int, options: ForecastOptions | None = None, **fields: Any
    ) -> np.ndarray | torch.Tensor:
        """Forecast ``horizon`` steps ahead of each context series.

        Parameters
        ----------
        context : array-like
            ``(T,)``, ``(T, F)`` or ``(T, S, F)`` numpy array, torch tensor or pandas object, or a
            list of ``(T_i, F)`` series of unequal lengths (each then keeps its whole context).
        horizon : int
            Number of steps to forecast.
        options : ForecastOptions, optional
            The options (default ``ForecastOptions()``: ``mode="auto"``, ``seed=0``).
        **fields
            Options by name, e.g. ``mode="dynamics"``, ``num_samples=100``, ``noise=False``
            (see :class:`~dynamix_forecasting.options.ForecastOptions`).

        Returns
        -------
        numpy.ndarray or torch.Tensor
            The point forecast ``(H, F)`` for a single series, ``(H, S, F)`` for several (``(H,)`` for 1-D
            input); with ``num_samples > 1`` that many sample paths on a leading axis. A tensor for tensor input.

        Warns
        -----
        DivergenceWarning
            If a dynamics-mode forecast becomes non-finite or leaves ten times its context's range.
        UserWarning
            If ``F > N`` and channels are forecast one by one.
        """
        batch, horizon, opts = self._parse(context, horizon, options, fields)
        paths = self._paths(batch, horizon, opts)
        return shaped(paths if opts.paths() > 1 else paths[0], batch)

    def sample_paths(
        self, context: Any, horizon: int, options: ForecastOptions | None = None, **fields: Any
    ) -> np.ndarray:
        """Sample paths of every series as one float64 array ``(samples, horizon, series, channels)``.

        The call behind :meth:`forecast` (which drops the axes the input did not have) and the adapters.
        Dynamics mode: DynaMix sample paths (independent gating-noise draws). Time-series mode: draws from
        the calibrated distribution around the point forecast.
        """
        batch, horizon, opts = self._parse(context, horizon, options, fields)
        return self._paths(batch, horizon, opts)

    def expert_weights(
        self,
        context: Any,
        horizon: int,
        options: ForecastOptions | None = None,
        *,
        return_forecast: bool = False,
        **fields: Any,
    ) -> np.ndarray | tuple[np.ndarray | torch.Tensor, np.ndarray]:
        """The gating network's expert weights at every step of a dynamics-mode forecast.

        The weights come from the same rollout as the forecast (same options, same seed: the forecast of
        :meth:`forecast` with these options in the dynamics mode), on every backend. ``mode="auto"`` means
        the dynamics mode here (the time-series mode mixes many forecasts).

        Parameters
        ----------
        context, horizon, options, **fields
            As in :meth:`forecast`; with ``num_samples > 1`` each sample path has its own weights.
        return_forecast : bool, default False
            Also return the forecast of the same rollout (as :meth:`forecast` returns it).

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
        opts = ForecastOptions.of(options, **fields)
        if opts.mode == "time_series":
            raise ValueError(
                "Expert weights belong to one DynaMix rollout (mode='dynamics'); the time-series mode mixes "
                "many. Use mode='dynamics' or 'auto'."
            )
        batch, horizon, opts = self._parse(context, horizon, opts.replace(mode="dynamics"), {})
        result = dynamics_paths(self.model, batch, horizon, opts, stacklevel=3, record_weights=True)
        assert result.weights is not None  # recorded above
        k = opts.paths()
        out = result.weights if k > 1 else result.weights[0]
        if batch.layout in ("1d", "2d"):
            out = out[..., 0, :]
        if not return_forecast:
            return out
        return shaped(result.paths if k > 1 else result.paths[0], batch), out

    # ------------------------------------------------------------------ the two modes

    def _paths(self, batch: SeriesBatch, horizon: int, opts: ForecastOptions) -> np.ndarray:
        """``(K, H, S, F)`` paths of the resolved mode: DynaMix sample paths or calibrated draws."""
        if opts.mode == "time_series":
            fc = time_series_forecast(self.model, batch, horizon, opts)
            k = opts.paths()
            draws = fc.point[None] if k == 1 else fc.sample(k, opts.seed)
            return rows_to_hsf(draws, batch)
        return dynamics_paths(self.model, batch, horizon, opts, stacklevel=4).paths

    def _quantile_arrays(
        self, batch: SeriesBatch, horizon: int, levels: tuple[float, ...], options: ForecastOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        if options.mode == "time_series":
            fc = time_series_forecast(self.model, batch, horizon, options)
            q = np.moveaxis(rows_to_hsf(fc.quantiles(levels), batch), 0, -1)
            return q, rows_to_hsf(fc.point, batch)
        opts = options.replace(num_samples=options.paths(DEFAULT_QUANTILE_SAMPLES))
        paths = dynamics_paths(self.model, batch, horizon, opts, stacklevel=4).paths
        return np.moveaxis(np.quantile(paths, levels, axis=0), 0, -1), np.median(paths, axis=0)
