"""The engine and the adapters on a CUDA device (run where torch sees one; CI machines have none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from darts import TimeSeries

from dynamix_forecasting import DynaMixPipeline, load_model
from dynamix_forecasting.darts import DynaMixModel
from dynamix_forecasting.sktime import DynaMixForecaster

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
    lorenz = lorenz[:600]
    frame = pd.DataFrame(lorenz, columns=list("xyz"))
    cuda = DynaMixForecaster(model=released_path, device="cuda", num_samples=8, random_state=0).fit(frame)
    cpu = DynaMixForecaster(model=released_path, num_samples=8, random_state=0).fit(frame)
    np.testing.assert_allclose(cuda.predict(fh=[1, 2, 3]), cpu.predict(fh=[1, 2, 3]), atol=1e-3)
    series = TimeSeries.from_values(lorenz)
    forecast = DynaMixModel(model=released_path, device="cuda", random_state=0).fit(series).predict(10)
    assert forecast.n_timesteps == 10 and np.isfinite(forecast.values()).all()
