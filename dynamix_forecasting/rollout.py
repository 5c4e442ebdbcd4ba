"""Batched autoregressive rollout of DynaMix's latent dynamics.

The rollout is the hot path of every forecast. Everything that depends only on the context is
computed once (the context convolution, the attention frames, the split MLP weights, the experts
stacked into one matrix), and each step is a few batched operations over all series and samples
at once; there is no Python loop over series or samples.

Noise comes from :class:`NoiseStreams`: one seeded ``torch.Generator`` per stream (the pipeline uses
one stream per sample index), drawn in fixed blocks of steps. A row's noise therefore depends only on
its stream's seed, not on the horizon, on the other rows of the batch or on how the batch is chunked,
and torch's global random state is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import AlmostLinearRNNExpert, DynaMix

NOISE_BLOCK = 256


@dataclass
class RolloutResult:
    """Observed part of a rollout and where it left the context's range.

    Attributes
    ----------
    observations : torch.Tensor
        ``(H, B, n_obs)``: the first ``n_obs`` latent entries after each step.
    diverged_at : torch.Tensor
        ``(B,)`` int64: first step (1-based) at which the state was non-finite or beyond the
        divergence threshold, 0 where it never was.
    """

    observations: torch.Tensor
    diverged_at: torch.Tensor


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

    def generators(self, device: torch.device) -> list[torch.Generator]:
        """Fresh generators, one per stream, at the start of the streams."""
        return [torch.Generator(device=device).manual_seed(s) for s in self.seeds]


def _draw(generators: list[torch.Generator], rows: torch.Tensor, shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    """One block ``(NOISE_BLOCK, B, *shape)`` of noise, row ``b`` taken from stream ``rows[b]``."""
    per_stream = torch.stack(
        [torch.randn(NOISE_BLOCK, *shape, generator=g, device=device, dtype=dtype) for g in generators], dim=1
    )
    return per_stream.index_select(1, rows.to(device))


class _FusedStep:
    """One step of the AL-RNN mixture written as a handful of fused batched operations."""

    def __init__(self, model: DynaMix, context: torch.Tensor, mask: torch.Tensor | None) -> None:
        gate = model.gating_network
        n, m, p = model.N, model.M, model.config.P
        # Batch-first copies: (B, T-1, N) frames and encodings, (B, T-1) additive mask.
        self.frames = context[:-1].transpose(0, 1).contiguous()
        self.encoded = gate.encode(context).transpose(0, 1).contiguous()
        self.mask_bias = None
        if mask is not None:
            bias = torch.zeros(mask.shape, dtype=context.dtype, device=context.device)
            self.mask_bias = bias.masked_fill(~mask, float("-inf")).t().contiguous()
        self.d_t = gate.D.T.contiguous()
        self.sigma = gate.sigma
        self.neg_inv_t1 = -1.0 / gate.softmax_temp1.abs()
        w1 = gate.mlp_layer1.weight
        self.w1e, self.w1z = w1[:, :n].T.contiguous(), w1[:, n:].T.contiguous()
        self.b1 = gate.mlp_layer1.bias
        self.w2 = gate.mlp_layer2.weight.T.contiguous()
        self.b2 = gate.mlp_layer2.bias
        self.neg_inv_t2 = -1.0 / gate.softmax_temp2.abs()
        experts = list(model.experts)
        self.a = torch.stack([e.A for e in experts])  # (J, M)
        self.h = torch.stack([e.h for e in experts])  # (J, M)
        # All experts' W^T side by side: phi(z) @ w_all gives every expert's W phi(z) at once.
        self.w_all = torch.cat([e.W.T for e in experts], dim=1).contiguous()  # (M, J*M)
        self.relu_from = m - p
        self.n_experts, self.m = len(experts), m

    def __call__(self, z: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
        """Next state for batch-first ``z`` ``(B, M)`` and noise ``eps`` ``(B, N)``."""
        y = z @ self.d_t
        if eps is not None:
            y = y + self.sigma * eps
        logits = (self.frames - y.unsqueeze(1)).abs().sum(-1) * self.neg_inv_t1
        if self.mask_bias is not None:
            logits = logits + self.mask_bias
        attention = torch.softmax(logits, dim=-1)
        embedding = torch.bmm(attention.unsqueeze(1), self.encoded).squeeze(1)
        hidden = F.relu(embedding @ self.w1e + z @ self.w1z + self.b1)
        weights = torch.softmax((hidden @ self.w2 + self.b2) * self.neg_inv_t2, dim=-1)
        phi = torch.cat([z[:, : self.relu_from], F.relu(z[:, self.relu_from :])], dim=1)
        mixed = torch.bmm(weights.unsqueeze(1), (phi @ self.w_all).view(-1, self.n_experts, self.m)).squeeze(1)
        return (weights @ self.a) * z + weights @ self.h + mixed


def _fast_path_applies(model: DynaMix) -> bool:
    return all(isinstance(e, AlmostLinearRNNExpert) and not hasattr(e, "sigma") for e in model.experts)


BACKENDS = ("auto", "numba", "torch", "reference")


def choose_backend(model: DynaMix, device: torch.device, backend: str = "auto") -> str:
    """The step implementation a rollout will use.

    ``"reference"`` is :meth:`DynaMix.step` (the published arithmetic, any expert kind); ``"torch"``
    the fused batched torch step (any device); ``"numba"`` the compiled CPU kernel. ``"auto"`` picks
    numba on the CPU and torch elsewhere, and the reference step for experts the fast paths do not
    cover (clipped-shallow-PLRNN or probabilistic experts).
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "reference":
        return backend
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
    if backend == "auto":
        return "numba" if device.type == "cpu" else "torch"
    return backend


@torch.no_grad()
def rollout(
    model: DynaMix,
    context: torch.Tensor,
    z0: torch.Tensor,
    horizon: int,
    *,
    rows: torch.Tensor | None = None,
    noise: bool = True,
    streams: NoiseStreams | None = None,
    mask: torch.Tensor | None = None,
    n_obs: int | None = None,
    bound: torch.Tensor | None = None,
    threshold: torch.Tensor | None = None,
    backend: str = "auto",
    on_block: Callable[[int], None] | None = None,
) -> RolloutResult:
    """Roll the latent dynamics ``horizon`` steps from ``z0``.

    Parameters
    ----------
    model : DynaMix
        The model (any expert kind; deterministic AL-RNN experts can take the fast paths).
    context : torch.Tensor
        Embedded, standardized contexts ``(T, S, N)``.
    z0 : torch.Tensor
        Initial latent states ``(M, B)``.
    horizon : int
        Number of steps.
    rows : torch.Tensor, optional
        ``(B,)`` context index of each row, so that sample paths share their series' context
        (default: row ``b`` uses context ``b``).
    noise : bool, default True
        Draw the gating noise (the published behaviour); False gives the deterministic forecast.
    streams : NoiseStreams, optional
        Where each row's noise comes from (default: an independent fresh stream per row).
    mask : torch.Tensor, optional
        Boolean ``(T-1, S)`` marking real attention frames where contexts were left-padded.
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

    Returns
    -------
    RolloutResult
    """
    n_model = context.shape[2]
    batch = z0.shape[1]
    n_obs = n_model if n_obs is None else n_obs
    device, dtype = context.device, context.dtype
    explicit_rows = rows is not None
    rows = torch.arange(context.shape[1], device=device) if rows is None else rows.to(device)
    if rows.numel() != batch:
        raise ValueError(f"rows has {rows.numel()} entries but z0 has {batch} columns.")
    kind = choose_backend(model, device, backend)
    probabilistic = any(hasattr(e, "sigma") for e in model.experts)
    if kind == "numba":
        from . import numba_rollout  # numba loads on the first CPU forecast, not at import

        # Only the contexts these rows use are prepared (a chunk of a large batch uses few of them).
        used, ctx_index = torch.unique(rows, return_inverse=True)
        context = context.index_select(1, used)
        first = np.zeros(used.numel(), dtype=np.int64)
        if mask is not None:
            first = (mask.shape[0] - mask.index_select(1, used).sum(0)).cpu().numpy()  # padding sits at the start
        index_np = ctx_index.cpu().numpy()
        kernel = numba_rollout.NumbaAlrnnRollout(model, context, index_np, first[index_np])
        z_np = np.ascontiguousarray(z0.t().cpu().numpy(), dtype=np.float32)
        lim_np = np.full(batch, np.inf, dtype=np.float32) if bound is None else bound.cpu().numpy().astype(np.float32)
    else:
        if explicit_rows:
            context = context.index_select(1, rows)
            mask = None if mask is None else mask.index_select(1, rows)
        if kind == "torch":
            fused_step = _FusedStep(model, context, mask)
            z = z0.t().contiguous()
            lim = None if bound is None else bound[:, None]
        else:
            encoded = model.gating_network.encode(context)
            z = z0
            lim = None if bound is None else bound[None, :]

    out = torch.empty(horizon, batch, n_obs, device=device, dtype=dtype)
    diverged = torch.zeros(batch, dtype=torch.int64, device=device)
    experts, m = len(model.experts), model.M
    if noise:
        streams = NoiseStreams.fresh(batch) if streams is None else streams
        if streams.rows.numel() != batch:
            raise ValueError(f"streams map {streams.rows.numel()} rows but the batch has {batch}.")
        generators = streams.generators(device)
    for start in range(0, horizon, NOISE_BLOCK):
        stop = min(start + NOISE_BLOCK, horizon)
        # Noise is drawn (steps, B, N) in every path, so they use the same draws for the same seeds.
        eps_block = _draw(generators, streams.rows, (n_model,), device, dtype) if noise else None
        expert_block = (
            _draw(generators, streams.rows, (experts, m), device, dtype).permute(0, 2, 3, 1)
            if noise and probabilistic
            else None
        )
        if kind == "numba":
            eps_np = None if eps_block is None else eps_block[: stop - start].numpy()
            out[start:stop] = torch.from_numpy(kernel.run(z_np, stop - start, eps_np, lim_np, n_obs))
        else:
            for t in range(start, stop):
                eps = None if eps_block is None else eps_block[t - start]
                if kind == "torch":
                    z = fused_step(z, eps)
                    if lim is not None:
                        z = torch.maximum(torch.minimum(z, lim), -lim)
                    out[t] = z[:, :n_obs]
                else:
                    z = model.step(
                        z,
                        context,
                        encoded=encoded,
                        gating_eps=None if eps is None else eps.t(),
                        expert_eps=None if expert_block is None else expert_block[t - start],
                        mask=mask,
                    )
                    if lim is not None:
                        z = torch.maximum(torch.minimum(z, lim), -lim)
                    out[t] = z[:n_obs].t()
        block = out[start:stop]
        bad = ~torch.isfinite(block).all(-1)
        if threshold is not None:
            bad |= block.abs().amax(-1) >= threshold
        first_bad = torch.where(bad.any(0), bad.int().argmax(0) + start + 1, 0)
        diverged = torch.where(diverged == 0, first_bad, diverged)
        if on_block is not None:
            on_block(stop - start)
    return RolloutResult(out, diverged)
