"""Checks of the plain parameters the sktime and darts adapters share."""

from __future__ import annotations

import os
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
    random_state: int | None,
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
    random_state : int or None
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
    if random_state is not None and (
        isinstance(random_state, bool | np.bool_) or not isinstance(random_state, int | np.integer)
    ):
        raise TypeError(f"random_state must be an int or None, got {type(random_state).__name__}.")
    if random_state is not None and random_state < 0:
        raise ValueError(f"random_state must be a non-negative int or None, got {random_state}.")
