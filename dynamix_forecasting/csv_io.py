"""Reading channels from a CSV file: numeric columns, a time column, rows sorted oldest first.

Shared by the command line (``dynamix forecast`` and ``dynamix explain``) and the app.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def read_csv_channels(path: Path, time_column: str | None) -> tuple[pd.DataFrame, pd.Index | None]:
    """The numeric columns of a CSV (channels) and its time index, checked and sorted oldest first; used by the
    ``forecast`` and ``explain`` commands and the app. Bad files raise ValueError naming the problem."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    times = None
    if time_column is not None:
        if time_column not in frame.columns:
            raise ValueError(f"--time-column {time_column!r} is not a column of {path} ({list(frame.columns)}).")
        times = frame.pop(time_column)
    elif len(frame.columns) and not pd.api.types.is_numeric_dtype(frame[frame.columns[0]]):
        times = frame.pop(frame.columns[0])  # a leading non-numeric column is the time axis
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"columns {bad} of {path} are not numeric; pass --time-column for a time column.")
    if frame.empty:
        raise ValueError(f"{path} has no numeric data columns.")
    index = None
    if times is not None:
        index = _time_index(times, path)
        if index.has_duplicates:
            raise ValueError(
                f"the time column of {path} has duplicated time stamps (first: {index[index.duplicated()][0]})."
            )
        if (
            isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)
        ) and not index.is_monotonic_increasing:
            # A newest-first export (or a shuffled one): the model reads rows oldest first.
            order = np.argsort(index.to_numpy(), kind="stable")
            frame, index = frame.iloc[order].reset_index(drop=True), index[order]
            print(f"note: sorted the rows of {path} by time (oldest first)", file=sys.stderr)
        _warn_uneven(index, path)
    return frame, index


def _time_index(times: pd.Series, path: Path) -> pd.Index:
    """The time column as a DatetimeIndex (time stamps with offsets compared in UTC), a numeric index, or labels."""
    if pd.api.types.is_numeric_dtype(times):
        return pd.Index(times)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it has to guess the date format
        parsed = pd.to_datetime(times, errors="coerce", utc=_has_offsets(times))
    if parsed.isna().any():
        return pd.Index(times)  # not dates: labels in row order
    return pd.DatetimeIndex(parsed)


def _has_offsets(times: pd.Series) -> bool:
    text = times.astype(str)
    return bool(text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any())


def _warn_uneven(index: pd.Index, path: Path) -> None:
    if len(index) < 3 or not (isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)):
        return
    steps = pd.Series(index[1:] - index[:-1])
    if steps.min() != steps.max() and (not isinstance(index, pd.DatetimeIndex) or pd.infer_freq(index) is None):
        print(
            f"warning: the time stamps of {path} are unevenly spaced (steps from {steps.min()} to {steps.max()}); "
            "DynaMix treats the rows as equally spaced. Resample to a regular grid first.",
            file=sys.stderr,
        )
