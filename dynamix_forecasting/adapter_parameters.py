"""Checks of the plain parameters the sktime and darts adapters share."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import DynaMixConfig
from .inputs import positive_int
from .preprocessing import EMBEDDINGS


def check_adapter_parameters(
    model: Any,
    preprocessing_method: str,
    context_length: int | None,
    random_state: Any,
    num_samples: int | None = None,
) -> None:
    """Raise a clear error for an invalid adapter parameter.

    Parameters
    ----------
    model : str, path or dict
        A model name, a checkpoint path or an architecture dict.
    preprocessing_method : str
        One of the pipeline's embeddings.
    context_length : int or None
        Positive int, or None for the whole series.
    random_state : int, numpy RandomState or None
        Seed of the noise.
    num_samples : int, optional
        Ensemble size, where the adapter has one.
    """
    if not isinstance(model, str | os.PathLike | Mapping | DynaMixConfig):
        raise TypeError(
            f"model must be a model name, a checkpoint path or a config (dict or DynaMixConfig), got {type(model).__name__}."
        )
    if preprocessing_method not in EMBEDDINGS:
        raise ValueError(f"Unknown preprocessing_method {preprocessing_method!r}; choose one of {EMBEDDINGS}.")
    if context_length is not None:
        positive_int("context_length", context_length)
    if num_samples is not None:
        positive_int("num_samples", num_samples)
    if isinstance(random_state, np.random.RandomState):
        return
    if random_state is not None and (
        isinstance(random_state, bool | np.bool_) or not isinstance(random_state, int | np.integer)
    ):
        raise TypeError(f"random_state must be an int, a numpy RandomState or None, got {type(random_state).__name__}.")
    if random_state is not None and random_state < 0:
        raise ValueError(f"random_state must be a non-negative int or None, got {random_state}.")


MODES = ("time_series", "dynamics")
# Seasons by pandas frequency prefix (the conventions of statsforecast, sktime and the M competitions).
_SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "Y": 1, "A": 1}


def season_length_from_freq(freq: Any) -> int:
    """The usual season length of a pandas frequency: 24 for hourly, 7 daily, 5 business-daily, 52 weekly,
    12 monthly, 4 quarterly, 1 yearly; a multiple divides it (``"2h"`` gives 12); 1 where none applies
    (sub-hourly, integer index, unknown).

    Parameters
    ----------
    freq : str, pandas offset or None

    Returns
    -------
    int
    """
    if freq is None or isinstance(freq, int | np.integer):
        return 1
    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # old aliases ("M", "Q") are still understood
            offset = pd.tseries.frequencies.to_offset(freq)
    except (TypeError, ValueError):
        return 1
    name = offset.name.split("-")[0]  # "W-SUN" -> "W", "QS-DEC" -> "QS"
    base = _SEASONS.get(name) or _SEASONS.get(name[:1]) or _SEASONS.get(name.rstrip("SE")) or 0
    if name in ("min", "s", "ms", "us", "ns", "T", "S", "L", "U", "N"):
        return 1
    n = max(int(getattr(offset, "n", 1)), 1)
    return base // n if base and base % n == 0 else 1


def check_mode(mode: Any) -> str:
    """``"time_series"`` (the default of both adapters) or ``"dynamics"`` (the published pipeline)."""
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose 'time_series' (ordinary series) or 'dynamics' (published).")
    return str(mode)


def seed_from(random_state: Any) -> int | None:
    """An int seed from ``None``, an int or a :class:`numpy.random.RandomState` (one draw from it)."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return None if random_state is None else int(random_state)
