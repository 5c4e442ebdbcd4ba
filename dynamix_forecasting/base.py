"""BasePipeline: the high-level forecasting contract, written once for every model family.

A model family (:class:`~dynamix_forecasting.DynaMixPipeline`) implements :meth:`BasePipeline._quantile_arrays`
on parsed inputs; this class turns user input into one :class:`~dynamix_forecasting.options.ForecastOptions`
and one :class:`~dynamix_forecasting.inputs.SeriesBatch`, and gives every family the same
:meth:`predict_quantiles` and :meth:`predict_df` (pandas, PySpark, Dask and Ray Data), as
chronos-forecasting's ``BaseChronosPipeline`` does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from .inputs import SeriesBatch, as_series_batch
from .long_format import FrameSpec
from .model import DynaMix
from .options import DEFAULT_LEVELS, ForecastOptions, check_bool, check_levels, positive_int
from .output import shaped
from .scale_out import predict_df


class BasePipeline(ABC):
    """What every pipeline offers on top of its model family's forecasts."""

    model: DynaMix

    @abstractmethod
    def _quantile_arrays(
        self, batch: SeriesBatch, horizon: int, levels: tuple[float, ...], options: ForecastOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(H, S, F, Q)`` quantiles and ``(H, S, F)`` point forecasts of ``batch`` (options resolved)."""

    def _parse(
        self, context: Any, horizon: Any, options: ForecastOptions | None, fields: dict[str, Any]
    ) -> tuple[SeriesBatch, int, ForecastOptions]:
        """The one entry of every method: horizon, options (resolved for this context) and the context."""
        horizon = positive_int("horizon", horizon)
        opts = ForecastOptions.of(options, **fields)
        batch = as_series_batch(context)
        if opts.context_length is not None:
            batch = batch.tail(opts.context_length)
        return batch, horizon, opts.resolve(batch.n_channels)

    def predict_quantiles(
        self,
        context: Any,
        horizon: int,
        quantile_levels: Any = DEFAULT_LEVELS,
        options: ForecastOptions | None = None,
        **fields: Any,
    ) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
        """Quantile and point forecasts.

        Parameters
        ----------
        context : array-like
            As in :meth:`~dynamix_forecasting.DynaMixPipeline.forecast`.
        horizon : int
            Steps ahead.
        quantile_levels : sequence of float
            Levels strictly between 0 and 1.
        options : ForecastOptions, optional
            The options (default ``ForecastOptions()``); ``**fields`` change single ones.
        **fields
            Options by name (see :class:`~dynamix_forecasting.options.ForecastOptions`).

        Returns
        -------
        quantiles : numpy.ndarray or torch.Tensor
            ``(*shape, Q)``: the quantiles on a trailing axis, with ``shape`` the point forecast's shape.
        point : numpy.ndarray or torch.Tensor
            ``(H, F)`` for one series, ``(H, S, F)`` for several (``(H,)`` for 1-D input): the time-series mode's
            point forecast, or the median of the dynamics mode's ``num_samples`` (default 100) paths.
        """
        levels = check_levels(quantile_levels)
        batch, horizon, opts = self._parse(context, horizon, options, fields)
        q, point = self._quantile_arrays(batch, horizon, levels, opts)
        return shaped(q, batch, trailing=1), shaped(point, batch)

    def predict_df(
        self,
        df: Any,
        horizon: int,
        *,
        id_column: str = "unique_id",
        timestamp_column: str = "ds",
        target: str = "y",
        quantile_levels: Any = DEFAULT_LEVELS,
        num_partitions: int | None = None,
        whole_series_partitions: bool = False,
        options: ForecastOptions | None = None,
        **fields: Any,
    ) -> Any:
        """Forecast every series of a long-format frame (pandas, PySpark, Dask or Ray Data) on its own engine.

        Parameters
        ----------
        df : pandas.DataFrame, pyspark.sql.DataFrame, dask.dataframe.DataFrame or ray.data.Dataset
            One row per series and time stamp.
        horizon : int
            Steps ahead (chronos-forecasting calls it ``prediction_length``).
        id_column, timestamp_column, target : str
            Column names of the series id, the time stamps (datetimes or integers, regular per series) and
            the values.
        quantile_levels : sequence of float
            Levels of the quantile columns.
        num_partitions : int, optional
            Partitions of whole series on a distributed engine (default: Spark's shuffle partitions,
            Dask's partitions, Ray's CPUs).
        whole_series_partitions : bool, default False
            Declare that every series already lies in one partition of ``df`` (a table written sorted or
            partitioned by id and read back by row groups): Spark and Dask then skip the shuffle by id.
            Wrong when a series spans partitions (it would be forecast once per piece).
        options : ForecastOptions, optional
            The options; ``**fields`` change single ones. ``mode="auto"`` forecasts each univariate series
            with the time-series mode.

        Returns
        -------
        The same kind of frame: the id, the continued time stamps, ``predictions`` and one column per
        level named by the level (``"0.1"``, ...), ``horizon`` rows per series. Distributed engines return it
        lazily (computed when collected).
        """
        opts = ForecastOptions.of(options, **fields)
        spec = FrameSpec(
            positive_int("horizon", horizon),
            id_column,
            timestamp_column,
            target,
            check_levels(quantile_levels),
            opts,
        )
        return predict_df(
            self, df, spec, num_partitions, check_bool("whole_series_partitions", whole_series_partitions)
        )
