"""Expert weights of forecasts on every backend, their summaries, plots and the explain command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting import DynaMixPipeline
from dynamix_forecasting.cli import main as cli_main
from dynamix_forecasting.composition import (
    cluster_systems,
    distance_matrix,
    effective_experts,
    expert_usage,
    step_entropy,
    usage_distance,
)
from dynamix_forecasting.examples import lorenz63


@pytest.fixture(scope="module")
def pipeline():
    return DynaMixPipeline.from_pretrained()


@pytest.fixture(scope="module")
def context():
    return lorenz63(700)[200:]


def _reference_weights(pipeline, context, horizon):
    """The gating network's weights of the reference step, rolled out by hand (noise off)."""
    model = pipeline.model
    data = (context - context.mean(0)) / np.maximum(context.std(0, ddof=1), 1e-6)  # the pipeline's standardization
    ctx = torch.as_tensor(data, dtype=torch.float32)[:, None, :]  # (T, 1, N)
    encoded = model.gating_network.encode(ctx)
    z = model.initial_state(ctx[-1])
    out = []
    with torch.no_grad():
        for _ in range(horizon):
            out.append(model.gating_network(ctx, z, encoded=encoded)[:, 0].numpy())
            z = model.step(z, ctx, encoded=encoded)
    return np.stack(out)


@pytest.mark.parametrize(("backend", "tol"), [("reference", 1e-5), ("torch", 2e-4), ("numba", 2e-4)])
def test_weights_equal_the_reference_steps_gating_weights(pipeline, context, backend, tol):
    expected = _reference_weights(pipeline, context, 40)
    got = pipeline.expert_weights(context, 40, noise=False, backend=backend)
    assert got.shape == (40, 10)
    np.testing.assert_allclose(got, expected, atol=tol)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    assert expected.max(1).min() < 0.99  # a real mixture, not one expert everywhere (the check could fail)


def test_weights_come_from_the_forecasts_rollout(pipeline, context):
    forecast, weights = pipeline.expert_weights(context, 60, seed=3, num_samples=4, return_forecast=True)
    np.testing.assert_array_equal(forecast, pipeline.forecast(context, 60, seed=3, num_samples=4))
    assert weights.shape == (4, 60, 10)
    assert not np.allclose(weights[0], weights[1])  # each noisy path has its own composition
    batch = np.stack([context, context[::-1].copy()], axis=1)  # (T, S, N)
    w = pipeline.expert_weights(batch, 30, noise=False)
    assert w.shape == (30, 2, 10)
    np.testing.assert_allclose(w[:, 0], pipeline.expert_weights(context, 30, noise=False), atol=1e-6)


def test_channel_split_inputs_are_refused_with_the_fix(pipeline):
    with pytest.raises(ValueError, match="one at a time"):
        pipeline.expert_weights(np.random.default_rng(0).standard_normal((200, 5)), 10)


def test_usage_entropy_distance_and_clusters():
    one_expert = np.tile(np.eye(4)[0], (50, 1))
    shared = np.full((50, 4), 0.25)
    assert effective_experts(expert_usage(one_expert)) == pytest.approx(1.0)
    assert effective_experts(expert_usage(shared)) == pytest.approx(4.0)
    np.testing.assert_allclose(step_entropy(shared), np.log(4))
    assert usage_distance([1, 0, 0, 0], [0, 1, 0, 0]) == pytest.approx(1.0)
    assert usage_distance([0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]) == pytest.approx(0.0)
    usages = np.array([[0.9, 0.1, 0, 0], [0.85, 0.15, 0, 0], [0, 0, 0.1, 0.9], [0, 0.05, 0.1, 0.85]])
    d = distance_matrix(usages)
    assert d[0, 1] < 0.1 and d[0, 2] > 0.9 and np.allclose(d, d.T)
    labels, _ = cluster_systems(usages, ["a1", "a2", "b1", "b2"], n_clusters=2)
    assert labels["a1"] == labels["a2"] != labels["b1"] == labels["b2"]
    # time-averaged over a samples axis too
    stacked = np.stack([one_expert, shared])  # (samples, H, J)
    np.testing.assert_allclose(expert_usage(stacked, step_axis=1), [0.625, 0.125, 0.125, 0.125])
    with pytest.raises(ValueError, match="finite"):
        expert_usage(np.full((3, 2), np.nan))


def test_plots_draw_the_composition(pipeline, context):
    import matplotlib

    matplotlib.use("Agg")
    from dynamix_forecasting.plots import plot_expert_composition, plot_usage_dendrogram, plot_usage_heatmap

    forecast, weights = pipeline.expert_weights(context, 100, seed=0, return_forecast=True)
    fig = plot_expert_composition(forecast, weights, context=context)
    assert len(fig.axes[1].collections) == 10  # one band per expert
    usages = np.array([[0.9, 0.1], [0.2, 0.8], [0.85, 0.15]])
    assert plot_usage_heatmap(usages, ["a", "b", "c"]).axes
    assert plot_usage_dendrogram(usages, ["a", "b", "c"]).axes
    with pytest.raises(ValueError, match="one series"):
        plot_expert_composition(forecast, weights[:50])


def test_explain_command_writes_weights_and_plot(tmp_path, context, capsys):
    path = tmp_path / "lorenz.csv"
    pd.DataFrame(context, columns=["x", "y", "z"]).to_csv(path, index=False)
    out, png = tmp_path / "weights.csv", tmp_path / "composition.png"
    code = cli_main(["explain", str(path), "--horizon", "80", "--output", str(out), "--plot", str(png)])
    assert code == 0 and png.stat().st_size > 10_000
    frame = pd.read_csv(out, index_col=0)
    assert list(frame.columns[:3]) == ["x", "y", "z"] and frame.shape == (80, 13)
    np.testing.assert_allclose(frame.filter(like="expert_").sum(1), 1.0, atol=1e-5)
    assert "effective number of experts" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,a\n2,b\n")
    assert cli_main(["explain", str(bad), "--horizon", "5"]) == 2
