"""Long-format forecasts (one row per series and time stamp) on pandas, and the model as a portable payload.

:func:`forecast_frame` is the one function every engine runs on its pandas pieces: it forecasts all the
series of one frame in a single batched engine call. :class:`ModelPayload` carries the weights as bytes
(workers never touch the hub or the file system) and builds the model once per worker process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .config import DynaMixConfig
from .model import DynaMix
from .options import DEFAULT_LEVELS, ForecastOptions


class QuantilePipeline(Protocol):
    """What the long-format front end needs of a pipeline: its model and ``predict_quantiles``."""

    model: DynaMix

    def predict_quantiles(self, context: Any, horizon: int, quantile_levels: Any, options: Any = None) -> Any: ...


_WORKER_PIPELINES: dict[str, QuantilePipeline] = {}


@dataclass(frozen=True)
class ModelPayload:
    """A model's architecture and weights as plain bytes, small enough to ship with every task (44 KB for
    the released model), and the pipeline class that wraps it (pickled by reference: workers import it)."""

    config: dict[str, Any]
    weights: bytes
    pipeline_class: type
    digest: str = field(default="")

    @classmethod
    def from_pipeline(cls, pipeline: QuantilePipeline) -> ModelPayload:
        """The payload of a pipeline's model."""
        from safetensors.torch import save

        model = pipeline.model
        weights = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
        return cls(model.config.to_dict(), weights, type(pipeline), hashlib.sha256(weights).hexdigest())

    def pipeline(self) -> QuantilePipeline:
        """The model as a pipeline, built once per process and kept."""
        from safetensors.torch import load

        if self.digest not in _WORKER_PIPELINES:
            model = DynaMix(DynaMixConfig.from_dict(self.config))
            model.load_state_dict(load(self.weights), strict=True)
            _WORKER_PIPELINES[self.digest] = self.pipeline_class(model.eval())
        return _WORKER_PIPELINES[self.digest]


@dataclass(frozen=True)
class FrameSpec:
    """What to forecast: the column names, the horizon, the levels and the forecast options."""

    horizon: int
    id_column: str = "unique_id"
    timestamp_column: str = "ds"
    target: str = "y"
    quantile_levels: tuple[float, ...] = DEFAULT_LEVELS
    options: ForecastOptions = field(default_factory=ForecastOptions)

    @property
    def level_columns(self) -> list[str]:
        return [f"{q:g}" for q in self.quantile_levels]

    def output_columns(self) -> list[str]:
        return [self.id_column, self.timestamp_column, "predictions", *self.level_columns]

    def check_columns(self, columns: Sequence[str]) -> None:
        missing = [c for c in (self.id_column, self.timestamp_column, self.target) if c not in columns]
        if missing:
            raise ValueError(
                f"The frame has no column(s) {missing} (columns: {list(columns)}). Name them with id_column=, "
                "timestamp_column= and target=."
            )


def _steps(stamps: np.ndarray, starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each series' step between time stamps (int64), checked to be regular and increasing."""
    n = stamps.shape[0]
    lengths = np.diff(np.r_[starts, n])
    short = lengths < 2
    first = np.where(short, 1, stamps[np.minimum(starts + 1, n - 1)] - stamps[starts])
    diffs = np.diff(stamps)
    inside = np.ones(n, dtype=bool)
    inside[starts] = False  # diffs[i - 1] crosses into a new series where i is a start
    expected = np.repeat(first, lengths)[1:]
    bad = inside[1:] & (diffs != expected)
    duplicated = inside[1:] & (diffs == 0)
    if duplicated.any():
        series = ids[np.searchsorted(starts, np.flatnonzero(duplicated)[0] + 1, side="right") - 1]
        raise ValueError(f"Series {series!r} has duplicated time stamps; aggregate or drop them first.")
    if bad.any() or np.any(first <= 0):
        where = np.flatnonzero(bad)[0] + 1 if bad.any() else starts[np.argmax(first <= 0)]
        series = ids[np.searchsorted(starts, where, side="right") - 1]
        raise ValueError(f"Series {series!r} has uneven time steps; resample it to a regular grid first.")
    return first


def _futures(stamps: pd.Series, starts: np.ndarray, ids: np.ndarray, horizon: int) -> np.ndarray:
    """The next ``horizon`` time stamps of every series (``S * horizon``), continuing each one's frequency."""
    n = len(stamps)
    last = np.r_[starts[1:], n] - 1
    ahead = np.arange(1, horizon + 1)
    if pd.api.types.is_integer_dtype(stamps.dtype):
        values = stamps.to_numpy(dtype=np.int64)
        step = _steps(values, starts, ids)
        return (values[last][:, None] + step[:, None] * ahead[None]).reshape(-1)
    if not pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        raise TypeError(f"The time stamps must be datetimes or integers, got {stamps.dtype}.")
    index = pd.DatetimeIndex(stamps)
    nanos = index.asi8
    try:  # a fixed step (hourly, daily, ...) continues by arithmetic
        step = _steps(nanos, starts, ids)
        return (nanos[last][:, None] + step[:, None] * ahead[None]).reshape(-1).astype("datetime64[ns]")
    except ValueError as exc:
        if "duplicated" in str(exc):
            raise
    out = []  # calendar frequencies (monthly, quarterly, ...) are inferred series by series
    for k, (a, b) in enumerate(zip(starts, np.r_[starts[1:], n], strict=True)):
        freq = pd.infer_freq(index[a:b]) if b - a >= 3 else None
        if freq is None:
            raise ValueError(
                f"Series {ids[k]!r} has irregular or too few time stamps to continue them (need at least 3 "
                "equally spaced ones); resample it to a regular grid first."
            )
        out.append(pd.date_range(index[b - 1], periods=horizon + 1, freq=freq)[1:].to_numpy())
    return np.concatenate(out)


def forecast_frame(frame: pd.DataFrame, spec: FrameSpec, pipeline: QuantilePipeline) -> pd.DataFrame:
    """Forecast every series of a long-format pandas frame in one batched engine call.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of whole series: ``spec.id_column``, ``spec.timestamp_column``, ``spec.target``.
    spec : FrameSpec
        Columns, horizon, levels and options.
    pipeline : QuantilePipeline
        The model's pipeline.

    Returns
    -------
    pandas.DataFrame
        ``horizon`` rows per series: the id, the continued time stamps, ``predictions`` and one
        column per quantile level.
    """
    spec.check_columns(list(frame.columns))
    if frame.empty:
        return _empty_output(frame, spec)
    ordered = (
        frame
        if _already_ordered(frame[spec.id_column], frame[spec.timestamp_column])
        else frame.sort_values([spec.id_column, spec.timestamp_column], kind="stable")
    )
    id_values = ordered[spec.id_column].to_numpy()
    codes = pd.factorize(id_values)[0]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ids = id_values[starts]
    values = pd.to_numeric(ordered[spec.target], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = ids[np.searchsorted(starts, np.flatnonzero(~np.isfinite(values))[0], side="right") - 1]
        raise ValueError(f"Series {bad!r} has missing, non-numeric or infinite target values; fill or drop them first.")
    h = spec.horizon
    futures = _futures(ordered[spec.timestamp_column], starts, ids, h)
    lengths = np.diff(np.r_[starts, values.shape[0]])
    # Equal lengths go in as one (T, S, 1) array (the same numbers as a list, without per-series padding).
    contexts: Any = (
        values.reshape(len(starts), -1).T[:, :, None]
        if np.all(lengths == lengths[0])
        else [v[:, None] for v in np.split(values, starts[1:])]
    )
    quantiles, point = pipeline.predict_quantiles(contexts, h, list(spec.quantile_levels), spec.options)
    out = pd.DataFrame(
        {
            spec.id_column: np.repeat(ids, h),
            spec.timestamp_column: futures,
            "predictions": np.asarray(point)[:, :, 0].T.reshape(-1),  # (H, S, 1) -> series-major rows
        }
    )
    q = np.asarray(quantiles)[:, :, 0, :]  # (H, S, 1, Q) -> (H, S, Q)
    for k, name in enumerate(spec.level_columns):
        out[name] = q[:, :, k].T.reshape(-1)
    out[spec.id_column] = out[spec.id_column].astype(frame[spec.id_column].dtype)
    out[spec.timestamp_column] = out[spec.timestamp_column].astype(frame[spec.timestamp_column].dtype)
    return out


def _already_ordered(ids: pd.Series, stamps: pd.Series) -> bool:
    """Whether rows are sorted by id, then time stamp (one pass; sorting 50 M rows costs seconds)."""
    if not ids.is_monotonic_increasing:
        return False
    same = ids.to_numpy()[1:] == ids.to_numpy()[:-1]
    t = stamps.to_numpy()
    try:
        return bool(np.all((t[1:] > t[:-1]) | ~same))
    except TypeError:  # time stamps that do not compare: let the sort and the checks report them
        return False


def _empty_output(frame: pd.DataFrame, spec: FrameSpec) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            spec.id_column: pd.Series([], dtype=frame[spec.id_column].dtype),
            spec.timestamp_column: pd.Series([], dtype=frame[spec.timestamp_column].dtype),
            "predictions": pd.Series([], dtype="float64"),
        }
    )
    for name in spec.level_columns:
        out[name] = pd.Series([], dtype="float64")
    return out


def output_meta(frame_dtypes: dict[str, Any], spec: FrameSpec) -> pd.DataFrame:
    """An empty frame with the output's columns and dtypes (for lazy engines' schemas)."""
    template = pd.DataFrame(
        {
            spec.id_column: pd.Series([], dtype=frame_dtypes[spec.id_column]),
            spec.timestamp_column: pd.Series([], dtype=frame_dtypes[spec.timestamp_column]),
        }
    )
    return _empty_output(template, spec)
