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

CASES = sorted(json.loads((PARITY / "cases.json").read_text()))


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
    # The rollout repeats the published float32 operations, but the last bit of a matrix product depends
    # on the CPU's BLAS kernel; the dynamics amplify such a difference over the horizon. So: float32
    # precision over the first ten steps on any machine, and a bounded drift over the whole horizon.
    assert error[:10].max() <= 1e-5, f"{case}: first 10 steps, max |forecast - expected| / std = {error[:10].max():.3g}"
    assert error.max() <= 0.05, f"{case}: max |forecast - expected| / std = {error.max():.3g}"


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize(
    ("n", "m", "experts", "p"),
    [(1, 4, 2, 1), (3, 30, 10, 2), (4, 16, 5, 3), (6, 64, 16, 2), (2, 9, 1, 0), (5, 40, 16, 40)],
)
def test_fast_steps_match_reference_step(n, m, experts, p, backend):
    torch.manual_seed(n * 100 + m)
    model = DynaMix(DynaMixConfig(M=m, N=n, Experts=experts, P=p))
    with torch.no_grad():  # make the random model less contractive so states stay O(1)
        for e in model.experts:
            e.W.normal_(0, 0.3 / m**0.5)
        model.gating_network.mlp_layer1.weight.normal_(0, 0.5)
        model.gating_network.mlp_layer2.weight.normal_(0, 0.5)
    context = torch.randn(7, 50, n)  # (series, time, channels)
    z0 = model.initial_state(context[:, -1]).t()
    streams = NoiseStreams.fresh(7, seed=1)
    ref = rollout(model, context, z0, 20, backend="reference", streams=streams).observations
    fast = rollout(model, context, z0, 20, backend=backend, streams=streams).observations
    scale = ref.abs().max().clamp_min(1.0)
    assert torch.allclose(fast[:, :5], ref[:, :5], atol=1e-5 * scale, rtol=1e-5)
    assert torch.allclose(fast, ref, atol=1e-3 * scale, rtol=1e-3)


def test_default_engine_is_exact_only_without_noise(pipeline, parity_dir):
    data = np.load(parity_dir / "lorenz63_dsr.npz")
    exact = pipeline.forecast(data["context"], 100, noise=False)
    fused = pipeline.forecast(data["context"], 100, noise=False, backend="torch")
    assert np.array_equal(exact, pipeline.forecast(data["context"], 100, noise=False, backend="reference"))
    # Same maths, different rounding order: equal to float32 precision at first, then chaos amplifies.
    assert np.abs(fused[:10] - exact[:10]).max() < 1e-4


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_fast_steps_with_masks_shared_contexts_and_bounds(backend):
    torch.manual_seed(3)
    model = DynaMix(DynaMixConfig(M=12, N=3, Experts=4, P=2))
    with torch.no_grad():
        for e in model.experts:
            e.W.normal_(0, 0.5 / 12**0.5)
        model.gating_network.mlp_layer1.weight.normal_(0, 0.5)
    context = torch.randn(3, 40, 3)
    lengths = torch.tensor([40, 25, 40])  # series 1 is left-padded by 15 frames
    context[1, :15] = 0.0
    rows = torch.tensor([0, 1, 2, 0, 1, 2])  # two samples per series, sharing the contexts
    z0 = model.initial_state(context[:, -1].index_select(0, rows)).t()
    streams = NoiseStreams([5, 6], rows=torch.tensor([0, 0, 0, 1, 1, 1]))
    kwargs = dict(lengths=lengths, rows=rows, streams=streams, bound=torch.full((6,), 0.8))
    ref = rollout(model, context, z0, 15, backend="reference", **kwargs).observations
    fast = rollout(model, context, z0, 15, backend=backend, **kwargs).observations
    assert ref.abs().max() <= 0.8 + 1e-6  # the bound is applied
    assert torch.allclose(fast[:, :5], ref[:, :5], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast[0], fast[3])  # the two samples have their own noise
    # the padding really is ignored: series 1 alone, without its padding, gives the same path
    alone = rollout(
        model, context[1:2, 15:], z0[[1]], 15, streams=NoiseStreams([5]), bound=torch.full((1,), 0.8), backend=backend
    ).observations
    assert torch.allclose(alone[0], fast[1], atol=1e-5, rtol=1e-5)


def test_numba_rows_do_not_depend_on_their_batch():
    torch.manual_seed(4)
    model = DynaMix(DynaMixConfig(M=16, N=3, Experts=5, P=2))
    context = torch.randn(8, 60, 3)
    z0 = model.initial_state(context[:, -1], batch_invariant=True).t()
    streams = NoiseStreams.fresh(8, seed=2)
    full = rollout(model, context, z0, 30, backend="numba", streams=streams).observations
    part = rollout(
        model,
        context[5:6],
        model.initial_state(context[5:6, -1], batch_invariant=True).t(),
        30,
        backend="numba",
        streams=streams.subset(5, 6),
    ).observations
    assert torch.equal(full[5:6], part)  # bit for bit


def test_numba_threads_follow_torch():
    import numba

    torch.manual_seed(0)
    model = DynaMix(DynaMixConfig(M=8, N=3, Experts=2, P=1))
    context = torch.randn(4, 30, 3)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # e.g. inside a joblib worker: no oversubscription
        rollout(model, context, model.initial_state(context[:, -1]).t(), 5, backend="numba")
        assert numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_noise_of_a_seed_is_drawn_on_the_cpu_for_every_device():
    """A seed means the same noise on every device: the streams' generators are CPU generators, whatever
    device the rollout runs on (the draws are copied there)."""
    streams = NoiseStreams.fresh(3, seed=5)
    for device in ("cpu", "cuda", torch.device("cpu")):
        assert all(g.device.type == "cpu" for g in streams.generators(device))
    from dynamix_forecasting.rollout import _draw

    a = _draw(streams.generators(), streams.rows, (3,), torch.device("cpu"), torch.float32)
    b = _draw(NoiseStreams.fresh(3, seed=5).generators("cuda"), streams.rows, (3,), torch.device("cpu"), torch.float32)
    assert torch.equal(a, b)
