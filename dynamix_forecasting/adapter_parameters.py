"""What the sktime and darts adapters share: checks of their plain parameters, their ForecastOptions, and the
season of an index frequency."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import DynaMixConfig
from .options import ForecastOptions


def check_adapter_parameters(model: Any, random_state: Any) -> None:
    """Raise a clear error for an invalid ``model`` or ``random_state`` (the forecast options are checked by
    :class:`~dynamix_forecasting.options.ForecastOptions`).

    Parameters
    ----------
    model : str, path or dict
        A model name, a checkpoint path or an architecture dict.
    random_state : int, numpy RandomState or None
        Seed of the noise.
    """
    if not isinstance(model, str | os.PathLike | Mapping | DynaMixConfig):
        raise TypeError(
            f"model must be a model name, a checkpoint path or a config (dict or DynaMixConfig), got {type(model).__name__}."
        )
    if isinstance(random_state, np.random.RandomState):
        return
    if random_state is not None and (
        isinstance(random_state, bool | np.bool_) or not isinstance(random_state, int | np.integer)
    ):
        raise TypeError(f"random_state must be an int, a numpy RandomState or None, got {type(random_state).__name__}.")
    if random_state is not None and random_state < 0:
        raise ValueError(f"random_state must be a non-negative int or None, got {random_state}.")


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


def seed_from(random_state: Any) -> int:
    """An int seed from an int or a :class:`numpy.random.RandomState` (one draw from it); ``None`` is seed 0,
    the default seed of every entry point (forecasts are reproducible unless asked otherwise)."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return 0 if random_state is None else int(random_state)


def index_seasons(season_length: Any, options: ForecastOptions, freqs: list[Any]) -> Any:
    """The ``season_length`` option of an adapter's call: the one given, else (time-series mode) the usual
    season of each series' index frequency where it names one (hourly 24, monthly 12, ...), else None: the
    time-series mode then estimates the season from each history, and the dynamics mode guesses its period."""
    if season_length is not None:
        return season_length
    if options.mode != "time_series":
        return None
    seasons = [season_length_from_freq(f) for f in freqs]
    return None if any(s <= 1 for s in seasons) else tuple(seasons)
