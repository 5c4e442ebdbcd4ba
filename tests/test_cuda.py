"""The engine and the adapters on a CUDA device (run where torch sees one; CI machines have none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting import DynaMixPipeline, load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")


@pytest.fixture(scope="module")
def gpu_pipeline(released_path):
    return DynaMixPipeline(load_model(released_path, device="cuda"))


def test_cuda_forecasts_match_the_cpu(gpu_pipeline, pipeline, lorenz):
    """The noise is drawn on the CPU for every device, so a seed gives the same noise on the GPU: the forecasts
    of one seed agree to float rounding (over the first steps, before chaos amplifies the rounding)."""
    lorenz = lorenz[:1000]
    gpu = gpu_pipeline.forecast(lorenz, 50, seed=0)  # the fused torch step on the GPU
    cpu = pipeline.forecast(lorenz, 50, seed=0, backend="torch")
    assert np.abs(gpu[:10] - cpu[:10]).max() < 1e-3 * lorenz.std()
    exact_gpu = gpu_pipeline.forecast(lorenz, 50, noise=False)
    exact_cpu = pipeline.forecast(lorenz, 50, noise=False)
    assert np.abs(exact_gpu[:10] - exact_cpu[:10]).max() < 1e-3 * lorenz.std()
    tensor_in = gpu_pipeline.forecast(torch.tensor(lorenz, device="cuda"), 20, seed=0, num_samples=4)
    assert tensor_in.device.type == "cuda" and tensor_in.shape == (4, 20, 3)
    with pytest.raises(ValueError, match="CPU device"):
        gpu_pipeline.forecast(lorenz, 5, backend="numba")


def test_adapters_on_cuda(lorenz, released_path):
    # Imported here: a GPU machine without the adapters' libraries still runs the engine's tests above.
    darts = pytest.importorskip("darts", reason="darts is not installed on this GPU machine")
    pytest.importorskip("sktime", reason="sktime is not installed on this GPU machine")
    from dynamix_forecasting.darts import DynaMixModel
    from dynamix_forecasting.sktime import DynaMixForecaster

    lorenz = lorenz[:600]
    frame = pd.DataFrame(lorenz, columns=list("xyz"))
    cuda = DynaMixForecaster(model=released_path, device="cuda", num_samples=8, random_state=0).fit(frame)
    cpu = DynaMixForecaster(model=released_path, num_samples=8, random_state=0).fit(frame)
    np.testing.assert_allclose(cuda.predict(fh=[1, 2, 3]), cpu.predict(fh=[1, 2, 3]), atol=1e-3)
    series = darts.TimeSeries.from_values(lorenz)
    forecast = DynaMixModel(model=released_path, device="cuda", random_state=0).fit(series).predict(10)
    assert forecast.n_timesteps == 10 and np.isfinite(forecast.values()).all()


def test_triton_rollout_on_cuda_matches_the_cpu(gpu_pipeline, pipeline, lorenz):
    """The fused Triton kernel (opt-in) against the CPU's fused torch step, same seed (noise drawn on the CPU):
    equal to float rounding over the first steps; a long horizon (many launches of one block) stays finite."""
    lorenz = lorenz[:1000]
    gpu = gpu_pipeline.forecast(lorenz, 50, seed=0, backend="triton")
    cpu = pipeline.forecast(lorenz, 50, seed=0, backend="torch")
    assert np.abs(gpu[:10] - cpu[:10]).max() < 1e-3 * lorenz.std()
    exact = gpu_pipeline.forecast(lorenz, 50, noise=False, backend="triton")
    assert np.abs(exact[:10] - pipeline.forecast(lorenz, 50, noise=False)[:10]).max() < 1e-3 * lorenz.std()
    long = gpu_pipeline.forecast(lorenz, 2_000, seed=0, backend="triton", divergence_guard=10.0)
    assert np.isfinite(long).all() and long.shape == (2_000, 3)
    batch = np.stack([lorenz[i : i + 600] for i in range(0, 400, 20)], axis=1)  # (600, 20, 3)
    many = gpu_pipeline.forecast(batch, 30, seed=1, backend="triton")
    one = gpu_pipeline.forecast(batch[:, 7], 30, seed=1, backend="triton")
    assert np.abs(many[:10, 7] - one[:10]).max() < 1e-4 * lorenz.std()


def test_time_series_mode_on_cuda(gpu_pipeline, pipeline):
    """The time-series mode's rollouts run on the device (fused torch step, or Triton when asked for) and give
    the CPU's forecasts to float precision."""
    rng = np.random.default_rng(0)
    t = np.arange(120)
    series = [10 + np.sin(2 * np.pi * t / 12) * (1 + i / 5) + rng.normal(0, 0.2, t.size) for i in range(6)]
    _, cpu = pipeline.predict_quantiles(series, 12, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    for backend in ("auto", "triton"):
        _, gpu = gpu_pipeline.predict_quantiles(
            series, 12, [0.1, 0.5, 0.9], mode="time_series", season_length=12, backend=backend
        )
        np.testing.assert_allclose(np.asarray(gpu), np.asarray(cpu), rtol=1e-3, atol=1e-3)
