"""darts inputs of the DynaMix adapter: series lists and past covariates as extra context channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from darts import TimeSeries


def as_list(series: TimeSeries | Sequence[TimeSeries], what: str) -> tuple[list[TimeSeries], bool]:
    """``series`` as a list, and whether it was a single series."""
    if isinstance(series, TimeSeries):
        return [series], True
    if isinstance(series, Sequence) and series and all(isinstance(s, TimeSeries) for s in series):
        return list(series), False
    raise TypeError(
        f"{what} must be a darts TimeSeries or a non-empty list of TimeSeries, got {type(series).__name__}."
    )


def check_covariates(
    exogenous: bool, series: list[TimeSeries], past_covariates: Any, future_covariates: Any
) -> list[TimeSeries] | None:
    """The past covariates of each series (``exogenous=True``), checked; None where none are used."""
    if future_covariates is not None:
        raise ValueError(
            "DynaMixModel takes no future covariates; drop them (with exogenous=True, past covariates are extra "
            "context channels)."
        )
    if past_covariates is None:
        if exogenous:
            raise ValueError("exogenous=True uses past_covariates as extra context channels; pass them.")
        return None
    if not exogenous:
        raise ValueError(
            "DynaMixModel(exogenous=False) takes no covariates, but past_covariates were passed. Set exogenous=True "
            "to use them as extra context channels (forecast jointly with the series), or drop them."
        )
    covariates, _ = as_list(past_covariates, "past_covariates")
    if len(covariates) != len(series):
        raise ValueError(f"Pass one past_covariates series per series ({len(series)}), got {len(covariates)}.")
    for i, (s, c) in enumerate(zip(series, covariates, strict=True)):
        if not (c.start_time() <= s.start_time() and c.end_time() >= s.end_time()):
            raise ValueError(f"past_covariates {i} must cover the whole time span of series {i}.")
    return covariates


def joint_values(series: list[TimeSeries], covariates: list[TimeSeries] | None) -> list[np.ndarray]:
    """Each series' values, with its past covariates' values at its time points as extra channels."""
    if covariates is None:
        return [s.values(copy=False) for s in series]
    return [
        np.concatenate([s.values(copy=False), c.slice_intersect(s).values(copy=False)], axis=1)
        for s, c in zip(series, covariates, strict=True)
    ]
