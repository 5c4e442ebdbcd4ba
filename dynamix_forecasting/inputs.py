"""Turn user inputs (numpy, torch, pandas, lists of series) into validated float64 arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


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


def _to_numpy(obj: Any, what: str) -> np.ndarray:
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    elif hasattr(obj, "to_numpy") and hasattr(obj, "index"):  # pandas Series / DataFrame
        obj = obj.to_numpy()
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
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
            _check_finite(arr, f"context[{i}]")
            series.append(arr)
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
