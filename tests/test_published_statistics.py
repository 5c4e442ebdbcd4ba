"""With the gating noise on (the published behaviour) the long-term statistics match the paper."""

from __future__ import annotations

import numpy as np
import pytest

from dynamix_forecasting import geometrical_misalignment, mase, temporal_misalignment

# system, context length, published single-run D_stsp, bounds on the median over 5 noise paths
CASES = [("lorenz63", 2000, 0.804, (0.5, 1.1)), ("chua", 1028, 2.206, (1.6, 2.6)), ("sprottM", 512, 3.325, (2.5, 3.8))]


@pytest.mark.slow
@pytest.mark.parametrize(("system", "context", "published", "bounds"), CASES)
def test_dstsp_and_dh_over_five_noise_paths(pipeline, example, system, context, published, bounds):
    data = example(system)
    truth = data[context : context + 10_000]
    paths = pipeline.forecast(data[:context], 10_000, num_samples=5, seed=2025)
    d_stsp = np.median([geometrical_misalignment(p, truth) for p in paths])
    d_h = np.median([temporal_misalignment(p, truth) for p in paths])
    assert bounds[0] <= d_stsp <= bounds[1], f"{system}: median D_stsp {d_stsp:.3f} (published run {published})"
    assert d_h <= 0.12, f"{system}: median D_H {d_h:.3f}"
    assert np.median([mase(p, truth) for p in paths]) < 1.5
