"""The richer training data: perturbed chaotic regimes, mixed context lengths, synthetic time series."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from benchmarks.dsr_check import diverges
from dynamix_forecasting.preprocessing import _waves
from dynamix_forecasting.training import TrainingSettings
from dynamix_forecasting.training.corpus import perturbed_regimes
from dynamix_forecasting.training.data import WindowSampler
from dynamix_forecasting.training.synthetic import TimeSeriesSampler, kernel_synth, synthetic_corpus

from .conftest import skip_outside_ci


def test_perturbed_regimes_are_chaotic_cached_and_seed_specific(tmp_path):
    if importlib.util.find_spec("dysts") is None:
        skip_outside_ci("needs dysts (the 'bench' extra, which make test installs) to integrate new regimes")
    first = perturbed_regimes(["Rossler"], 1, tmp_path, n_points=3000, seed=0, workers=1, progress=False)
    facts = json.loads((tmp_path / "regimes.json").read_text())
    assert list(first) == ["Rossler_s0_r0"]
    traj = first["Rossler_s0_r0"]
    assert traj.shape == (3000, 3) and np.isfinite(traj).all()
    info = facts["Rossler_s0_r0"]
    assert info["largest_lyapunov"] * info["period"] > 0.01
    default = {"a": 0.2, "b": 0.2, "c": 5.7}
    assert all(abs(info["params"][k] / v - 1) <= 0.15 + 1e-12 for k, v in default.items())
    assert info["params"] != default
    # read back from the cache, bit for bit; another seed draws another regime
    again = perturbed_regimes(["Rossler"], 1, tmp_path, n_points=3000, seed=0, workers=1, progress=False)
    np.testing.assert_array_equal(again["Rossler_s0_r0"], traj)
    other = perturbed_regimes(["Rossler"], 1, tmp_path, n_points=3000, seed=1, workers=1, progress=False)
    assert json.loads((tmp_path / "regimes.json").read_text())["Rossler_s1_r0"]["params"] != info["params"]
    assert not np.allclose(other["Rossler_s1_r0"][:100], traj[:100])


def test_window_sampler_draws_context_lengths_that_end_at_the_same_point():
    rng = np.random.default_rng(0)
    traj = np.cumsum(rng.standard_normal((5000, 3)), axis=0)
    fixed = WindowSampler([traj], 3, 300, 100, 50, windows_per_system=20, seed=0)
    mixed = WindowSampler([traj], 3, 300, 100, 50, windows_per_system=20, seed=0, context_lengths=[100, 300])
    seen = set()
    for i in range(12):
        context, target, _ = mixed.batch(4, i)
        seen.add(context.shape[0])
        # the training sequence overlaps the context's last 50 points whatever its length
        torch.testing.assert_close(context[-50:], target[:50])
    assert seen == {100, 300}
    context, _, _ = fixed.batch(4, 0)
    assert context.shape[0] == 300
    with pytest.raises(ValueError, match="exceed the overlap"):
        WindowSampler([traj], 3, 300, 100, 50, context_lengths=[40, 300])


def test_kernel_synth_is_seeded_and_finite():
    a, pa = kernel_synth(128, np.random.default_rng(3))
    b, pb = kernel_synth(128, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert pa == pb and np.isfinite(a).all() and a.std() > 0


def test_time_series_batches_are_laid_out_as_the_time_series_mode_sees_them():
    series, periods = synthetic_corpus(60, 200, seed=0, progress=False)
    assert series.shape == (60, 200) and np.isfinite(series).all() and (periods > 1).any()
    sampler = TimeSeriesSampler(series, periods, 3, context_lengths=(16, 64), sequence_length=25, seed=1)
    kinds = set()
    for i in range(30):
        context, target, teacher = sampler.batch(8, i)
        c = context.shape[0]
        assert c in (16, 64) and target.shape == (25, 8, 3)
        # standardized by the context; the training sequence starts at the context's last point
        np.testing.assert_allclose(context[..., 0].mean(0).numpy(), 0, atol=1e-5)
        std = context[..., 0].std(0, unbiased=False).numpy()
        assert np.all(np.isclose(std, 1, atol=1e-4) | (std == 0))  # 0: a constant context (e.g. intermittent counts)
        torch.testing.assert_close(target[0], context[-1])
        torch.testing.assert_close(teacher[..., 1:], target[..., 1:])  # no noise on the embedding channels
        assert context.abs().max() <= 8 and target.abs().max() <= 8  # outlying windows are drawn again
        if context[..., 1:].abs().max() == 0:
            kinds.add("zero")
        else:  # positional: the published sinusoids of a series' season, continued through the sequence
            kinds.add("pos")
            full = torch.cat([context, target[1:]])
            waves = [_waves(full.shape[0], int(p), 2) for p in periods[periods > 1]]
            assert any(np.allclose(full[:, 0, 1:].numpy(), w, atol=1e-6) for w in waves)
    assert kinds == {"zero", "pos"}


def test_settings_check_the_new_data_options():
    with pytest.raises(ValueError, match="overlap=1"):
        TrainingSettings(data="time_series")
    with pytest.raises(ValueError, match="data must be"):
        TrainingSettings(data="images")
    with pytest.raises(ValueError, match="set corpus_dir"):
        TrainingSettings(extra_regimes=2)
    with pytest.raises(ValueError, match="context_lengths"):
        TrainingSettings(context_lengths=[10, 500])


def test_divergence_check_flags_non_finite_and_runaway_forecasts():
    context = np.sin(np.linspace(0, 20, 500))[:, None] * np.ones((1, 3))
    assert not diverges(context[:100] * 1.5, context)
    assert diverges(context[:100] * 100, context)
    bad = context[:100].copy()
    bad[5, 1] = np.nan
    assert diverges(bad, context)


def test_a_time_series_run_trains_on_cached_synthetic_series_and_lowers_the_loss(tmp_path):
    from dynamix_forecasting.training import Trainer

    settings = TrainingSettings(
        M=8, N=3, Experts=3, P=1, data="time_series", ts_series=200, ts_length=96, context_lengths=[16, 32],
        sequence_length=17, overlap=1, batch_size=8, batches_per_epoch=10, epochs=16, eval_every=0,
        checkpoint_every=16, output_dir=str(tmp_path / "run"), corpus_cache=str(tmp_path / "cache"), lr_start=1e-2,
        lr_end=1e-3, threads=1, name="dynamix-3d-ts-tiny",
    )  # fmt: skip
    trainer = Trainer(settings)
    assert isinstance(trainer.sampler, TimeSeriesSampler)
    cached = list((tmp_path / "cache").glob("synthetic_200x96_seed0_*.npz"))
    assert len(cached) == 1  # generated once; a second trainer reads it back
    np.testing.assert_array_equal(Trainer(settings).sampler.series, trainer.sampler.series)
    rows = trainer.fit(progress=False)
    assert all(np.isfinite(r["loss"]) for r in rows)
    first, last = np.mean([r["loss"] for r in rows[:4]]), np.mean([r["loss"] for r in rows[-4:]])
    assert last < 0.93 * first, (first, last)  # seed 0: 0.82 of the first epochs
    assert (tmp_path / "run" / "checkpoint" / "dynamix-3d-ts-tiny.safetensors").exists()


def test_rotated_windows_mix_channels_keep_unit_variance_and_leave_plain_batches_alone():
    rng = np.random.default_rng(1)
    t = np.arange(20_000) * 0.05
    traj = np.stack([np.sin(t), 3 * np.cos(0.7 * t), 0.5 * np.sin(1.9 * t + 1)], axis=1) + 0.01 * rng.standard_normal(
        (t.size, 3)
    )
    plain = WindowSampler([traj], 3, 200, 50, 10, windows_per_system=50, seed=0)
    rotated = WindowSampler([traj], 3, 200, 50, 10, windows_per_system=50, seed=0, rotate=True)
    a, _, _ = plain.batch(64, 0)
    b, tb, _ = rotated.batch(64, 0)
    torch.testing.assert_close(b[-10:], tb[:10])  # context and sequence get the same rotation
    assert not torch.allclose(a, b)
    # the mixed channels are correlated where the plain ones (three unrelated waves) are not
    assert (
        np.abs(np.corrcoef(b[:, 0].numpy().T)[np.triu_indices(3, 1)]).mean()
        > np.abs(np.corrcoef(a[:, 0].numpy().T)[np.triu_indices(3, 1)]).mean()
    )
    # over many windows every rotated channel has about unit variance, as the standardized data do
    np.testing.assert_allclose(b.reshape(-1, 3).var(0).numpy(), 1.0, atol=0.25)
    np.testing.assert_allclose(a.reshape(-1, 3).var(0).numpy(), 1.0, atol=0.25)


def test_time_series_validation_tasks_are_positive_seasonal_groups_held_back_from_training():
    from benchmarks.ts_validation import HORIZON, validation_tasks

    tasks = validation_tasks(n_series=40)
    assert sum(len(h) for h, _ in tasks.values()) == 40
    assert 1 in tasks and any(season > 1 for season in tasks)
    for histories, targets in tasks.values():
        assert all(t.shape == (HORIZON,) for t in targets)
        assert all(np.min(h) > 0 and np.min(t) > 0 for h, t in zip(histories, targets, strict=True))
    # another seed than any training run's corpus (training runs use their settings' seed, 0 here)
    train, _ = synthetic_corpus(40, 256, seed=0, progress=False)
    first = next(iter(tasks.values()))[0][0]
    assert not any(np.allclose(np.diff(first[:50]), np.diff(s[:50])) for s in train)


def test_grown_model_forecasts_as_the_original_and_its_copies_can_learn(released_model):
    from dynamix_forecasting import DynaMixPipeline
    from dynamix_forecasting.training.growth import grow_experts

    grown = grow_experts(released_model, 20, noise=0.0).eval()
    assert grown.config.Experts == 20 and len(grown.experts) == 20
    rng = np.random.default_rng(0)
    context = np.cumsum(rng.standard_normal((300, 3)) * 0.1, axis=0)
    a = DynaMixPipeline(released_model).forecast(context, 30, noise=False)
    b = DynaMixPipeline(grown).forecast(context, 30, noise=False)
    np.testing.assert_allclose(b, a, atol=1e-4)  # the same mixture, summed in another order
    # the symmetry-breaking noise makes the copies differ, so they get different gradients
    jittered = grow_experts(released_model, 20, noise=1e-3)
    assert not torch.equal(jittered.experts[10].W, jittered.experts[0].W)
    torch.testing.assert_close(jittered.experts[10].W, jittered.experts[0].W, rtol=0, atol=0.05)
    with pytest.raises(ValueError, match="multiple"):
        grow_experts(released_model, 15)
    with pytest.raises(ValueError, match="set init"):
        TrainingSettings(grow_experts=20)
