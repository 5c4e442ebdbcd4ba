"""Batched autoregressive rollout of DynaMix's latent dynamics.

The rollout is the hot path of every forecast. One layout travels through it, batch-first as in the
pipeline: contexts ``(S, T, N)`` with their true ``lengths`` (shorter contexts are left-padded),
latent states ``(B, M)`` and observations ``(B, H, n_obs)``, where ``rows`` maps each of the ``B`` rows
(sample paths) to its context. Three backends implement one step each and share one loop here (noise
blocks, the divergence bound and the divergence tracking):

- :class:`ReferenceStep`: :meth:`DynaMix.step`, the published arithmetic (any expert kind); it converts
  once to the time-major layout of the published step;
- :class:`FusedTorchStep`: the step as a handful of fused batched torch operations (any device);
- :class:`~dynamix_forecasting.numba_rollout.NumbaStep`: the compiled CPU kernel, whole blocks of steps
  per call;
- :class:`~dynamix_forecasting.triton_rollout.TritonStep`: the fused GPU kernel (Triton), a whole block of
  steps per launch.

The fast backends read the weights from one :class:`~dynamix_forecasting.packed_weights.PackedWeights`. Noise comes from
:class:`NoiseStreams`: one seeded ``torch.Generator`` per stream (the pipeline uses one stream per sample
index), drawn in fixed blocks of steps. A row's noise therefore depends only on its stream's seed, not on
the horizon, on the other rows of the batch or on how the batch is chunked, and torch's global random
state is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .model import DynaMix
from .options import BACKENDS
from .packed_weights import PackedWeights

NOISE_BLOCK = 256


@dataclass
class RolloutResult:
    """Observed part of a rollout and where it left the context's range.

    Attributes
    ----------
    observations : torch.Tensor
        ``(B, H, n_obs)``: the first ``n_obs`` latent entries after each step.
    diverged_at : torch.Tensor
        ``(B,)`` int64: first step (1-based) at which the state was non-finite or beyond the
        divergence threshold, 0 where it never was.
    expert_weights : torch.Tensor or None
        ``(B, H, Experts)``: the gating network's weights at each step, when recorded.
    """

    observations: torch.Tensor
    diverged_at: torch.Tensor
    expert_weights: torch.Tensor | None = None


class NoiseStreams:
    """Reproducible standard-normal noise for a rollout, one stream per seed.

    Parameters
    ----------
    seeds : sequence of int
        One seed per stream.
    rows : torch.Tensor, optional
        ``(B,)`` stream index of each batch row (default: row ``i`` uses stream ``i``).

    Notes
    -----
    Each stream draws ``NOISE_BLOCK`` steps at a time whatever the horizon, so a shorter forecast
    with the same seeds is a prefix of a longer one, and rows sharing a stream get the same draws.
    """

    def __init__(self, seeds: Sequence[int], rows: torch.Tensor | None = None) -> None:
        self.seeds = [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("NoiseStreams needs at least one seed.")
        self.rows = torch.arange(len(self.seeds)) if rows is None else torch.as_tensor(rows, dtype=torch.int64)
        if self.rows.numel() and (self.rows.min() < 0 or self.rows.max() >= len(self.seeds)):
            raise ValueError(f"rows must index the {len(self.seeds)} streams.")

    @classmethod
    def fresh(cls, n: int, seed: int | None = None, rows: torch.Tensor | None = None) -> NoiseStreams:
        """``n`` independent streams derived from ``seed`` (fresh OS entropy when ``None``)."""
        states = np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64)
        return cls([int(s) >> 1 for s in states], rows)

    def subset(self, lo: int, hi: int) -> NoiseStreams:
        """The streams of rows ``lo:hi`` (for rolling a batch out in chunks)."""
        return NoiseStreams(self.seeds, self.rows[lo:hi])

    def generators(self, device: torch.device | None = None) -> list[torch.Generator]:
        """Fresh CPU generators, one per stream, at the start of the streams.

        Noise is always drawn on the CPU (and copied to the rollout's device), so a seed gives the same noise on
        every device: CPU and GPU forecasts of one seed agree to float rounding. ``device`` is accepted for
        compatibility and ignored.
        """
        return [torch.Generator(device="cpu").manual_seed(s) for s in self.seeds]


def _draw(
    generators: list[torch.Generator], rows: torch.Tensor, shape: tuple[int, ...], device: torch.device, dtype
) -> torch.Tensor:
    """One block ``(NOISE_BLOCK, B, *shape)`` of noise, row ``b`` taken from stream ``rows[b]``."""
    per_stream = torch.stack(
        [torch.randn(NOISE_BLOCK, *shape, generator=g, dtype=dtype) for g in generators], dim=1
    )  # on the CPU: the same draws for a seed on every device
    # Only the streams travel to the device; rows pick theirs there (a million rows share a few streams).
    return per_stream.to(device).index_select(1, rows.to(device))


class Step(Protocol):
    """One backend: advances its rows' latent states by a block of steps."""

    def advance(
        self,
        eps: torch.Tensor | None,
        expert_eps: torch.Tensor | None,
        steps: int,
        gates: torch.Tensor | None = None,
        row_steps: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Advance ``steps`` steps with gating noise ``eps`` ``(steps, B, N)`` (None: noise off) and expert noise
        ``expert_eps`` ``(steps, B, J, M)`` (probabilistic experts only); returns ``(B, steps, n_obs)``. When
        ``gates`` ``(B, steps, J)`` is given, each step's expert weights are written into it. ``row_steps``
        ``(B,)``: the steps each row needs in this block; a backend may stop a row there (its later observations
        are then unspecified) or compute them all."""
        ...


def _padding(lengths: torch.Tensor, t_len: int) -> torch.Tensor:
    """``(S, T-1)`` True for the padding frames of left-padded contexts (attention frames are ``0..T-2``)."""
    frames = torch.arange(t_len - 1, device=lengths.device)
    return frames[None, :] < (t_len - lengths)[:, None]


class ReferenceStep:
    """:meth:`DynaMix.step` (the published arithmetic, any expert kind), in its time-major layout."""

    def __init__(self, model, contexts, lengths, rows, z0, bound, n_obs) -> None:
        self.model, self.n_obs = model, n_obs
        # The published step is time-major: context (T, B, N), state (M, B). One conversion, here.
        self.context = contexts.index_select(0, rows).transpose(0, 1)
        self.encoded = model.gating_network.encode(self.context)
        padded = bool((lengths < contexts.shape[1]).any())
        self.mask = (~_padding(lengths, contexts.shape[1])).index_select(0, rows).t() if padded else None
        # z0 arrives as a transposed view of DynaMix.initial_state's (M, B) tensor; transposing back keeps
        # its memory layout, which decides the first step's GEMM kernel and so its last bits.
        self.z = z0.t()
        self.limit = None if bound is None else bound[None, :]

    def advance(self, eps, expert_eps, steps, gates=None, row_steps=None):
        out = torch.empty(self.z.shape[1], steps, self.n_obs, dtype=self.z.dtype, device=self.z.device)
        for t in range(steps):
            self.z, weights = self.model.step_with_weights(
                self.z,
                self.context,
                encoded=self.encoded,
                gating_eps=None if eps is None else eps[t].t(),
                expert_eps=None if expert_eps is None else expert_eps[t].permute(1, 2, 0),
                mask=self.mask,
            )
            if gates is not None:
                gates[:, t] = weights.t()
            if self.limit is not None:
                self.z = torch.maximum(torch.minimum(self.z, self.limit), -self.limit)
            out[:, t] = self.z[: self.n_obs].t()
        return out


class FusedTorchStep:
    """One step of the AL-RNN mixture written as a handful of fused batched torch operations."""

    def __init__(self, model, contexts, lengths, rows, z0, bound, n_obs) -> None:
        w = PackedWeights.of(model)
        self.w, self.n_obs = w, n_obs
        # Per context: frames (S, T-1, N) and their convolution, then one row per sample path.
        encoded = F.conv1d(contexts.transpose(1, 2), w.conv_weight, w.conv_bias).transpose(1, 2)
        self.frames = contexts[:, :-1].index_select(0, rows).contiguous()
        self.encoded = encoded.index_select(0, rows).contiguous()
        self.mask_bias = None
        if bool((lengths < contexts.shape[1]).any()):
            pad = _padding(lengths, contexts.shape[1]).index_select(0, rows)
            self.mask_bias = torch.zeros(pad.shape, dtype=contexts.dtype, device=contexts.device).masked_fill(
                pad, float("-inf")
            )
        self.d_t, self.w1e_t, self.w1z_t, self.w2_t = w.d.T, w.w1e.T, w.w1z.T, w.w2.T
        self.n_experts, self.m = w.a.shape
        self.z = z0.contiguous()
        self.limit = None if bound is None else bound[:, None]

    def _step(self, z: torch.Tensor, eps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.w
        y = z @ self.d_t
        if eps is not None:
            y = y + w.sigma * eps
        logits = (self.frames - y.unsqueeze(1)).abs().sum(-1) * -w.inv_t1
        if self.mask_bias is not None:
            logits = logits + self.mask_bias
        attention = torch.softmax(logits, dim=-1)
        embedding = torch.bmm(attention.unsqueeze(1), self.encoded).squeeze(1)
        hidden = F.relu(embedding @ self.w1e_t + z @ self.w1z_t + w.b1)
        weights = torch.softmax((hidden @ self.w2_t + w.b2) * -w.inv_t2, dim=-1)
        phi = torch.cat([z[:, : w.relu_from], F.relu(z[:, w.relu_from :])], dim=1)
        mixed = torch.bmm(weights.unsqueeze(1), (phi @ w.w_all).view(-1, self.n_experts, self.m)).squeeze(1)
        return (weights @ w.a) * z + weights @ w.h + mixed, weights

    def advance(self, eps, expert_eps, steps, gates=None, row_steps=None):
        out = torch.empty(self.z.shape[0], steps, self.n_obs, dtype=self.z.dtype, device=self.z.device)
        for t in range(steps):
            self.z, weights = self._step(self.z, None if eps is None else eps[t])
            if gates is not None:
                gates[:, t] = weights
            if self.limit is not None:
                self.z = torch.maximum(torch.minimum(self.z, self.limit), -self.limit)
            out[:, t] = self.z[:, : self.n_obs]
        return out


def _fast_path_applies(model: DynaMix) -> bool:
    return model.config.expert_type == "almost_linear_rnn" and not model.config.probabilistic_expert


def choose_backend(
    model: DynaMix, device: torch.device, backend: str = "auto", noise: bool = True, batch_invariant: bool = False
) -> str:
    """The step implementation a rollout will use.

    ``"reference"`` is :meth:`DynaMix.step` (the published arithmetic, any expert kind); ``"torch"``
    the fused batched torch step (any device); ``"numba"`` the compiled CPU kernel; ``"triton"`` the fused GPU
    kernel (:mod:`~dynamix_forecasting.triton_rollout`, a CUDA device; opt-in until measured on one). ``"auto"`` picks the
    reference step without noise (the published deterministic forecast, bit for bit), else numba on the
    CPU and torch elsewhere, and the reference step for experts the fast paths do not cover
    (clipped-shallow-PLRNN or probabilistic experts). ``batch_invariant=True`` (the time-series mode) prefers
    the compiled kernel even without noise, because it computes every row on its own: a series' forecast is
    then the same bits alone, in any batch or partition.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "reference" or (backend == "auto" and not noise and not batch_invariant):
        return "reference"
    if not _fast_path_applies(model):
        if backend != "auto":
            raise ValueError(
                f"backend={backend!r} covers deterministic almost-linear RNN experts only; this model has "
                f"{model.config.expert_type} experts (probabilistic={model.config.probabilistic_expert}). "
                "Use backend='reference' or 'auto'."
            )
        return "reference"
    if backend == "numba" and device.type != "cpu":
        raise ValueError("backend='numba' needs a CPU device; use backend='torch'.")
    if backend == "triton":
        from .triton_rollout import triton_available  # Triton loads only when asked for

        why = triton_available(device)
        if why is not None:
            raise ValueError(f"backend='triton' cannot run: {why}. Use backend='torch' or 'auto'.")
    if backend == "auto":
        return "numba" if device.type == "cpu" else "torch"
    return backend


def _make_step(kind: str, model, contexts, lengths, rows, z0, bound, n_obs) -> Step:
    if kind == "numba":
        from .numba_rollout import NumbaStep  # numba loads on the first CPU forecast, not at import

        return NumbaStep(model, contexts, lengths, rows, z0, bound, n_obs)
    if kind == "torch":
        return FusedTorchStep(model, contexts, lengths, rows, z0, bound, n_obs)
    if kind == "triton":
        from .triton_rollout import TritonStep  # Triton loads only when asked for

        return TritonStep(model, contexts, lengths, rows, z0, bound, n_obs)
    return ReferenceStep(model, contexts, lengths, rows, z0, bound, n_obs)


@torch.no_grad()
def rollout(
    model: DynaMix,
    contexts: torch.Tensor,
    z0: torch.Tensor,
    horizon: int,
    *,
    lengths: torch.Tensor | None = None,
    rows: torch.Tensor | None = None,
    noise: bool = True,
    streams: NoiseStreams | None = None,
    n_obs: int | None = None,
    bound: torch.Tensor | None = None,
    threshold: torch.Tensor | None = None,
    backend: str = "auto",
    on_block: Callable[[int], None] | None = None,
    record_weights: bool = False,
    row_steps: np.ndarray | None = None,
) -> RolloutResult:
    """Roll the latent dynamics ``horizon`` steps from ``z0``.

    Parameters
    ----------
    model : DynaMix
        The model (any expert kind; deterministic AL-RNN experts can take the fast paths).
    contexts : torch.Tensor
        Embedded, standardized contexts ``(S, T, N)``, left-padded where shorter than ``T``.
    z0 : torch.Tensor
        Initial latent states ``(B, M)`` (e.g. ``model.initial_state(x0).t()``).
    horizon : int
        Number of steps.
    lengths : torch.Tensor, optional
        ``(S,)`` true length of each context (default: all ``T``); padding is masked out of the attention.
    rows : torch.Tensor, optional
        ``(B,)`` context index of each row, so that sample paths share their series' context
        (default: row ``b`` uses context ``b``).
    noise : bool, default True
        Draw the gating noise (the published behaviour); False gives the deterministic forecast.
    streams : NoiseStreams, optional
        Where each row's noise comes from (default: an independent fresh stream per row).
    n_obs : int, optional
        How many leading latent entries to record (default ``N``).
    bound : torch.Tensor, optional
        ``(B,)`` bound on ``|z|`` applied after every step (the divergence guard).
    threshold : torch.Tensor, optional
        ``(B,)`` level of ``|observation|`` at which a row counts as diverged.
    backend : str, default "auto"
        ``"auto"``, ``"numba"``, ``"torch"`` or ``"reference"`` (see :func:`choose_backend`).
    on_block : callable, optional
        Called with the number of steps done after each block (for progress bars).
    record_weights : bool, default False
        Record the gating network's expert weights of every step (``RolloutResult.expert_weights``).
    row_steps : numpy.ndarray, optional
        ``(B,)`` steps each row needs (at most ``horizon``): the compiled kernels stop a row there, and its later
        observations are unspecified (0 or computed on); divergence is tracked over each row's own steps.

    Returns
    -------
    RolloutResult
    """
    n_contexts, t_len, n_model = contexts.shape
    batch = z0.shape[0]
    n_obs = n_model if n_obs is None else n_obs
    device, dtype = contexts.device, contexts.dtype
    rows = torch.arange(n_contexts, device=device) if rows is None else rows.to(device)
    if rows.numel() != batch:
        raise ValueError(f"rows has {rows.numel()} entries but z0 has {batch} rows.")
    lengths = torch.full((n_contexts,), t_len, device=device) if lengths is None else lengths.to(device)
    kind = choose_backend(model, device, backend, noise)
    step = _make_step(kind, model, contexts, lengths, rows, z0, bound, n_obs)
    probabilistic = model.config.probabilistic_expert
    out = torch.empty(batch, horizon, n_obs, device=device, dtype=dtype)
    diverged = torch.zeros(batch, dtype=torch.int64, device=device)
    gates = torch.empty(batch, horizon, len(model.experts), device=device, dtype=dtype) if record_weights else None
    streams = NoiseStreams.fresh(batch) if streams is None else streams
    if streams.rows.numel() != batch:
        raise ValueError(f"streams map {streams.rows.numel()} rows but the batch has {batch}.")
    generators = streams.generators(device) if noise else []
    for start in range(0, horizon, NOISE_BLOCK):
        stop = min(start + NOISE_BLOCK, horizon)
        eps = expert_eps = None
        if noise:
            # Noise is drawn (steps, B, ...) in every backend, so they use the same draws for the same seeds.
            eps = _draw(generators, streams.rows, (n_model,), device, dtype)[: stop - start]
            if probabilistic:
                expert_eps = _draw(generators, streams.rows, (len(model.experts), model.M), device, dtype)
        needed = None if row_steps is None else np.clip(row_steps - start, 0, stop - start)
        block = step.advance(eps, expert_eps, stop - start, None if gates is None else gates[:, start:stop], needed)
        out[:, start:stop] = block
        bad = ~torch.isfinite(block).all(-1)  # (B, steps)
        if threshold is not None:
            bad |= block.abs().amax(-1) >= threshold[:, None]
        if needed is not None:  # steps a row did not need do not count
            bad &= torch.arange(stop - start, device=device)[None, :] < torch.as_tensor(needed, device=device)[:, None]
        first_bad = torch.where(bad.any(1), bad.int().argmax(1) + start + 1, 0)
        diverged = torch.where(diverged == 0, first_bad, diverged)
        if on_block is not None:
            on_block(stop - start)
    return RolloutResult(out, diverged, gates)
