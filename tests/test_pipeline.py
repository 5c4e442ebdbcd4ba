"""The forecasting pipeline: input forms, batching, ensembles, seeds, and clear errors on bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting import DynaMixPipeline, quantiles


def test_input_forms_agree(pipeline, lorenz):
    ctx = lorenz[:600]
    ref = pipeline.forecast(ctx, 30, noise=False)
    as_torch = pipeline.forecast(torch.tensor(ctx, dtype=torch.float64), 30, noise=False)
    as_frame = pipeline.forecast(pd.DataFrame(ctx, columns=list("xyz")), 30, noise=False)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    assert np.allclose(as_torch.numpy(), ref, atol=1e-5)
    assert np.array_equal(as_frame, ref)
    panel = pipeline.forecast(np.stack([ctx, lorenz[1000:1600]], axis=1), 30, noise=False)
    assert panel.shape == (30, 2, 3)
    assert np.allclose(panel[:, 0], ref, atol=1e-4)


def test_unequal_length_list_equals_series_one_by_one(pipeline, lorenz):
    series = [lorenz[:700], lorenz[2000:2400], lorenz[5000:5550]]
    batched = pipeline.forecast(series, 40, noise=False)
    assert batched.shape == (40, 3, 3)
    fused = pipeline.forecast(series, 40, noise=False, backend="torch")  # the fast step masks padding too
    for i, s in enumerate(series):
        alone = pipeline.forecast(s, 40, noise=False)
        assert np.allclose(batched[:, i], alone, atol=1e-4), i
        assert np.allclose(fused[:10, i], alone[:10], atol=1e-3), i


def test_univariate_series_and_1d_input(pipeline, example):
    sine = example("sine").ravel()
    out = pipeline.forecast(sine[:400], 112, noise=False)
    assert out.shape == (112,)
    # the oscillation continues in phase: close to the true continuation
    assert np.corrcoef(out, sine[400:])[0, 1] > 0.9
    assert np.abs(out - sine[400:]).mean() < 0.35 * sine.std()


def test_seed_reproducible_and_global_rng_untouched(pipeline, lorenz):
    state = torch.get_rng_state()
    a = pipeline.forecast(lorenz[:500], 50, seed=7)
    b = pipeline.forecast(lorenz[:500], 50, seed=7)
    c = pipeline.forecast(lorenz[:500], 50, seed=8)
    assert torch.equal(state, torch.get_rng_state())
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_ensemble_shapes_and_spread(pipeline, lorenz):
    samples = pipeline.forecast(lorenz[:800], 200, num_samples=16, seed=0)
    assert samples.shape == (16, 200, 3)
    spread = samples.std(0)
    assert spread[:3].max() < 0.1 < spread[-50:].mean()  # paths start together and fan out (chaos)
    q = quantiles(samples, [0.1, 0.5, 0.9])
    assert q.shape == (200, 3, 3) and (q[..., 0] <= q[..., 1]).all() and (q[..., 1] <= q[..., 2]).all()
    np.testing.assert_allclose(q[..., 1], np.median(samples, axis=0))  # quantiles on the last axis
    panel = pipeline.forecast(np.stack([lorenz[:800]] * 2, axis=1), 10, num_samples=4, seed=0)
    assert panel.shape == (4, 10, 2, 3)
    tq = quantiles(torch.tensor(samples), 0.5)
    assert tq.shape == (200, 3)


def test_more_channels_than_model_are_forecast_one_by_one(pipeline, lorenz):
    five = np.concatenate([lorenz[:400], lorenz[3000:3400, :2]], axis=1)
    with pytest.warns(UserWarning, match="5 channels"):
        out = pipeline.forecast(five, 20, noise=False)
    alone = pipeline.forecast(five[:, [3]], 20, noise=False)
    assert out.shape == (20, 5) and np.allclose(out[:, 3], alone[:, 0], atol=1e-4)


def test_constant_channel_is_forecast_as_constant(pipeline, lorenz):
    ctx = lorenz[:500].copy()
    ctx[:, 2] = 4.2
    out = pipeline.forecast(ctx, 30, seed=0)
    assert np.isfinite(out).all() and np.all(out[:, 2] == 4.2)
    flat = pipeline.forecast(np.full(100, -1.5), 10, seed=0)
    assert np.all(flat == -1.5)


def test_initial_x_full_and_partial(pipeline, lorenz):
    ctx = lorenz[:1000]
    start = lorenz[1500]
    out = pipeline.forecast(ctx, 5, noise=False, initial_x=start)
    # the first forecast step moves only a little away from the given initial condition
    assert np.abs(out[0] - start).max() < 0.3
    partial = pipeline.forecast(ctx[:, :1], 5, noise=False, initial_x=start[:1])
    assert abs(partial[0, 0] - start[0]) < 0.3


def test_nonstationary_mode_follows_a_trend(pipeline):
    t = np.arange(300, dtype=float)
    trend = 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12)
    out = pipeline.forecast(trend, 24, fit_nonstationary=True, seed=0)
    assert out.mean() > trend[-24:].mean()  # keeps rising instead of reverting to the context mean


def test_batch_size_chunks_give_same_noise_free_result(pipeline, lorenz):
    ctx = np.stack([lorenz[i * 300 : i * 300 + 300] for i in range(5)], axis=1)
    # BLAS kernels depend on the batch size, so the float32 rounding (not the maths) may differ.
    whole, chunked = pipeline.forecast(ctx, 20, noise=False), pipeline.forecast(ctx, 20, noise=False, batch_size=2)
    assert np.allclose(whole, chunked, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"context": np.array([[1.0, np.nan, 2.0]] * 50)}, ValueError, "NaN/inf.*fill"),
        ({"context": np.ones((2, 3))}, ValueError, "at least 3"),
        ({"context": np.zeros((3, 4, 5, 6))}, ValueError, "rank 4"),
        ({"horizon": 0}, ValueError, "positive int"),
        ({"horizon": 2.5}, TypeError, "positive int"),
        ({"preprocessing_method": "fourier"}, ValueError, "Unknown preprocessing_method"),
        ({"fit_nonstationary": True, "initial_x": [0.0, 0.0, 0.0]}, ValueError, "initial_x cannot"),
        ({"initial_x": [0.0, 1.0]}, ValueError, "initial_x has shape"),
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"context": [np.zeros((50, 2)), np.zeros((50, 3))]}, ValueError, "same number of channels"),
        ({"context": "abc"}, TypeError, "numeric"),
        ({"context": np.arange(10.0), "preprocessing_method": "delay_embedding"}, ValueError, None),
    ],
)
def test_bad_input_is_named(tiny_pipeline, kwargs, error, match):
    call = {"context": np.random.default_rng(0).standard_normal((60, 3)), "horizon": 5, **kwargs}
    if match is None:  # a valid edge case: must not raise
        assert np.isfinite(tiny_pipeline.forecast(**call)).all()
        return
    with pytest.raises(error, match=match):
        tiny_pipeline.forecast(**call)


def test_pipeline_needs_a_model():
    with pytest.raises(TypeError, match="DynaMix model"):
        DynaMixPipeline("dynamix-3d-alrnn-v1.0")


def test_no_warning_for_a_normal_forecast(pipeline, lorenz):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline.forecast(lorenz[:2000], 2000, seed=0)


def test_noise_is_batch_horizon_and_chunk_invariant(pipeline, lorenz):
    long = pipeline.forecast(lorenz[:500], 300, seed=11, num_samples=3)
    short = pipeline.forecast(lorenz[:500], 40, seed=11, num_samples=3)
    assert np.array_equal(long[:, :40], short)  # a shorter horizon is a prefix of a longer one
    panel = pipeline.forecast([lorenz[:500], lorenz[4000:4700]], 40, seed=11, num_samples=3)
    chunked = pipeline.forecast([lorenz[:500], lorenz[4000:4700]], 40, seed=11, num_samples=3, batch_size=2)
    assert np.array_equal(panel, chunked)  # rows are computed independently of their batch
    assert np.allclose(panel[:, :, 0], short, atol=1e-4)  # alone or in a batch: same noise, same forecast
    assert not np.allclose(long[0], long[1])  # samples use different streams
