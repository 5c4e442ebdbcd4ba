"""Turn user inputs (numpy, torch, pandas, lists of series) into validated float64 arrays."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

#: Largest magnitude a context may hold: the model and tensor outputs are float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class SeriesBatch:
    """Context series as a list of ``(T_i, F)`` float64 arrays and how to shape the output.

    Attributes
    ----------
    series : list of numpy.ndarray
        One ``(T_i, F)`` array per series.
    layout : str
        ``"1d"`` (one series, one channel), ``"2d"`` (one series ``(T, F)``), ``"3d"`` (an array
        ``(T, S, F)``) or ``"list"`` (a list of series, possibly of unequal length).
    as_torch : bool
        Whether the input was a torch tensor (the output is then a tensor too).
    device : torch.device or None
        Device of a torch input.
    """

    series: list[np.ndarray]
    layout: str
    as_torch: bool = False
    device: torch.device | None = None

    @property
    def n_channels(self) -> int:
        """Number of data channels ``F`` shared by all series."""
        return self.series[0].shape[1]

    def tail(self, length: int) -> SeriesBatch:
        """The same batch with only the most recent ``length`` points of each series."""
        return SeriesBatch([s[-length:] for s in self.series], self.layout, self.as_torch, self.device)


def _check_time_index(index: pd.Index, what: str) -> None:
    """Refuse a time index that is not strictly increasing; warn when its steps are uneven.

    DynaMix reads the rows in order as equally spaced steps, so a shuffled, newest-first or duplicated
    index would silently forecast the wrong thing.
    """
    import pandas as pd

    if isinstance(index, pd.MultiIndex) or (
        index.dtype == object and len(index) and isinstance(index[0], pd.Timestamp)
    ):
        tz = {getattr(t, "tz", None) for t in index if isinstance(t, pd.Timestamp)}
        if len(tz) > 1:
            raise ValueError(
                f"{what} has time stamps in several time zones ({sorted(map(str, tz))}); convert them to one, "
                "e.g. pd.to_datetime(index, utc=True)."
            )
        if isinstance(index, pd.MultiIndex):
            return  # panels in long format are split by the adapters; each part is checked there
    if isinstance(index, pd.RangeIndex):
        if index.step < 0:
            raise ValueError(f"{what} has a decreasing index; sort it first (.sort_index()).")
        return
    if not (
        isinstance(index, pd.DatetimeIndex | pd.PeriodIndex | pd.TimedeltaIndex) or pd.api.types.is_numeric_dtype(index)
    ):
        return  # labels without an order (strings): the row order is the time order
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise ValueError(
            f"{what} has duplicated time stamps (first: {first}); DynaMix needs one row per time step. "
            "Aggregate them first, e.g. .groupby(level=0).mean()."
        )
    if not index.is_monotonic_increasing:
        raise ValueError(
            f"{what} is not sorted by time (oldest first); DynaMix reads the rows in order. Sort it with .sort_index()."
        )
    if len(index) >= 3 and not isinstance(index, pd.PeriodIndex):
        steps = pd.Series(index[1:] - index[:-1])
        if steps.min() != steps.max() and (not isinstance(index, pd.DatetimeIndex) or pd.infer_freq(index) is None):
            warnings.warn(
                f"{what} has unevenly spaced time stamps (steps from {steps.min()} to {steps.max()}); DynaMix "
                "treats the rows as equally spaced. Resample to a regular grid first "
                "(e.g. .resample(...).mean().interpolate()).",
                UserWarning,
                stacklevel=4,
            )


def _to_numpy(obj: Any, what: str) -> np.ndarray:
    if isinstance(obj, torch.Tensor):
        if obj.is_meta:
            raise ValueError(f"{what} is a tensor on the meta device (it holds no values); pass real values.")
        obj = obj.detach().cpu().numpy()
    elif (pd := sys.modules.get("pandas")) is not None and isinstance(obj, pd.Series | pd.DataFrame):
        # pandas is only imported by whoever made a pandas object: no import cost for everyone else.
        _check_time_index(obj.index, what)
        obj = obj.to_numpy()
    elif hasattr(obj, "to_numpy") and hasattr(obj, "index"):  # other frame-like objects
        obj = obj.to_numpy()
    if (isinstance(obj, np.ndarray) and obj.dtype.kind == "c") or isinstance(obj, complex):
        raise TypeError(f"{what} is complex; DynaMix forecasts real-valued series (pass .real or abs()).")
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(
            f"{what} must be numeric (numpy array, torch tensor, pandas Series/DataFrame or a list of them); "
            f"could not convert a {type(obj).__name__}: {exc}"
        ) from exc
    return arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN/inf value(s) (first at index {tuple(int(i) for i in idx)}). "
            "DynaMix needs a complete context: fill the gaps (e.g. pandas .interpolate() or .ffill()) "
            "or drop them before forecasting."
        )
    big = np.abs(arr) > FLOAT32_MAX
    if big.any():
        idx = np.argwhere(big)[0]
        raise ValueError(
            f"{what} holds values beyond the float32 range (|x| > {FLOAT32_MAX:.3g}, first at index "
            f"{tuple(int(i) for i in idx)}); DynaMix computes in float32. Rescale the series first "
            "(e.g. divide by a power of ten) and scale the forecast back."
        )


def as_series_batch(context: Any) -> SeriesBatch:
    """Validate a context and convert it to a :class:`SeriesBatch`.

    Accepts ``(T,)``, ``(T, F)`` and ``(T, S, F)`` arrays/tensors/DataFrames, or a list/tuple of
    ``(T_i,)``/``(T_i, F)`` series of possibly unequal lengths ``T_i``.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For wrong ranks, empty input, channel-count mismatches or NaN/inf values.
    """
    as_torch = isinstance(context, torch.Tensor)
    device = context.device if as_torch else None
    if isinstance(context, list | tuple):
        if not context:
            raise ValueError("The context list is empty: pass at least one series.")
        series = []
        for i, item in enumerate(context):
            arr = _to_numpy(item, f"context[{i}]")
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise ValueError(
                    f"context[{i}] has shape {arr.shape}; each series in a list must be (T,) or (T, channels)."
                )
            series.append(arr)
        # One pass over all values; only a failing batch is searched series by series for the message.
        flat = np.concatenate([s.ravel() for s in series])
        if not (np.isfinite(flat).all() and (flat.size == 0 or np.abs(flat).max() <= FLOAT32_MAX)):
            for i, arr in enumerate(series):
                _check_finite(arr, f"context[{i}]")
        widths = {s.shape[1] for s in series}
        if len(widths) > 1:
            raise ValueError(f"All series in the list must have the same number of channels, got {sorted(widths)}.")
        as_torch = all(isinstance(item, torch.Tensor) for item in context)
        device = context[0].device if as_torch else None
        return SeriesBatch(series, "list", as_torch, device)
    arr = _to_numpy(context, "context")
    if arr.ndim == 1:
        layout, series = "1d", [arr[:, None]]
    elif arr.ndim == 2:
        layout, series = "2d", [arr]
    elif arr.ndim == 3:
        layout, series = "3d", [arr[:, s, :] for s in range(arr.shape[1])]
    else:
        raise ValueError(
            f"context has shape {arr.shape} (rank {arr.ndim}); expected (T,), (T, channels) or "
            "(T, series, channels), or a list of (T_i, channels) series."
        )
    if arr.size == 0:
        raise ValueError(f"context has shape {arr.shape}: it holds no values.")
    _check_finite(arr, "context")
    return SeriesBatch(series, layout, as_torch, device)
