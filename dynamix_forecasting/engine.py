"""The engine call: one batched rollout of every (sample, row) pair, chunked, with noise and divergence checks.

Both modes end here. :func:`roll_rows` takes embedded contexts (one left-padded array, see
:func:`pad_contexts`) and initial conditions, builds the initial states, runs
:func:`~dynamix_forecasting.rollout.rollout` chunk by chunk (bounding memory), and warns once with a
:class:`DivergenceWarning` naming the rows that left their context's range.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .model import DynaMix
from .rollout import NoiseStreams, rollout

# A standardized series whose forecast leaves this multiple of its context's range counts as diverged.
DIVERGENCE_FACTOR = 10.0


class DivergenceWarning(RuntimeWarning):
    """A forecast left the range of its context by far, or became non-finite."""


def pad_contexts(embedded: list[np.ndarray], n_model: int, keep_lengths: bool) -> tuple[np.ndarray, np.ndarray]:
    """``R`` embedded contexts ``(T_r, N)`` as one float32 array ``(R, T, N)`` and their true lengths.

    ``keep_lengths``: a list of series keeps each whole context (shorter ones are left-padded and the padding is
    masked out of the attention, so each series is forecast exactly as if it were alone); otherwise all are cut
    to the shortest, as the published pipeline does.
    """
    lengths = np.array([e.shape[0] for e in embedded])
    if keep_lengths:
        t_len = int(lengths.max())
        ctx = np.zeros((len(embedded), t_len, n_model), dtype=np.float32)
        for i, e in enumerate(embedded):
            ctx[i, t_len - lengths[i] :] = e
        return ctx, lengths
    t_len = int(lengths.min())
    ctx = np.stack([e[-t_len:] for e in embedded]).astype(np.float32, copy=False)
    return ctx, np.full(len(embedded), t_len)


def roll_rows(
    model: DynaMix,
    ctx: np.ndarray,
    lengths: np.ndarray,
    x0: np.ndarray,
    horizon: int,
    *,
    num_samples: int,
    seed: int | None,
    noise: bool,
    guard: float | None,
    batch_size: int | None,
    progress: bool,
    step_kind: str,
    n_obs: int,
    stacklevel: int,
    record_weights: bool = False,
    warn: bool = True,
    row_steps: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The rollout of every (sample, row) pair.

    Parameters
    ----------
    model : DynaMix
        The model (its device is the rollout's).
    ctx : numpy.ndarray
        ``(R, T, N)`` float32 embedded contexts, left-padded where shorter than ``T`` (see :func:`pad_contexts`).
    lengths : numpy.ndarray
        ``(R,)`` true length of each context.
    x0 : numpy.ndarray
        ``(R, N)`` initial conditions.
    horizon : int
        Steps.
    num_samples, seed, noise, guard, batch_size, progress
        As in :class:`~dynamix_forecasting.options.ForecastOptions`.
    step_kind : str
        The backend (see :func:`~dynamix_forecasting.rollout.choose_backend`).
    n_obs : int
        Observed channels to keep.
    stacklevel : int
        Where a warning points.
    record_weights : bool, default False
        Also return the expert weights.
    warn : bool, default True
        Warn about diverged rows (the time-series mode down-weights them instead).
    row_steps : numpy.ndarray, optional
        ``(R,)`` steps each series needs (at most ``horizon``; one sample path): the compiled kernels stop a
        series there, and its later observations are unspecified.

    Returns
    -------
    observations : numpy.ndarray
        float32 ``(K * R, H, n_obs)``, rows sample-major (row ``k * R + r`` is sample ``k`` of row ``r``).
    weights : numpy.ndarray or None
        ``(K * R, H, J)`` expert weights when recorded.
    diverged_at : numpy.ndarray
        ``(K * R,)`` first diverged step (1-based), 0 where none.
    """
    n_rows, t_len, n_model = ctx.shape
    device = model.B.device
    contexts = torch.as_tensor(ctx, device=device)  # (R, T, N), batch-first through every backend
    lengths_t = torch.as_tensor(lengths, dtype=torch.int64, device=device)
    x0_t = torch.as_tensor(x0, dtype=torch.float32, device=device)
    # Each row's divergence scale: its context's largest absolute standardized value (padding is 0).
    # max |x| as max(max x, -min x): two vectorized reductions, no |x| temporary (torch.aminmax is slower)
    scale = torch.maximum(contexts.amax(dim=(1, 2)), -contexts.amin(dim=(1, 2))).clamp_min(1.0)
    # Rows are sample-major: row k * R + r is sample k of series r; rows share their series' context.
    rows = n_rows * num_samples
    row_ctx = torch.arange(n_rows, device=device).repeat(num_samples)
    x0_all, scale_all = x0_t.repeat(num_samples, 1), scale.repeat(num_samples)
    # One noise stream per sample index, shared by all series: a series' forecast does not depend
    # on the other series in the batch, on the horizon (prefixes agree) or on batch_size.
    streams = NoiseStreams.fresh(num_samples, seed, rows=torch.arange(num_samples).repeat_interleave(n_rows))
    # With the guard on, a series that reaches the bound is reported too (it was diverging).
    limit = DIVERGENCE_FACTOR if guard is None else min(DIVERGENCE_FACTOR, guard)
    chunk = batch_size or max(1, (1 << 26) // max(1, t_len * n_model))
    obs = np.empty((rows, horizon, n_obs), dtype=np.float32)
    gates = np.empty((rows, horizon, len(model.experts)), dtype=np.float32) if record_weights else None
    steps = np.zeros(rows, dtype=np.int64)
    bar = tqdm(total=horizon * rows, disable=not progress, unit="step", unit_scale=True, desc="DynaMix rollout")
    with torch.no_grad():
        for lo in range(0, rows, chunk):
            hi = min(lo + chunk, rows)
            # The compiled kernel computes each row on its own; its initial states are built row by row
            # too, so a series' forecast is the same bits alone, in any batch or chunk.
            z0 = model.initial_state(x0_all[lo:hi], batch_invariant=step_kind == "numba").t()
            result = rollout(
                model,
                contexts,
                z0,
                horizon,
                lengths=lengths_t,
                rows=row_ctx[lo:hi],
                noise=noise,
                streams=streams.subset(lo, hi),
                backend=step_kind,
                n_obs=n_obs,
                bound=None if guard is None else guard * scale_all[lo:hi],
                threshold=limit * scale_all[lo:hi],
                on_block=_progress(bar, hi - lo),
                record_weights=record_weights,
                row_steps=None if row_steps is None else np.tile(row_steps, num_samples)[lo:hi],
            )
            obs[lo:hi] = result.observations.cpu().numpy()
            if gates is not None and result.expert_weights is not None:
                gates[lo:hi] = result.expert_weights.cpu().numpy()
            steps[lo:hi] = result.diverged_at.cpu().numpy()
    bar.close()
    if warn and steps.any():
        fix = (
            f"The divergence guard bounded its latent state at {guard:g}x, so the forecast is finite "
            "but saturated from there on."
            if guard is not None
            else "Pass divergence_guard=10.0 to bound the latent state and keep the forecast finite."
        )
        warn_divergence(
            steps,
            n_rows,
            num_samples,
            f"non-finite or beyond {limit:g}x the context's largest standardized value",
            fix,
            stacklevel,
        )
    return obs, gates, steps


def _progress(bar: Any, rows: int) -> Callable[[int], None]:
    """Progress-bar callback of one chunk of ``rows`` rows: ``steps`` done for each of them."""

    def update(steps: int) -> None:
        bar.update(steps * rows)

    return update


def warn_divergence(steps: np.ndarray, n_rows: int, num_samples: int, what: str, fix: str, stacklevel: int) -> None:
    """One :class:`DivergenceWarning` naming the first few (series, sample, step) that diverged."""
    bad = np.nonzero(steps)[0]
    described = ", ".join(
        f"series {r % n_rows}" + (f" sample {r // n_rows}" if num_samples > 1 else "") + f" at step {steps[r]}"
        for r in bad[:5]
    )
    more = f" and {bad.size - 5} more" if bad.size > 5 else ""
    warnings.warn(
        f"DynaMix forecast diverged ({what}) for {described}{more}. {fix}", DivergenceWarning, stacklevel=stacklevel + 1
    )
