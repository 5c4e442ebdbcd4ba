"""The dynamics mode: the published forecasting pipeline over a batch of context series.

Check the context against the options, prepare every row (:mod:`~dynamix_forecasting.rows`), roll all
(sample, row) pairs out in one engine call (:mod:`~dynamix_forecasting.engine`) and undo each row's
transforms into one ``(K, H, S, F)`` float64 array.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .engine import pad_contexts, roll_rows, warn_divergence
from .inputs import SeriesBatch
from .memory import check_memory
from .model import DynaMix
from .options import ForecastOptions
from .preprocessing import BOXCOX_REACH, min_context_length
from .rollout import choose_backend
from .rows import PreparedRows, prepare_rows


@dataclass(frozen=True)
class DynamicsPaths:
    """The dynamics mode's result: ``(K, H, S, F)`` float64 paths and, when recorded, ``(K, H, S, J)`` expert
    weights of the same rollout."""

    paths: np.ndarray
    weights: np.ndarray | None = None


def dynamics_min_context(model: DynaMix, n_channels: int, method: str) -> int:
    """Shortest context of ``n_channels`` channels the dynamics mode accepts with the embedding ``method``.

    More channels than the model's ``N`` are forecast one by one, so they need what one channel needs.
    """
    n_model = model.N
    return min_context_length(1 if n_channels > n_model else n_channels, n_model, method)


def dynamics_paths(
    model: DynaMix,
    batch: SeriesBatch,
    horizon: int,
    options: ForecastOptions,
    *,
    stacklevel: int,
    record_weights: bool = False,
    warn: bool = True,
) -> DynamicsPaths:
    """Sample paths of every series of ``batch`` with the published pipeline.

    Parameters
    ----------
    model : DynaMix
        The model.
    batch : SeriesBatch
        The context (already cut to ``options.context_length``).
    horizon : int
        Steps ahead.
    options : ForecastOptions
        Options resolved to ``mode="dynamics"``.
    stacklevel : int
        Where warnings point.
    record_weights : bool, default False
        Also record the expert weights.
    warn : bool, default True
        Warn about diverging rows.

    Returns
    -------
    DynamicsPaths
    """
    num_samples = options.paths()
    step_kind = choose_backend(model, model.B.device, options.backend, options.noisy)
    n_model, n_data = model.N, batch.n_channels
    method = options.embedding
    need = dynamics_min_context(model, n_data, method)
    for i, s in enumerate(batch.series):
        if s.shape[0] < need:
            name = "the context" if len(batch.series) == 1 else f"series {i}"
            raise ValueError(
                f"{name} has {s.shape[0]} points; {method} needs at least {need}. Pass a longer context"
                + (" or a larger context_length." if options.context_length is not None else ".")
            )
    split = n_data > n_model
    if split and record_weights:
        raise ValueError(
            f"The context has {n_data} channels but the model observes {n_model}, so each channel would be "
            "its own forecast with its own expert weights; pass the channels one at a time (or at most "
            f"{n_model} of them) to get expert weights."
        )
    if split and warn:
        warnings.warn(
            f"The context has {n_data} channels but the model was trained for {n_model}; "
            "each channel is forecast as its own univariate series.",
            UserWarning,
            stacklevel=stacklevel,
        )
    n_rows = len(batch.series) * (n_data if split else 1)
    check_memory(
        n_rows=n_rows,
        num_samples=num_samples,
        horizon=horizon,
        n_values=len(batch.series) * n_data,
        context_values=sum(s.shape[0] for s in batch.series) * (n_data if split else 1) * n_model,
        batch_size=options.batch_size,
    )
    prepared = prepare_rows(batch, options, n_model, fast=step_kind != "reference")
    ctx, lengths = pad_contexts(prepared.embedded, n_model, keep_lengths=batch.layout == "list")
    obs, gates, _ = roll_rows(
        model,
        ctx,
        lengths,
        prepared.x0,
        horizon,
        num_samples=num_samples,
        seed=options.seed,
        noise=options.noisy,
        guard=options.divergence_guard,
        batch_size=options.batch_size,
        progress=options.progress,
        step_kind=step_kind,
        n_obs=prepared.n_obs,
        stacklevel=stacklevel + 1,
        record_weights=record_weights,
        warn=warn,
    )
    paths = invert_rows(prepared, obs, batch, num_samples, stacklevel + 1, warn)
    weights = None
    if gates is not None:  # rows are sample-major: (K * S, H, J) -> (K, H, S, J)
        weights = gates.reshape(num_samples, n_rows, horizon, -1).transpose(0, 2, 1, 3).astype(np.float64)
    return DynamicsPaths(paths, weights)


def invert_rows(
    prepared: PreparedRows, obs: np.ndarray, batch: SeriesBatch, num_samples: int, stacklevel: int, warn: bool = True
) -> np.ndarray:
    """Undo every row's preprocessing at once into one ``(K, H, S, F)`` float64 array.

    Written in place through a view of the output in the rows' layout (no temporaries of the output's size):
    peak memory is the float32 rollout plus the float64 result.
    """
    n_series, n_data = len(batch.series), batch.n_channels
    n_rows, horizon, n = len(prepared.embedded), obs.shape[1], prepared.n_obs
    out = np.empty((num_samples, horizon, n_series, n_data))
    # Row r is series r, or channel r % F of series r // F when channels are forecast one by one.
    if prepared.split:
        view = out.transpose(0, 2, 3, 1).reshape(num_samples, n_rows, horizon)[..., None]
    else:
        view = out.transpose(0, 2, 1, 3)  # (K, R, H, n)
    assert np.shares_memory(view, out)  # a view, so the writes below land in `out`
    view[...] = obs[:, :, :n].reshape(num_samples, n_rows, horizon, n)  # rows sample-major
    if prepared.std is not None and prepared.mean is not None:
        view *= prepared.std[None, :, None, :]
        view += prepared.mean[None, :, None, :]
    saturated = np.zeros((num_samples, n_rows), dtype=np.int64)
    for r, transform in enumerate(prepared.nonstationary):
        if transform is not None:
            view[:, r], clipped = transform.inverse(view[:, r])
            hit = np.asarray(clipped.any(axis=-1))  # (K, H)
            saturated[:, r] = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    if prepared.constant.any():
        rows, channels = np.nonzero(prepared.constant)
        view[:, rows, :, channels] = prepared.first[rows, channels][:, None, None]
    if warn and saturated.any():
        # The rollout's check is in standardized units; the inverse Box-Cox can still run away in data units.
        warn_divergence(
            saturated.reshape(-1),
            n_rows,
            num_samples,
            f"its inverse Box-Cox transform left {BOXCOX_REACH:g}x the context's range and was bounded there",
            "The non-stationary transforms do not suit this series: try fit_nonstationary=False, or a shorter horizon.",
            stacklevel,
        )
    return out
