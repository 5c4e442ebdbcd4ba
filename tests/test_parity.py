"""The authors' reference forecasts (gating noise off) are reproduced."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from dynamix_forecasting import DynaMix, DynaMixConfig
from dynamix_forecasting.rollout import NoiseStreams, rollout

from .conftest import PARITY

CASES = sorted(json.loads((PARITY / "cases.json").read_text())) if (PARITY / "cases.json").exists() else ["missing"]


@pytest.mark.parametrize("case", CASES)
def test_parity_case(case, pipeline, parity_dir):
    spec = json.loads((parity_dir / "cases.json").read_text())[case]
    data = np.load(parity_dir / f"{case}.npz")
    context, expected = data["context"], data["expected"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the five-channel case warns about splitting channels
        forecast = pipeline.forecast(context, spec["horizon"], noise=False, **spec["kwargs"])
    assert forecast.shape == expected.shape
    channel_std = context.reshape(context.shape[0], -1, context.shape[-1]).std(0)
    error = np.abs(forecast - expected) / channel_std
    assert error.max() <= 1e-3, f"{case}: max |forecast - expected| / std = {error.max():.3g}"


@pytest.mark.parametrize(
    ("n", "m", "experts", "p"), [(1, 4, 2, 1), (3, 30, 10, 2), (4, 16, 5, 3), (6, 64, 16, 2), (2, 9, 1, 0)]
)
def test_fused_step_matches_reference_step(n, m, experts, p):
    torch.manual_seed(n * 100 + m)
    model = DynaMix(DynaMixConfig(M=m, N=n, Experts=experts, P=p))
    with torch.no_grad():  # make the random model less contractive so states stay O(1)
        for e in model.experts:
            e.W.normal_(0, 0.3 / m**0.5)
        model.gating_network.mlp_layer1.weight.normal_(0, 0.5)
        model.gating_network.mlp_layer2.weight.normal_(0, 0.5)
    context = torch.randn(50, 7, n)
    z0 = model.initial_state(context[-1])
    streams = NoiseStreams.fresh(7, seed=1)
    ref = rollout(model, context, z0, 20, fused=False, streams=streams).observations
    fast = rollout(model, context, z0, 20, fused=True, streams=streams).observations
    scale = ref.abs().max().clamp_min(1.0)
    assert torch.allclose(fast[:5], ref[:5], atol=1e-5 * scale, rtol=1e-5)
    assert torch.allclose(fast, ref, atol=1e-3 * scale, rtol=1e-3)


def test_default_engine_is_exact_only_without_noise(pipeline, parity_dir):
    data = np.load(parity_dir / "lorenz63_dsr.npz")
    exact = pipeline.forecast(data["context"], 100, noise=False)
    fused = pipeline.forecast(data["context"], 100, noise=False, exact=False)
    assert np.array_equal(exact, pipeline.forecast(data["context"], 100, noise=False, exact=True))
    # Same maths, different rounding order: equal to float32 precision at first, then chaos amplifies.
    assert np.abs(fused[:10] - exact[:10]).max() < 1e-4
