"""Compiled CPU kernel of the AL-RNN mixture rollout (numba).

Per step DynaMix does only ~60 K floating-point operations per series, so on a CPU a framework's
per-operation overhead (a few microseconds for each of the ~20 torch calls of a step) dominates.
This kernel runs a whole block of steps for every row inside one compiled function: the rows are
spread over threads (``prange``), and each row's step is plain float32 loops over the context
(attention), the gating MLP and the stacked experts, with no temporaries beyond a few scratch vectors.

Each row is computed on its own, in a fixed order, so a row's forecast does not depend on the batch
it is in or on how the batch is chunked (bit for bit). The maths is that of
:meth:`dynamix_forecasting.model.DynaMix.step`; the rounding order differs (tested to agree to
float32 precision).
"""

from __future__ import annotations

import os
import sys
import threading

import numba
import numpy as np
import torch
from numba import njit, prange

from .packed_weights import PackedWeights

# GNU OpenMP (numba's default layer where libgomp is found) hangs a process forked after a parallel
# region (multiprocessing's default start method on Linux, joblib's "multiprocessing" backend).
# "forksafe" picks TBB, a fork-safe OpenMP or numba's own workqueue. A user's choice is kept.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]


def _preload_tbb() -> None:
    """Make pip's TBB wheel loadable for numba's TBB layer.

    The wheel puts ``libtbb.so.12`` in ``<prefix>/lib``, which the dynamic loader does not search in a virtual
    environment; without it "forksafe" falls back to numba's workqueue, which launches parallel regions 10-15 %
    slower on small batches (measured: 1 x 2,000 x 10,000 and 32 x 512 x 1,000). Loaded globally once, before
    numba starts its threading layer; nothing happens where the library is absent or already found.
    """
    import ctypes

    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        lib = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(lib):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            except OSError:  # pragma: no cover - a broken install: numba then uses another fork-safe layer
                pass
            return


if sys.platform.startswith("linux"):
    _preload_tbb()

# Reassociation and contraction let the reductions vectorize; NaN/inf semantics are kept (no
# 'nnan'/'ninf'), because a diverging forecast must stay visibly non-finite.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
_LOCK = threading.Lock()
# Largest experts' product (J*M x M) computed by BLAS: OpenBLAS runs a matrix-vector product below
# 2,304 x 4 = 9,216 entries on the calling thread (the kernel's threads must not each start a BLAS pool).
_BLAS_MAX = 9000
# Constants of the float32 exp (Cephes expf): ln 2 split in two, and the minimax polynomial of exp(r) on
# |r| <= ln(2)/2. Arguments below -40 give weight 0 (see _attend).
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_MIN = np.float32(-40.0)
_P0, _P1, _P2 = np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3)
_P3, _P4, _P5 = np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1)


def _attend(frames, encoded, y, t0, inv_t1, logits, powers, emb):
    """Softmax attention of ``y`` over the frames ``t0..T-1``: writes the attended encoding into ``emb``.

    Frames are channel-major ``(N, T)`` so that each loop runs over contiguous memory and vectorizes;
    the softmax weights exp(-(dist - min dist) / |temp1|) use a Cephes-style float32 exp (2**k * p(r))
    that vectorizes too, where a call to expf per frame would not. The loops run over slices starting
    at ``t0`` with indices from 0: a loop from a runtime start would need negative-index checks that
    stop the vectorizer.
    """
    n_dim = frames.shape[0]
    dist = logits[t0:]
    size = dist.shape[0]
    f0 = frames[0][t0:]
    y0 = y[0]
    for t in range(size):
        dist[t] = abs(f0[t] - y0)
    for n in range(1, n_dim):
        fn = frames[n][t0:]
        yn = y[n]
        for t in range(size):
            dist[t] += abs(fn[t] - yn)
    # Eight independent running minimums: a single chain of min() waits on each comparison in turn (min does
    # not vectorize without giving up NaN semantics). The minimum of the same values, so the same bits.
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = np.float32(np.inf)
    whole = size - size % 8
    for t in range(0, whole, 8):
        m0 = min(m0, dist[t])
        m1 = min(m1, dist[t + 1])
        m2 = min(m2, dist[t + 2])
        m3 = min(m3, dist[t + 3])
        m4 = min(m4, dist[t + 4])
        m5 = min(m5, dist[t + 5])
        m6 = min(m6, dist[t + 6])
        m7 = min(m7, dist[t + 7])
    for t in range(whole, size):
        m0 = min(m0, dist[t])
    top = min(min(min(m0, m1), min(m2, m3)), min(min(m4, m5), min(m6, m7)))
    mant = dist  # overwritten in place: the mantissa part of each weight
    pw = powers[t0:]
    for t in range(size):
        x = (top - dist[t]) * inv_t1
        keep = x > _EXP_MIN
        x = max(x, _EXP_MIN)
        k = np.floor(x * _LOG2E + np.float32(0.5))
        r = x - k * _LN2_HI - k * _LN2_LO
        q = _P0 * r + _P1
        q = q * r + _P2
        q = q * r + _P3
        q = q * r + _P4
        q = q * r + _P5
        # Weights below exp(-40) ~ 4e-18 are far below float32 resolution next to the largest (1) and
        # are set to 0: kept, their products with the encodings would be denormal and ~100x slower.
        mant[t] = (q * r * r + r) + np.float32(1.0) if keep else np.float32(0.0)
        pw[t] = (np.int32(k) + np.int32(127)) << np.int32(23)
    scale = pw.view(np.float32)
    total = np.float32(0.0)
    for t in range(size):
        e = mant[t] * scale[t]
        mant[t] = e
        total += e
    for n in range(n_dim):
        en = encoded[n][t0:]
        acc = np.float32(0.0)
        for t in range(size):
            acc += mant[t] * en[t]
        emb[n] = acc / total


def _kernel(
    z, frames, encoded, ctx_index, first_frame, eps, use_noise, d, sigma, inv_t1, w1e, w1z, b1, w2, b2, inv_t2,
    a, h, w, relu_from, bound, row_steps, out, gates, record,
):  # fmt: skip
    batch, m_dim = z.shape
    _, steps, n_obs = out.shape
    # Attention frames 0..T-2: as many as the encodings (frames may hold the context's last frame too).
    n_dim, t_frames = frames.shape[1], encoded.shape[2]
    n_exp = a.shape[0]
    jm = w.shape[1]
    blas = jm * m_dim <= _BLAS_MAX
    zero = np.float32(0.0)
    for b in prange(batch):
        c = ctx_index[b]
        t0 = first_frame[b]
        lim = bound[b]
        zb = z[b].copy()
        y = np.empty(n_dim, np.float32)
        logits = np.empty(t_frames, np.float32)
        powers = np.empty(t_frames, np.int32)
        emb = np.empty(n_dim, np.float32)
        hid = np.empty(n_exp, np.float32)
        gate = np.empty(n_exp, np.float32)
        phi = np.empty(m_dim, np.float32)
        znew = np.empty(m_dim, np.float32)
        wphi = np.empty(jm, np.float32)
        # A row stops at its own step count (rows of one call may need fewer steps than the block).
        for s in range(min(steps, row_steps[b])):
            # Observation read by the gating network: D z (+ sigma * noise).
            for n in range(n_dim):
                acc = zero
                for k in range(m_dim):
                    acc += d[n, k] * zb[k]
                if use_noise:
                    acc += sigma[n] * eps[s, b, n]
                y[n] = acc
            _attend(frames[c], encoded[c], y, t0, inv_t1, logits, powers, emb)
            # Gating MLP and the expert weights.
            for j in range(n_exp):
                acc = b1[j]
                for n in range(n_dim):
                    acc += w1e[j, n] * emb[n]
                for k in range(m_dim):
                    acc += w1z[j, k] * zb[k]
                hid[j] = acc if acc > zero else zero
            top = np.float32(-np.inf)
            for j in range(n_exp):
                acc = b2[j]
                for k in range(n_exp):
                    acc += w2[j, k] * hid[k]
                gate[j] = -acc * inv_t2
                if gate[j] > top:
                    top = gate[j]
            total = zero
            for j in range(n_exp):
                gate[j] = np.exp(gate[j] - top)
                total += gate[j]
            for j in range(n_exp):
                gate[j] /= total
            if record:
                for j in range(n_exp):
                    gates[b, s, j] = gate[j]
            # The experts z' = A z + W phi(z) + h, mixed by the gate.
            for k in range(m_dim):
                phi[k] = zb[k] if k < relu_from or zb[k] > zero else zero
            # Every expert's W_j phi at once: w is (M, J*M) with w[q, j*M + k] = W_j[k, q]. One BLAS
            # matrix-vector product (it keeps partial sums in registers; a compiled axpy per q is bound by
            # storing them), where the product is small enough that BLAS does not start threads of its own.
            if blas:
                np.dot(phi, w, wphi)
            else:
                for i in range(jm):
                    wphi[i] = zero
                for q in range(m_dim):
                    pq = phi[q]
                    if pq != zero:
                        col = w[q]
                        for i in range(jm):
                            wphi[i] += col[i] * pq
            for k in range(m_dim):
                znew[k] = zero
            for j in range(n_exp):
                g = gate[j]
                # Row views: indices from range() need no negative-index checks, so the loop vectorizes.
                wj = wphi[j * m_dim : (j + 1) * m_dim]
                aj, hj = a[j], h[j]
                for k in range(m_dim):
                    znew[k] += g * (aj[k] * zb[k] + wj[k] + hj[k])
            for k in range(m_dim):
                v = znew[k]
                if v > lim:
                    v = lim
                elif v < -lim:
                    v = -lim
                zb[k] = v
            for o in range(n_obs):
                out[b, s, o] = zb[o]
        for k in range(m_dim):
            z[b, k] = zb[k]


# error_model="numpy": a division by zero gives inf/NaN as in numpy and torch, instead of raising inside
# the kernel (a state that turns non-finite makes the attention's total 0 or NaN; that row must become
# non-finite and be reported as diverged while the other rows carry on).
_attend = njit(fastmath=_FASTMATH, cache=True, nogil=True, error_model="numpy")(_attend)
_compiled = njit(parallel=True, fastmath=_FASTMATH, cache=True, nogil=True, error_model="numpy")(_kernel)


_READY = False


def _announce_first_compilation() -> None:
    """One line on stderr when the kernel is about to be compiled (not loaded from numba's on-disk cache)."""
    global _READY
    if _READY:
        return  # checked in this process already (the dispatcher's signature list costs ~20 us per look)
    if _compiled.signatures:
        _READY = True
        return  # compiled or loaded in this process already
    try:
        index = _compiled._cache._cache_file._index_path  # type: ignore[attr-defined]  # numba internals
        cached = os.path.exists(index)
    except AttributeError:  # pragma: no cover - numba internals moved: stay silent rather than wrong
        return
    if not cached:
        print(
            "dynamix: compiling the CPU rollout kernel (numba; once per installation, a few seconds)...",
            file=sys.stderr,
            flush=True,
        )


def _encode(frames, first, weight, bias, out):  # pragma: no cover - compiled
    """The gating network's kernel-2 convolution of every context from its first real frame on."""
    n_ctx, n_in, _ = frames.shape
    n_out, _, width = weight.shape
    length = out.shape[2]
    for s in prange(n_ctx):
        for o in range(n_out):
            for t in range(first[s], length):
                acc = bias[o]
                for i in range(n_in):
                    for k in range(width):
                        acc += weight[o, i, k] * frames[s, i, t + k]
                out[s, o, t] = acc


# No fastmath: every output is computed in the fixed order above, whatever the batch.
_encode_compiled = njit(parallel=True, cache=True, nogil=True)(_encode)


def _encode_rowwise(
    frames: np.ndarray, weight: np.ndarray, bias: np.ndarray, first: np.ndarray | None = None
) -> np.ndarray:
    """The gating network's kernel-2 convolution of ``(S, N, T)`` contexts as ``(S, N, T-1)``.

    Each output is a float32 sum in a fixed order (torch's conv1d may pick another algorithm for another batch
    size, and so round differently), so each series' encoding is the same bits whatever batch it comes in.
    Frames before ``first`` (left padding) are not encoded (left at zero; the attention never reads them).
    """
    n_out, _, width = weight.shape
    length = frames.shape[2] - width + 1
    out = np.zeros((frames.shape[0], n_out, length), dtype=np.float32)
    start = np.zeros(frames.shape[0], dtype=np.int64) if first is None else np.ascontiguousarray(first, np.int64)
    _encode_compiled(np.ascontiguousarray(frames), start, np.ascontiguousarray(weight), np.ascontiguousarray(bias), out)
    return out


class NumbaStep:
    """The compiled kernel as a rollout backend: whole blocks of steps per call, rows sharing contexts.

    Parameters are those of every backend (see :mod:`dynamix_forecasting.rollout`): ``contexts``
    ``(S, T, N)`` with their ``lengths`` (left-padded), ``rows`` ``(B,)`` context of each row, ``z0``
    ``(B, M)``, ``bound`` ``(B,)`` or None, and ``n_obs`` recorded entries.
    """

    def __init__(self, model, contexts: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor, z0, bound, n_obs):

        def as32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        # Only the contexts these rows use are prepared (a chunk of a large batch uses few of them).
        if rows.numel() == contexts.shape[0] and bool(torch.equal(rows, torch.arange(rows.numel()))):
            used, ctx_index = rows, rows  # one row per context, in order (no copy of the contexts to select)
            chosen = contexts
        else:
            used, ctx_index = torch.unique(rows, return_inverse=True)
            chosen = contexts.index_select(0, used)
        frames = as32(chosen.transpose(1, 2))  # (S, N, T): channel-major, vectorizes
        w = PackedWeights.of(model)
        # Padding sits at the start: the first real attention frame is T - length.
        first_ctx = (contexts.shape[1] - lengths.index_select(0, used)).cpu().numpy()
        self.frames = frames  # (S, N, T): the kernel reads frames 0..T-2 only (no second copy)
        self.encoded = _encode_rowwise(frames, as32(w.conv_weight), as32(w.conv_bias), first_ctx)
        self.params = (
            as32(w.d),
            as32(w.sigma),
            np.float32(w.inv_t1),
            as32(w.w1e),
            as32(w.w1z),
            as32(w.b1),
            as32(w.w2),
            as32(w.b2),
            np.float32(w.inv_t2),
            as32(w.a),
            as32(w.h),
            as32(w.w_all),
            np.int64(w.relu_from),
        )
        self.ctx_index = np.ascontiguousarray(ctx_index.cpu().numpy(), dtype=np.int64)
        self.first_frame = np.ascontiguousarray(first_ctx[self.ctx_index], dtype=np.int64)
        # A private copy: the kernel advances it in place (the caller's z0 must not change).
        self.z = np.array(z0.detach().cpu().numpy(), dtype=np.float32, order="C", copy=True)
        batch = self.z.shape[0]
        self.bound = np.full(batch, np.inf, np.float32) if bound is None else as32(bound)
        self.n_obs = n_obs
        self.n_experts = int(w.a.shape[0])
        self._dummy_eps = np.zeros((1, 1, contexts.shape[2]), dtype=np.float32)

    def advance(
        self,
        eps: torch.Tensor | None,
        expert_eps: torch.Tensor | None,
        steps: int,
        gates: torch.Tensor | None = None,
        row_steps: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Advance the rows ``steps`` steps (noise ``(steps, B, N)`` or None); observations ``(B, steps, n_obs)``;
        the expert weights of each step into ``gates`` ``(B, steps, J)`` when given. ``row_steps`` ``(B,)``: row
        ``b`` computes only its first ``row_steps[b]`` steps (its later observations are 0)."""
        batch = self.z.shape[0]
        if row_steps is None:
            out = np.empty((batch, steps, self.n_obs), dtype=np.float32)
            limits = np.full(batch, steps, dtype=np.int64)
        else:
            out = np.zeros((batch, steps, self.n_obs), dtype=np.float32)
            limits = np.ascontiguousarray(row_steps, dtype=np.int64)
        record = gates is not None
        weights = np.empty((self.z.shape[0], steps if record else 0, self.n_experts), dtype=np.float32)
        use_noise = eps is not None
        noise = self._dummy_eps if eps is None else np.ascontiguousarray(eps.cpu().numpy(), dtype=np.float32)
        threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
        # The workqueue threading layer must not be entered from two threads at once.
        with _LOCK:
            _announce_first_compilation()
            numba.set_num_threads(threads)
            _compiled(
                self.z,
                self.frames,
                self.encoded,
                self.ctx_index,
                self.first_frame,
                noise,
                use_noise,
                *self.params,
                self.bound,
                limits,
                out,
                weights,
                record,
            )
        if gates is not None:
            gates.copy_(torch.from_numpy(weights))
        return torch.from_numpy(out)
