"""Output layout: one documented axis order for every result, and quantiles of sample paths.

Every forecasting method works on ``(..., H, S, F)`` float64 arrays (horizon, series, channels) and drops,
at the end, the axes its input did not have: ``(H, F)`` for one series, ``(H,)`` for a 1-D series.
Sample paths lead (``(K, ...)``), quantiles trail (``(..., Q)``), as in chronos-forecasting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .inputs import SeriesBatch
from .options import DEFAULT_LEVELS, check_levels


def rows_to_hsf(rows: np.ndarray, batch: SeriesBatch) -> np.ndarray:
    """``(..., S * F, H)`` series-major rows as ``(..., H, S, F)``."""
    n_series, n_data = len(batch.series), batch.n_channels
    out = rows.reshape(*rows.shape[:-2], n_series, n_data, rows.shape[-1])
    return np.moveaxis(out, -1, -3)


def shaped(out: np.ndarray, batch: SeriesBatch, trailing: int = 0) -> np.ndarray | torch.Tensor:
    """Drop the ``(H, S, F)`` axes the input did not have (they sit before ``trailing`` further axes); a tensor
    on the input's device for tensor input."""
    if batch.layout in ("1d", "2d"):
        out = np.take(out, 0, axis=out.ndim - 2 - trailing)  # the series axis
        if batch.layout == "1d":
            out = np.take(out, 0, axis=out.ndim - 1 - trailing)  # the channel axis
    if batch.as_torch:
        return torch.as_tensor(np.ascontiguousarray(out), dtype=torch.float32, device=batch.device)
    return out


def quantiles(samples: np.ndarray | torch.Tensor, q: Any = DEFAULT_LEVELS, axis: int = 0) -> Any:
    """Quantile forecasts from sample paths.

    Parameters
    ----------
    samples : numpy.ndarray or torch.Tensor
        Sample forecasts with the samples along ``axis`` (``forecast(..., num_samples=K)`` puts them first).
    q : float or sequence of float
        Quantile levels, strictly between 0 and 1.
    axis : int, default 0
        The samples axis.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The quantiles on a new trailing axis (the package's one quantile axis: ``(..., Q)``), dropped for a
        scalar ``q``. A tensor (same dtype and device) for tensor input.

    Examples
    --------
    >>> import numpy as np
    >>> quantiles(np.arange(101.0)[:, None], [0.1, 0.9]).tolist()
    [[10.0, 90.0]]
    """
    levels = np.asarray(check_levels(q))
    if isinstance(samples, torch.Tensor):
        if samples.device.type == "meta":
            raise ValueError("samples is a tensor on the meta device (it holds no values); pass real values.")
        ndim = samples.ndim
    else:
        samples = np.asarray(samples)
        if not np.issubdtype(samples.dtype, np.number) or np.issubdtype(samples.dtype, np.complexfloating):
            raise TypeError(f"samples must be real numbers, got dtype {samples.dtype}.")
        ndim = samples.ndim
    if ndim == 0:
        raise ValueError("samples is a scalar; pass sample paths with a samples axis.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of range for samples with {ndim} dimension(s).")
    if isinstance(samples, torch.Tensor):
        work = samples if samples.dtype in (torch.float32, torch.float64) else samples.to(torch.float64)
        out_t = torch.quantile(work, torch.as_tensor(levels, dtype=work.dtype, device=work.device), dim=axis)
        out_t = torch.movedim(out_t, 0, -1).to(samples.dtype if samples.is_floating_point() else work.dtype)
        return out_t[..., 0] if np.ndim(q) == 0 else out_t
    values = np.asarray(samples, dtype=np.float64)
    out = np.moveaxis(np.quantile(values, levels, axis=axis), 0, -1)
    return out[..., 0] if np.ndim(q) == 0 else out
