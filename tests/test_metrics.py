"""D_stsp, D_H and MASE on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamix_forecasting import geometrical_misalignment, mase, temporal_misalignment


def _circle(n=4000, phase=0.0, radius=1.0):
    t = np.linspace(0, 40 * np.pi, n) + phase
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def test_identical_trajectories_score_zero():
    x = _circle()
    assert geometrical_misalignment(x, x) == pytest.approx(0.0, abs=1e-12)
    assert temporal_misalignment(x, x) == pytest.approx(0.0, abs=1e-6)


def test_dstsp_grows_with_geometric_mismatch_and_accepts_torch():
    rng = np.random.default_rng(1)
    true = rng.standard_normal((20000, 2))
    near, far = rng.standard_normal((20000, 2)) + 0.1, 0.3 * rng.standard_normal((20000, 2)) + 1.5
    d_near = geometrical_misalignment(near, true)
    d_far = geometrical_misalignment(torch.tensor(far), torch.tensor(true))
    assert 0 < d_near < 1.0 < d_far


def test_dstsp_gmm_variant_above_three_dimensions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 5))
    same = geometrical_misalignment(x, x)
    shifted = geometrical_misalignment(x + 3.0, x)
    assert abs(same) < 0.05 and shifted > 2.0


def test_dh_detects_different_frequency():
    t = np.arange(5000)
    slow, fast = np.sin(2 * np.pi * t / 100)[:, None], np.sin(2 * np.pi * t / 20)[:, None]
    assert temporal_misalignment(slow, slow) < 1e-6
    assert temporal_misalignment(fast, slow) > 0.9


def test_mase_scales_by_true_series():
    truth = np.arange(20, dtype=float)[:, None]  # lag-1 differences of 1
    forecast = truth + 2.0
    assert mase(forecast, truth, steps=10) == pytest.approx(2.0)
    # swapping the arguments (the notebooks' order) gives a different number when the forecast is flat
    flat = np.zeros((20, 1))
    with pytest.raises(ValueError, match="constant"):
        mase(truth, flat)
    assert mase(flat, truth) == pytest.approx(4.5)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="channels"):
        geometrical_misalignment(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="shape"):
        temporal_misalignment(np.zeros((2, 2, 2)), np.zeros((10, 2)))


def test_constant_forecast_has_maximal_spectral_distance():
    from dynamix_forecasting import temporal_misalignment

    t = np.linspace(0, 60, 3000)
    truth = np.stack([np.sin(t), np.cos(1.3 * t)], axis=1)
    constant = np.full_like(truth, 0.2)
    assert temporal_misalignment(constant, truth) == 1.0  # no spectrum at all: not a perfect score
    assert temporal_misalignment(constant, constant) == 0.0
    assert temporal_misalignment(truth, truth) < 1e-6
