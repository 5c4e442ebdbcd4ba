"""Fused GPU rollout of the AL-RNN mixture (Triton): a whole block of steps per kernel launch.

On a GPU the fused torch step (:class:`~dynamix_forecasting.rollout.FusedTorchStep`) launches about twenty
small kernels per step and waits on each, so one series far ahead runs at the launch latency and large
batches re-read their intermediates from memory. This kernel runs every step of a block (the rollout's
noise block, 256 steps) inside one launch: each program owns ``BLOCK_B`` rows and keeps their latent
states in registers; per step it reads each row's context frames once (an online softmax over chunks of
``BLOCK_T`` frames, so any context length fits), then the gating MLP, the expert weights and all experts'
``W phi(z)`` as one matrix product (``tl.dot`` in IEEE float32, no TF32), the mixture and the divergence
bound.

The arithmetic is that of :meth:`~dynamix_forecasting.model.DynaMix.step`; the rounding order differs (the
online softmax, the blocked sums), so it agrees with the other backends to float32 precision, not bit for
bit. Without a CUDA device the kernel runs in Triton's interpreter when ``TRITON_INTERPRET=1`` is set (how
the tests check its logic on a CPU); it is otherwise refused with a clear message.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .packed_weights import PackedWeights

#: Rows per program (``tl.dot`` needs at least 16) and context frames per chunk of the online softmax.
BLOCK_B = 16
BLOCK_T = 64

#: The kernel per mode (compiled, or Triton's interpreter): decorated once on first use.
_KERNELS: dict[bool, Any] = {}


def triton_available(device: torch.device) -> str | None:
    """Why the Triton backend cannot run on ``device`` (None when it can)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return "Triton is not installed (it ships with CUDA builds of torch; pip install triton)"
    if device.type == "cuda":
        return None
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None  # Triton's interpreter runs the kernel on CPU tensors (tests)
    return f"the Triton backend runs on a CUDA device, and this model is on {device.type!r}"


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def _build_kernel() -> Any:
    """The kernel, decorated on first use (so that ``TRITON_INTERPRET`` is read when it is needed)."""
    import triton
    import triton.language as tl

    @triton.jit
    def rollout_block(
        z_ptr, frames_ptr, enc_ptr, ctx_ptr, first_ptr, eps_ptr,
        d_ptr, sigma_ptr, w1e_ptr, w1z_ptr, b1_ptr, w2_ptr, b2_ptr, a_ptr, h_ptr, w_ptr,
        bound_ptr, row_steps_ptr, out_ptr, gates_ptr,
        n_rows, n_frames, steps, n_obs, relu_from, inv_t1, inv_t2,
        M: tl.constexpr, N: tl.constexpr, J: tl.constexpr,
        MP: tl.constexpr, NP: tl.constexpr, JP: tl.constexpr,
        USE_NOISE: tl.constexpr, RECORD: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_T: tl.constexpr,
    ):  # fmt: skip
        pid = tl.program_id(0)
        rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
        live = rows < n_rows
        rows64 = rows.to(tl.int64)
        kk = tl.arange(0, MP)
        nn = tl.arange(0, NP)
        jj = tl.arange(0, JP)
        tt = tl.arange(0, BLOCK_T)
        k_ok, n_ok, j_ok = kk < M, nn < N, jj < J
        # Weights, zero-padded to powers of two (padding contributes nothing).
        d = tl.load(d_ptr + nn[:, None] * M + kk[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
        sigma = tl.load(sigma_ptr + nn, mask=n_ok, other=0.0)
        w1e = tl.load(w1e_ptr + jj[:, None] * N + nn[None, :], mask=j_ok[:, None] & n_ok[None, :], other=0.0)
        w1z = tl.load(w1z_ptr + jj[:, None] * M + kk[None, :], mask=j_ok[:, None] & k_ok[None, :], other=0.0)
        b1 = tl.load(b1_ptr + jj, mask=j_ok, other=0.0)
        w2 = tl.load(w2_ptr + jj[:, None] * J + jj[None, :], mask=j_ok[:, None] & j_ok[None, :], other=0.0)
        b2 = tl.load(b2_ptr + jj, mask=j_ok, other=0.0)
        a = tl.load(a_ptr + jj[:, None] * M + kk[None, :], mask=j_ok[:, None] & k_ok[None, :], other=0.0)
        h = tl.load(h_ptr + jj[:, None] * M + kk[None, :], mask=j_ok[:, None] & k_ok[None, :], other=0.0)
        # All experts' W^T side by side, (M, J*M) padded to (MP, JP*MP): column j*MP + k is W_j[k, :].
        wc = tl.arange(0, JP * MP)
        wj, wk = wc // MP, wc % MP
        w = tl.load(
            w_ptr + kk[:, None] * (J * M) + (wj * M + wk)[None, :],
            mask=k_ok[:, None] & ((wj < J) & (wk < M))[None, :],
            other=0.0,
        )
        z = tl.load(z_ptr + rows64[:, None] * M + kk[None, :], mask=live[:, None] & k_ok[None, :], other=0.0)
        lim = tl.load(bound_ptr + rows, mask=live, other=1.0)
        ctx = tl.load(ctx_ptr + rows, mask=live, other=0).to(tl.int64)
        first = tl.load(first_ptr + rows, mask=live, other=0)
        base = ctx * (N * n_frames)
        chan = nn[None, :, None] * n_frames
        # Each row needs its own number of steps; the program runs until its longest row is done.
        need = tl.load(row_steps_ptr + rows, mask=live, other=0)
        for s in range(0, tl.max(need, axis=0)):
            # Observation read by the gating network: D z (+ sigma * noise), (BLOCK_B, NP).
            y = tl.sum(z[:, None, :] * d[None, :, :], axis=2)
            if USE_NOISE:
                noise = tl.load(
                    eps_ptr + (s * n_rows + rows64)[:, None] * N + nn[None, :],
                    mask=live[:, None] & n_ok[None, :],
                    other=0.0,
                )
                y = y + sigma[None, :] * noise
            # Softmax attention over the row's frames, online over chunks of frames.
            top = tl.full((BLOCK_B,), -1.0e30, tl.float32)
            total = tl.zeros((BLOCK_B,), tl.float32)
            emb = tl.zeros((BLOCK_B, NP), tl.float32)
            for t0 in range(0, n_frames, BLOCK_T):
                t = t0 + tt
                ok = live[:, None] & (t[None, :] >= first[:, None]) & (t[None, :] < n_frames)
                where = base[:, None, None] + chan + t[None, None, :]
                ok3 = ok[:, None, :] & n_ok[None, :, None]
                f = tl.load(frames_ptr + where, mask=ok3, other=0.0)
                dist = tl.sum(tl.abs(f - y[:, :, None]), axis=1)
                logit = tl.where(ok, -dist * inv_t1, -1.0e30)
                new_top = tl.maximum(top, tl.max(logit, axis=1))
                rescale = tl.exp(top - new_top)
                p = tl.where(ok, tl.exp(logit - new_top[:, None]), 0.0)
                e = tl.load(enc_ptr + where, mask=ok3, other=0.0)
                total = total * rescale + tl.sum(p, axis=1)
                emb = emb * rescale[:, None] + tl.sum(p[:, None, :] * e, axis=2)
                top = new_top
            emb = emb / tl.where(total > 0.0, total, 1.0)[:, None]
            # Gating MLP and the expert weights, (BLOCK_B, JP); padded experts get weight 0.
            hid = tl.sum(emb[:, None, :] * w1e[None, :, :], axis=2) + tl.sum(z[:, None, :] * w1z[None, :, :], axis=2)
            hid = tl.maximum(hid + b1[None, :], 0.0)
            logits = -(tl.sum(hid[:, None, :] * w2[None, :, :], axis=2) + b2[None, :]) * inv_t2
            logits = tl.where(j_ok[None, :], logits, -1.0e30)
            g = tl.exp(logits - tl.max(logits, axis=1)[:, None])
            g = tl.where(j_ok[None, :], g, 0.0)
            g = g / tl.sum(g, axis=1)[:, None]
            if RECORD:
                tl.store(
                    gates_ptr + (rows64[:, None] * steps + s) * J + jj[None, :], g, mask=live[:, None] & j_ok[None, :]
                )
            # The experts z' = A z + W phi(z) + h, mixed by the gate.
            phi = tl.where(kk[None, :] >= relu_from, tl.maximum(z, 0.0), z)
            wphi = tl.reshape(tl.dot(phi, w, input_precision="ieee"), (BLOCK_B, JP, MP))
            experts = a[None, :, :] * z[:, None, :] + wphi + h[None, :, :]
            z = tl.sum(g[:, :, None] * experts, axis=1)
            z = tl.minimum(tl.maximum(z, -lim[:, None]), lim[:, None])
            tl.store(
                out_ptr + (rows64[:, None] * steps + s) * n_obs + kk[None, :],
                z,
                mask=(live & (s < need))[:, None] & (kk[None, :] < n_obs),
            )
        tl.store(z_ptr + rows64[:, None] * M + kk[None, :], z, mask=live[:, None] & k_ok[None, :])

    return rollout_block


class TritonStep:
    """The fused Triton kernel as a rollout backend (see :mod:`dynamix_forecasting.rollout`): the arguments of
    every backend, ``contexts`` ``(S, T, N)`` left-padded with their ``lengths``, ``rows`` ``(B,)``, ``z0``
    ``(B, M)``, ``bound`` ``(B,)`` or None and ``n_obs``."""

    def __init__(self, model, contexts: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor, z0, bound, n_obs):
        why = triton_available(contexts.device)
        if why is not None:
            raise ValueError(f"backend='triton' cannot run: {why}. Use backend='torch' or 'auto'.")
        interpret = os.environ.get("TRITON_INTERPRET") == "1"
        if interpret not in _KERNELS:
            _KERNELS[interpret] = _build_kernel()
        self.kernel = _KERNELS[interpret]
        w = PackedWeights.of(model)
        dev = contexts.device
        # Only the contexts these rows use are prepared (a chunk of a large batch uses few of them).
        used, ctx_index = torch.unique(rows.to(dev), return_inverse=True)
        contexts, lengths = contexts.index_select(0, used), lengths.to(dev).index_select(0, used)

        def f32(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(device=dev, dtype=torch.float32).contiguous()

        # Channel-major frames and encodings (S, N, T-1): a step reads each row's frames along t, coalesced.
        # The kernel-2 convolution written out as two products (cuDNN's conv1d may run in TF32 on a GPU).
        x = f32(contexts.transpose(1, 2))  # (S, N, T)
        kernel = f32(w.conv_weight)  # (N_out, N_in, 2)
        self.frames = x[:, :, :-1].contiguous()
        self.encoded = (
            torch.einsum("oi,sit->sot", kernel[:, :, 0], x[:, :, :-1])
            + torch.einsum("oi,sit->sot", kernel[:, :, 1], x[:, :, 1:])
            + f32(w.conv_bias)[None, :, None]
        ).contiguous()
        self.ctx = ctx_index.to(torch.int32).contiguous()
        self.first = (contexts.shape[1] - lengths).index_select(0, ctx_index).to(torch.int32).contiguous()
        self.weights = tuple(f32(t) for t in (w.d, w.sigma, w.w1e, w.w1z, w.b1, w.w2, w.b2, w.a, w.h, w.w_all))
        self.inv_t1, self.inv_t2, self.relu_from = float(w.inv_t1), float(w.inv_t2), int(w.relu_from)
        self.z = f32(z0).clone()
        batch = self.z.shape[0]
        self.bound = torch.full((batch,), float("inf"), device=dev) if bound is None else f32(bound)
        self.n_obs = n_obs
        self.m, self.n, self.j = model.M, model.N, int(w.a.shape[0])

    def advance(
        self,
        eps: torch.Tensor | None,
        expert_eps: torch.Tensor | None,
        steps: int,
        gates: torch.Tensor | None = None,
        row_steps: Any = None,
    ) -> torch.Tensor:
        """Advance every row ``steps`` steps in one launch (row ``b`` its first ``row_steps[b]`` when given, its
        later observations 0); observations ``(B, steps, n_obs)``."""
        batch = self.z.shape[0]
        dev = self.z.device
        if row_steps is None:
            out = torch.empty((batch, steps, self.n_obs), dtype=torch.float32, device=dev)
            need = torch.full((batch,), steps, dtype=torch.int32, device=dev)
        else:
            out = torch.zeros((batch, steps, self.n_obs), dtype=torch.float32, device=dev)
            need = torch.as_tensor(row_steps).to(device=dev, dtype=torch.int32).contiguous()
        record = gates is not None
        weights = torch.empty((batch, steps, self.j) if record else (1,), dtype=torch.float32, device=self.z.device)
        noise = self.z if eps is None else eps[:steps].to(self.z.device, torch.float32).contiguous()
        if batch:
            self.kernel[(-(-batch // BLOCK_B),)](
                self.z, self.frames, self.encoded, self.ctx, self.first, noise,
                *self.weights,
                self.bound, need, out, weights,
                batch, self.frames.shape[2], steps, self.n_obs, self.relu_from, self.inv_t1, self.inv_t2,
                M=self.m, N=self.n, J=self.j,
                MP=max(16, _next_power_of_two(self.m)), NP=_next_power_of_two(self.n), JP=_next_power_of_two(self.j),
                USE_NOISE=eps is not None, RECORD=record, BLOCK_B=BLOCK_B, BLOCK_T=BLOCK_T,
            )  # fmt: skip
        if gates is not None:
            gates.copy_(weights)
        return out
