"""The training step of sparse teacher forcing as one compiled forward and hand-written backward pass.

The reference step (:func:`dynamix_forecasting.training.trainer.teacher_forced_rollout` on
:meth:`DynaMix.step` with autograd) spends almost all of its time in the overhead of thousands of
tiny torch operations per batch. Here each sequence's whole rollout and its backward pass run in one
numba loop, sequences in parallel over the CPU cores, so the arithmetic (about 60 K flops per step)
is what costs. The maths is the specification's step, differentiated by hand:

- gating: ``y = D z + sigma eps`` (``z`` detached, as in the released code), attention
  ``a = softmax(-|C - y|_1 / |tau1|)`` over the context frames, embedding ``e = sum_s a_s conv(C)[s]``,
  which equals ``W_0 sum_s a_s C[s] + W_1 sum_s a_s C[s+1] + b`` because the attention sums to one,
  expert weights ``w = softmax(-(L2 relu(L1 [e; z] + b1) + b2) / |tau2|)``;
- experts: ``z' = sum_j w_j (A_j z + W_j phi(z) + h_j)``.

A test checks the loss and every gradient against autograd on the reference step.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange

from ..model import AlmostLinearRNNExpert, DynaMix


@njit(inline="always", fastmath={"reassoc", "contract", "nsz", "arcp"})
def _exp_nonpositive(x: float) -> float:
    """``exp(x)`` for ``x <= 0`` from arithmetic alone, so that loops over it vectorize (libm's exp does not).

    ``exp(x) = exp(x / 1024) ** 1024``: a degree-14 Taylor polynomial on ``[-0.69, 0]`` (after clamping ``x`` at
    -700, where the result underflows anyway), then ten squarings; relative error below 1e-11.
    """
    u = max(x, -700.0) * (1.0 / 1024.0)
    p = 1.0 / 87178291200.0
    p = p * u + 1.0 / 6227020800.0
    p = p * u + 1.0 / 479001600.0
    p = p * u + 1.0 / 39916800.0
    p = p * u + 1.0 / 3628800.0
    p = p * u + 1.0 / 362880.0
    p = p * u + 1.0 / 40320.0
    p = p * u + 1.0 / 5040.0
    p = p * u + 1.0 / 720.0
    p = p * u + 1.0 / 120.0
    p = p * u + 1.0 / 24.0
    p = p * u + 1.0 / 6.0
    p = p * u + 0.5
    p = p * u + 1.0
    p = p * u + 1.0
    for _ in range(10):
        p = p * p
    return p


def supports(model: DynaMix) -> str | None:
    """None when the fast step handles ``model``, else the reason it does not."""
    c = model.config
    if c.expert_type != "almost_linear_rnn" or not all(isinstance(e, AlmostLinearRNNExpert) for e in model.experts):
        return f"the fast training step covers almost-linear RNN experts only, not {c.expert_type!r}"
    if c.probabilistic_expert:
        return "the fast training step does not cover probabilistic experts"
    return None


@njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, nogil=True)
def _sequence(
    ctx, teacher, target, eps, A, W, h, Wc, bc, tau1, D, sigma, L1, b1, L2, b2, tau2, Bm, P, n_interleave, scale,
    gA, gW, gh, gWc, gbc, gtau1, gD, gsigma, gL1, gL2, gtau2, gB,
    zs, zj, ws, hpre, cbar0, cbar1, ys, att, gpred,
):  # fmt: skip
    """Forward rollout and backward pass of one sequence; adds its gradients into the ``g*`` arrays.

    ``ctx`` is ``(N, T)`` (time contiguous, so the attention loops vectorize); ``teacher``, ``target``
    ``(Ts, N)``; ``eps`` ``(Ts-1, N)``. The remaining arrays after the gradients are scratch space.
    Returns the sum of squared errors of the predictions.
    """
    n_obs, t_ctx = ctx.shape
    ts = teacher.shape[0]
    n_exp, m_lat = A.shape
    frames = t_ctx - 1
    inv1 = 1.0 / abs(tau1)
    inv2 = 1.0 / abs(tau2)
    free = m_lat - P
    sse = 0.0
    # initial state: B^T x with its first N entries set to x
    for m in range(m_lat):
        acc = 0.0
        for n in range(n_obs):
            acc += teacher[0, n] * Bm[n, m]
        zs[0, m] = acc
    for n in range(n_obs):
        zs[0, n] = teacher[0, n]
    phi = np.empty(m_lat)
    u = np.empty(n_obs + m_lat)
    hid = np.empty(n_exp)
    logit = np.empty(n_exp)
    y = np.empty(n_obs)
    # ---------------------------------------------------------------- forward
    for k in range(ts - 1):
        z = zs[k]
        for n in range(n_obs):
            acc = 0.0
            for m in range(m_lat):
                acc += D[n, m] * z[m]
            y[n] = acc + sigma[n] * eps[k, n]
            ys[k, n] = y[n]
        a = att[k]
        for s in range(frames):
            a[s] = 0.0
        for n in range(n_obs):
            c = ctx[n]
            yn = y[n]
            for s in range(frames):
                a[s] -= abs(c[s] - yn)
        top = -np.inf
        for s in range(frames):
            a[s] *= inv1
            top = max(top, a[s])
        total = 0.0
        for s in range(frames):
            a[s] = _exp_nonpositive(a[s] - top)
            total += a[s]
        for s in range(frames):
            a[s] /= total
        for n in range(n_obs):
            c = ctx[n]
            s0 = 0.0
            s1 = 0.0
            for s in range(frames):
                s0 += a[s] * c[s]
                s1 += a[s] * c[s + 1]
            cbar0[k, n] = s0
            cbar1[k, n] = s1
        for o in range(n_obs):
            acc = bc[o]
            for i in range(n_obs):
                acc += Wc[o, i, 0] * cbar0[k, i] + Wc[o, i, 1] * cbar1[k, i]
            u[o] = acc
        for m in range(m_lat):
            u[n_obs + m] = z[m]
        for j in range(n_exp):
            acc = b1[j]
            for i in range(n_obs + m_lat):
                acc += L1[j, i] * u[i]
            hpre[k, j] = acc
            hid[j] = max(acc, 0.0)
        top = -np.inf
        for j in range(n_exp):
            acc = b2[j]
            for i in range(n_exp):
                acc += L2[j, i] * hid[i]
            logit[j] = -acc * inv2
            top = max(top, logit[j])
        total = 0.0
        for j in range(n_exp):
            ws[k, j] = math.exp(logit[j] - top)
            total += ws[k, j]
        for j in range(n_exp):
            ws[k, j] /= total
        for m in range(m_lat):
            phi[m] = z[m] if m < free else max(z[m], 0.0)
        znext = zs[k + 1]
        for m in range(m_lat):
            znext[m] = 0.0
        for j in range(n_exp):
            wj = ws[k, j]
            for m in range(m_lat):
                acc = A[j, m] * z[m] + h[j, m]
                row = W[j, m]
                for i in range(m_lat):
                    acc += row[i] * phi[i]
                zj[k, j, m] = acc
                znext[m] += wj * acc
        for n in range(n_obs):
            err = znext[n] - target[k + 1, n]
            sse += err * err
            gpred[k, n] = 2.0 * err * scale
        if (k + 1) % n_interleave == 0:  # sparse teacher forcing after the prediction is scored
            for n in range(n_obs):
                znext[n] = teacher[k + 1, n]
    # ---------------------------------------------------------------- backward
    gz = np.zeros(m_lat)
    gzp = np.empty(m_lat)
    gw = np.empty(n_exp)
    gphi = np.empty(m_lat)
    gu = np.empty(n_obs + m_lat)
    glog = np.empty(n_exp)
    ghid = np.empty(n_exp)
    gy = np.empty(n_obs)
    gc0 = np.empty(n_obs)
    gc1 = np.empty(n_obs)
    ga = np.empty(frames)
    dist = np.empty(frames)
    sgn1 = 1.0 if tau1 >= 0 else -1.0
    sgn2 = 1.0 if tau2 >= 0 else -1.0
    for k in range(ts - 2, -1, -1):
        z = zs[k]
        for m in range(m_lat):
            gzp[m] = gz[m]
        if (k + 1) % n_interleave == 0:  # the forced entries did not come from z
            for n in range(n_obs):
                gzp[n] = 0.0
        for n in range(n_obs):
            gzp[n] += gpred[k, n]
        for m in range(m_lat):
            phi[m] = z[m] if m < free else max(z[m], 0.0)
            gphi[m] = 0.0
            gz[m] = 0.0
        # experts and their mixture
        for j in range(n_exp):
            wj = ws[k, j]
            acc = 0.0
            for m in range(m_lat):
                acc += gzp[m] * zj[k, j, m]
            gw[j] = acc
            for m in range(m_lat):
                g = wj * gzp[m]
                gA[j, m] += g * z[m]
                gh[j, m] += g
                gz[m] += A[j, m] * g
                grow = gW[j, m]
                row = W[j, m]
                for i in range(m_lat):
                    grow[i] += g * phi[i]
                    gphi[i] += row[i] * g
        for m in range(m_lat):
            if m < free or z[m] > 0.0:
                gz[m] += gphi[m]
        # expert weights: softmax over -(L2 relu(L1 u + b1) + b2) / |tau2|
        mean = 0.0
        for j in range(n_exp):
            mean += ws[k, j] * gw[j]
        for j in range(n_exp):
            hid[j] = max(hpre[k, j], 0.0)
            ghid[j] = 0.0
        for j in range(n_exp):
            gs = ws[k, j] * (gw[j] - mean)
            acc = b2[j]
            for i in range(n_exp):
                acc += L2[j, i] * hid[i]
            gtau2[0] += gs * acc * sgn2 * inv2 * inv2
            glog[j] = -gs * inv2
        for j in range(n_exp):
            g = glog[j]
            for i in range(n_exp):
                gL2[j, i] += g * hid[i]
                ghid[i] += L2[j, i] * g
        for i in range(n_obs + m_lat):
            gu[i] = 0.0
        for n in range(n_obs):
            u[n] = bc[n]
            for i in range(n_obs):
                u[n] += Wc[n, i, 0] * cbar0[k, i] + Wc[n, i, 1] * cbar1[k, i]
        for m in range(m_lat):
            u[n_obs + m] = z[m]
        for j in range(n_exp):
            g = ghid[j] if hpre[k, j] > 0.0 else 0.0
            if g != 0.0:
                for i in range(n_obs + m_lat):
                    gL1[j, i] += g * u[i]
                    gu[i] += L1[j, i] * g
        for m in range(m_lat):
            gz[m] += gu[n_obs + m]
        # context embedding e = W0 cbar0 + W1 cbar1 + b
        for i in range(n_obs):
            gc0[i] = 0.0
            gc1[i] = 0.0
        for o in range(n_obs):
            g = gu[o]
            gbc[o] += g
            for i in range(n_obs):
                gWc[o, i, 0] += g * cbar0[k, i]
                gWc[o, i, 1] += g * cbar1[k, i]
                gc0[i] += Wc[o, i, 0] * g
                gc1[i] += Wc[o, i, 1] * g
        # attention: a = softmax(-d / |tau1|), d_s = sum_n |C[s, n] - y_n|
        a = att[k]
        for s in range(frames):
            ga[s] = 0.0
            dist[s] = 0.0
        for n in range(n_obs):
            c = ctx[n]
            g0 = gc0[n]
            g1 = gc1[n]
            yn = ys[k, n]
            for s in range(frames):
                ga[s] += g0 * c[s] + g1 * c[s + 1]
                dist[s] += abs(c[s] - yn)
        mean = 0.0
        for s in range(frames):
            mean += a[s] * ga[s]
        gt1 = 0.0
        for s in range(frames):
            ga[s] = a[s] * (ga[s] - mean)  # now the gradient of the attention logit
            gt1 += ga[s] * dist[s]
        for n in range(n_obs):
            c = ctx[n]
            yn = ys[k, n]
            acc = 0.0
            for s in range(frames):
                diff = c[s] - yn
                acc += ga[s] * ((diff > 0.0) - (diff < 0.0))
            gy[n] = acc
        gtau1[0] += gt1 * sgn1 * inv1 * inv1
        for n in range(n_obs):
            g = gy[n] * inv1
            gsigma[n] += g * eps[k, n]
            for m in range(m_lat):
                gD[n, m] += g * z[m]
    for n in range(n_obs):
        for m in range(n_obs, m_lat):
            gB[n, m] += teacher[0, n] * gz[m]
    return sse


@njit(cache=True, parallel=True, nogil=True)
def _batch(
    ctx, teacher, target, eps, A, W, h, Wc, bc, tau1, D, sigma, L1, b1, L2, b2, tau2, Bm, P, n_interleave, scale,
    n_chunks,
):  # fmt: skip
    """Sum of squared errors and gradients ``(chunks, ...)`` of a batch, chunks of sequences in parallel."""
    batch, n_obs, t_ctx = ctx.shape
    ts = teacher.shape[1]
    n_exp, m_lat = A.shape
    gA = np.zeros((n_chunks, n_exp, m_lat))
    gW = np.zeros((n_chunks, n_exp, m_lat, m_lat))
    gh = np.zeros((n_chunks, n_exp, m_lat))
    gWc = np.zeros((n_chunks, n_obs, n_obs, 2))
    gbc = np.zeros((n_chunks, n_obs))
    gtau1 = np.zeros((n_chunks, 1))
    gD = np.zeros((n_chunks, n_obs, m_lat))
    gsigma = np.zeros((n_chunks, n_obs))
    gL1 = np.zeros((n_chunks, n_exp, n_obs + m_lat))
    gL2 = np.zeros((n_chunks, n_exp, n_exp))
    gtau2 = np.zeros((n_chunks, 1))
    gB = np.zeros((n_chunks, n_obs, m_lat))
    sse = np.zeros(n_chunks)
    for c in prange(n_chunks):
        zs = np.empty((ts, m_lat))
        zj = np.empty((ts - 1, n_exp, m_lat))
        ws = np.empty((ts - 1, n_exp))
        hpre = np.empty((ts - 1, n_exp))
        cbar0 = np.empty((ts - 1, n_obs))
        cbar1 = np.empty((ts - 1, n_obs))
        ys = np.empty((ts - 1, n_obs))
        att = np.empty((ts - 1, t_ctx - 1))
        gpred = np.empty((ts - 1, n_obs))
        for b in range(c, batch, n_chunks):
            sse[c] += _sequence(
                ctx[b], teacher[b], target[b], eps[b], A, W, h, Wc, bc, tau1, D, sigma, L1, b1, L2, b2, tau2, Bm, P,
                n_interleave, scale, gA[c], gW[c], gh[c], gWc[c], gbc[c], gtau1[c], gD[c], gsigma[c], gL1[c], gL2[c],
                gtau2[c], gB[c], zs, zj, ws, hpre, cbar0, cbar1, ys, att, gpred,
            )  # fmt: skip
    grads = (
        _total(gA), _total(gW), _total(gh), _total(gWc), _total(gbc), _total(gtau1), _total(gD), _total(gsigma),
        _total(gL1), _total(gL2), _total(gtau2), _total(gB),
    )  # fmt: skip
    return sse.sum(), grads


@njit(cache=True)
def _total(per_chunk):
    """The sum over chunks, as float32 (the parameters' dtype)."""
    out = per_chunk[0].copy()
    for c in range(1, per_chunk.shape[0]):
        out += per_chunk[c]
    return out.astype(np.float32)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


def loss_and_gradients(
    model: DynaMix,
    context: torch.Tensor,
    target: torch.Tensor,
    teacher: torch.Tensor,
    n_interleave: int,
    gating_eps: torch.Tensor,
    gating_noise_weight: float,
    threads: int | None = None,
) -> tuple[float, float]:
    """Loss of one batch under sparse teacher forcing; its gradient is *added* to each parameter's ``.grad``.

    Parameters
    ----------
    model : DynaMix
        A model with almost-linear RNN experts (see :func:`supports`).
    context : torch.Tensor
        Contexts ``(Tc, B, N)``.
    target, teacher : torch.Tensor
        Clean targets and noisy teacher signal ``(Ts, B, N)``.
    n_interleave : int
        Teacher forcing every this many steps.
    gating_eps : torch.Tensor
        Standard-normal gating noise ``(Ts-1, N, B)``, one draw per step as the reference step takes it.
    gating_noise_weight : float
        ``lambda`` of the regulariser ``mean(exp(-|sigma_gate| / 0.01))``.
    threads : int, optional
        Cores to use (default: numba's thread count).

    Returns
    -------
    tuple of float
        ``(loss, mse)``, as :func:`dynamix_forecasting.training.trainer.training_loss` returns them.
    """
    reason = supports(model)
    if reason:
        raise ValueError(f"{reason}; use engine='reference'.")
    p = dict(model.named_parameters())
    n_exp = model.config.Experts
    A, W, h = (_numpy(torch.stack([p[f"experts.{j}.{k}"] for j in range(n_exp)])) for k in ("A", "W", "h"))
    gate = "gating_network."
    ts, batch, n_obs = target.shape
    ctx = np.ascontiguousarray(_numpy(context).transpose(1, 2, 0))
    scale = 1.0 / ((ts - 1) * batch * n_obs)
    if threads:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    n_chunks = max(1, min(batch, 2 * numba.get_num_threads()))
    sse, grads = _batch(
        ctx, np.ascontiguousarray(_numpy(teacher).transpose(1, 0, 2)),
        np.ascontiguousarray(_numpy(target).transpose(1, 0, 2)),
        np.ascontiguousarray(_numpy(gating_eps).transpose(2, 0, 1)), A, W, h, _numpy(p[gate + "conv.weight"]),
        _numpy(p[gate + "conv.bias"]), float(p[gate + "softmax_temp1"].item()), _numpy(p[gate + "D"]),
        _numpy(p[gate + "sigma"]), _numpy(p[gate + "mlp_layer1.weight"]), _numpy(p[gate + "mlp_layer1.bias"]),
        _numpy(p[gate + "mlp_layer2.weight"]), _numpy(p[gate + "mlp_layer2.bias"]),
        float(p[gate + "softmax_temp2"].item()), _numpy(p["B"]), model.config.P, n_interleave, scale, n_chunks,
    )  # fmt: skip
    gA, gW, gh, gWc, gbc, gtau1, gD, gsigma, gL1, gL2, gtau2, gB = (torch.from_numpy(x) for x in grads)
    per_param = {
        "conv.weight": gWc, "conv.bias": gbc, "softmax_temp1": gtau1, "D": gD, "sigma": gsigma,
        "mlp_layer1.weight": gL1, "mlp_layer2.weight": gL2, "softmax_temp2": gtau2,
    }  # fmt: skip
    grads_by_name = {gate + k: v for k, v in per_param.items()} | {"B": gB}
    for j in range(n_exp):
        grads_by_name |= {f"experts.{j}.A": gA[j], f"experts.{j}.W": gW[j], f"experts.{j}.h": gh[j]}
    for name, grad in grads_by_name.items():
        param = p[name]
        if param.requires_grad:
            param.grad = grad if param.grad is None else param.grad + grad
    mse = sse * scale
    # the regulariser is 3 numbers: autograd does it
    sigma = p[gate + "sigma"]
    reg = torch.mean(torch.exp(-sigma.abs() / 0.01))
    if sigma.requires_grad:
        (gating_noise_weight * reg).backward()
    return mse + gating_noise_weight * float(reg.detach()), mse
