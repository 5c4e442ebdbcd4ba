"""Systems on which the published model blows up are detected, reported and can be guarded."""

from __future__ import annotations

import numpy as np
import pytest

from dynamix_forecasting import DivergenceWarning


# WangSun diverges noise-free on some CPUs only (the last bit of a BLAS product decides); the numba path
# with the noise on is tested on it in test_reliability.py.
@pytest.mark.parametrize("system", ["LiuChen", "ZhouChen"])
def test_divergence_is_reported_and_guard_keeps_forecast_finite(pipeline, dysts_dir, system):
    context = np.load(dysts_dir / f"{system}.npy")[:2000]
    with pytest.warns(DivergenceWarning, match=r"series 0 at step \d+.*divergence_guard") as record:
        raw = pipeline.forecast(context, 4000, noise=False)
    assert not np.isfinite(raw).all()  # the published model really does blow up here
    step = int(str(record[0].message).split("at step ")[1].split(".")[0])
    first_bad = int(np.argmax(~np.isfinite(raw).all(1))) + 1
    assert 1 <= step <= first_bad
    with pytest.warns(DivergenceWarning, match="guard bounded"):
        guarded = pipeline.forecast(context, 4000, noise=False, divergence_guard=10.0)
    assert np.isfinite(guarded).all()
    scale = np.abs(context - context.mean(0)).max(0) / context.std(0, ddof=1)
    assert (np.abs(guarded - context.mean(0)) / context.std(0, ddof=1) <= 10.0 * scale.max() * 1.01 + 1e-6).all()
    # before the divergence the guard changes nothing
    assert np.array_equal(guarded[: step - 1], raw[: step - 1])
