"""The fused GPU kernel's logic, checked on the CPU in Triton's interpreter (``TRITON_INTERPRET=1``).

The same kernel source runs compiled on a CUDA device (``tests/test_cuda.py`` covers that where torch sees
one). Here it runs on CPU tensors and must agree with the fused torch step, the other GPU backend, to
float32 precision: left-padded contexts, rows sharing a context, noise, the divergence bound and the
recorded expert weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamix_forecasting.rollout import NoiseStreams, rollout

from .conftest import skip_outside_ci

if torch.cuda.is_available():  # conftest chooses the interpreter only without CUDA
    pytest.skip("a CUDA device is present: the kernel runs compiled in tests/test_cuda.py", allow_module_level=True)
try:
    import triton  # noqa: F401
except ImportError:  # pragma: no cover - the test extra installs it
    skip_outside_ci("Triton is not installed (pip install triton, or the test extra).", allow_module_level=True)


def _batch(seed: int = 0):
    """Five contexts of different lengths (left-padded to 150), 12 rows: each context used two or three times."""
    rng = np.random.default_rng(seed)
    t_len = 150
    ctx = torch.tensor(rng.standard_normal((5, t_len, 3)).cumsum(1).astype(np.float32) * 0.1)
    lengths = torch.tensor([150, 90, 40, 150, 70])
    for s in range(5):
        ctx[s, : t_len - lengths[s]] = 0
    rows = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 2])
    return ctx, lengths, rows


@pytest.mark.parametrize("noise", [False, True])
def test_triton_kernel_matches_the_fused_torch_step(released_model, noise):
    ctx, lengths, rows = _batch()
    z0 = released_model.initial_state(ctx[rows, -1, :]).t().contiguous()
    stream_of = torch.tensor([0, 1, 2, 0, 1, 2, 1, 2, 0, 1, 0, 2])  # rows 0 and 10: one context, one stream
    streams = NoiseStreams([1, 2, 3], rows=stream_of)
    results = {
        backend: rollout(
            released_model, ctx, z0, 25, lengths=lengths, rows=rows, noise=noise, streams=streams,
            backend=backend, record_weights=True,
        )
        for backend in ("torch", "triton")
    }  # fmt: skip
    torch_run, triton_run = results["torch"], results["triton"]
    assert triton_run.observations.shape == (12, 25, 3)
    # The first steps agree to float32 rounding (chaos amplifies it later: compare the first ten).
    scale = ctx.abs().max()
    assert (triton_run.observations[:, :10] - torch_run.observations[:, :10]).abs().max() < 1e-5 * scale
    assert (triton_run.expert_weights[:, :10] - torch_run.expert_weights[:, :10]).abs().max() < 1e-5
    np.testing.assert_allclose(triton_run.expert_weights.sum(-1), 1.0, atol=1e-5)
    # Rows that share a context and a stream are the same forecast.
    same = (rows == 0) & (stream_of == 0)
    assert same.sum() == 2 and torch.equal(*triton_run.observations[same])
    assert torch.equal(triton_run.diverged_at, torch_run.diverged_at)


def test_triton_kernel_applies_the_divergence_bound(released_model):
    ctx, lengths, rows = _batch(1)
    z0 = released_model.initial_state(ctx[rows, -1, :]).t().contiguous() * 50  # far outside the context
    bound = torch.full((rows.numel(),), 2.0)
    common = dict(lengths=lengths, rows=rows, noise=False, bound=bound, threshold=torch.full((12,), 1.5))
    guarded = rollout(released_model, ctx, z0, 12, backend="triton", **common)
    reference = rollout(released_model, ctx, z0, 12, backend="torch", **common)
    assert guarded.observations.abs().max() <= 2.0
    np.testing.assert_allclose(guarded.observations, reference.observations, atol=1e-4)
    assert torch.equal(guarded.diverged_at, reference.diverged_at) and (guarded.diverged_at > 0).any()


def test_pipeline_forecasts_through_the_triton_backend(pipeline, lorenz):
    context = lorenz[:200]
    via_triton = pipeline.forecast(context, 12, seed=3, backend="triton", num_samples=2)
    via_torch = pipeline.forecast(context, 12, seed=3, backend="torch", num_samples=2)
    assert via_triton.shape == (2, 12, 3)
    np.testing.assert_allclose(via_triton[:, :8], via_torch[:, :8], atol=1e-4 * lorenz.std())


def test_triton_backend_on_a_cpu_without_the_interpreter_is_refused(pipeline, lorenz, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=r"CUDA device.*backend='torch'"):
        pipeline.forecast(lorenz[:200], 5, backend="triton")


def test_time_series_mode_through_the_triton_backend(pipeline):
    """The time-series mode's many short rollouts (every candidate and origin) through the kernel agree with the
    compiled CPU kernel's to float precision."""
    rng = np.random.default_rng(4)
    t = np.arange(60)
    series = [20 + 3 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.3, t.size) for i in range(3)]
    q_cpu, cpu = pipeline.predict_quantiles(series, 6, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    q_tri, tri = pipeline.predict_quantiles(
        series, 6, [0.1, 0.5, 0.9], mode="time_series", season_length=12, backend="triton"
    )
    np.testing.assert_allclose(tri, cpu, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(q_tri, q_cpu, rtol=1e-4, atol=1e-4)
