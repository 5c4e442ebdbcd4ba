"""The benchmark suite: fev metrics reproduce the verified seasonal-naive scores, the quick run, the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import data as bench_data
from benchmarks.models import Chronos, Parroting, SeasonalNaive
from benchmarks.parroting import parrot
from benchmarks.runner import main
from benchmarks.scoring import task_mase, task_wql

from .conftest import SHARED, _require

QUANTILE_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.fixture(scope="module")
def tasks():
    _require(SHARED / "data" / "chronos-bench" / "tasks.json")
    return bench_data.task_specs()


def test_seasonal_naive_reproduces_every_verified_score(tasks):
    model = SeasonalNaive()
    assert len(tasks) == 17
    for name in tasks:
        task = bench_data.load_task(name)
        median, quantiles = model.forecast_ts(task.histories, task.horizon, task.seasonality)
        mase = task_mase(task.histories, task.targets, median, task.seasonality)
        wql = task_wql(task.targets, quantiles)
        assert float(f"{mase:.3g}") == float(f"{task.verified['seasonal_naive_MASE']:.3g}"), name
        assert float(f"{wql:.3g}") == float(f"{task.verified['seasonal_naive_WQL']:.3g}"), name


def test_scores_of_perfect_and_shifted_forecasts():
    history = [np.arange(20.0), np.sin(np.arange(30.0))]
    target = [np.arange(20.0, 24.0), np.sin(np.arange(30.0, 34.0))]
    perfect = np.stack(target)
    assert task_mase(history, target, perfect, 1) == 0.0
    assert task_wql(target, np.broadcast_to(perfect, (9, 2, 4))) == 0.0
    assert task_mase(history, target, perfect + 1.0, 1) > 0.5


def test_parroting_continues_a_periodic_context_exactly():
    t = np.arange(400)
    wave = np.sin(2 * np.pi * t / 25.0) + 0.5 * np.sin(2 * np.pi * t / 50.0)
    forecast = parrot(wave[:300], 100, k=10)[0]
    np.testing.assert_allclose(forecast, wave[300:], atol=1e-9)
    paths = parrot(np.stack([wave, np.cos(t / 7.0)], axis=1)[:300], 30, k=8, n_matches=3)
    assert paths.shape == (3, 30, 2) and np.isfinite(paths).all()
    with pytest.raises(ValueError, match="finite"):
        parrot(np.array([1.0, np.nan, 2.0, 3.0]), 3)
    # ten distinct exact matches (periods of 50 points in 1,000): their ensemble median is exact too
    long_t = np.arange(1100)
    long_wave = np.sin(2 * np.pi * long_t / 25.0) + 0.5 * np.sin(2 * np.pi * long_t / 50.0)
    median, quantiles = Parroting().forecast_ts([long_wave[:1000]], 20, 25)
    np.testing.assert_allclose(median[0], long_wave[1000:1020], atol=1e-9)
    assert quantiles.shape == (9, 1, 20)


def test_parroting_ensembles_distinct_matches():
    from benchmarks.parroting import _distinct_matches

    assert _distinct_matches(np.array([10, 11, 12, 30, 9, 50]), k=5, count=3) == [10, 30, 50]
    assert _distinct_matches(np.array([3, 4]), k=5, count=3) == [3, 3, 3]  # too few: the last repeats
    # on noise the members differ from the first step on (no member is another shifted by one point)
    rng = np.random.default_rng(0)
    paths = parrot(rng.standard_normal(500), 5, k=10, n_matches=4)
    assert len({round(float(p[0]), 12) for p in paths}) == 4


def _tiny_chronos_models(root):
    import torch
    from chronos.chronos2.config import Chronos2CoreConfig
    from chronos.chronos2.model import Chronos2Model
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    torch.manual_seed(0)
    bolt = T5Config(
        d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, vocab_size=2,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        chronos_config=dict(context_length=64, prediction_length=8, input_patch_size=8, input_patch_stride=8,
                            quantiles=QUANTILE_LEVELS, use_reg_token=True),
        architectures=["ChronosBoltModelForForecasting"], chronos_pipeline_class="ChronosBoltPipeline",
    )  # fmt: skip
    ChronosBoltModelForForecasting(bolt).save_pretrained(root / "chronos_bolt_small")
    two = Chronos2CoreConfig(
        d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        chronos_config=dict(context_length=64, output_patch_size=8, input_patch_size=8, input_patch_stride=8,
                            quantiles=QUANTILE_LEVELS, use_reg_token=True, max_output_patches=4),
        architectures=["Chronos2Model"], chronos_pipeline_class="Chronos2Pipeline",
    )  # fmt: skip
    Chronos2Model(two).save_pretrained(root / "chronos_2")


def test_chronos_models_run_from_a_local_folder(tmp_path):
    _tiny_chronos_models(tmp_path)
    rng = np.random.default_rng(0)
    histories = [rng.standard_normal(100).cumsum(), rng.standard_normal(40).cumsum()]
    for name in ("chronos_bolt_small", "chronos_2"):
        model = Chronos(name, chronos_dir=str(tmp_path))
        assert model.unavailable() is None
        median, quantiles = model.forecast_ts(histories, 12, 1)
        assert median.shape == (2, 12) and quantiles.shape == (9, 2, 12)
        assert np.isfinite(quantiles).all() and (np.diff(quantiles, axis=0) >= -1e-5).all()
        np.testing.assert_allclose(median, quantiles[4], rtol=1e-5)
    missing = Chronos("chronos_bolt_base", chronos_dir=str(tmp_path))
    assert "weights not found" in missing.unavailable()


@pytest.mark.slow
def test_quick_run_writes_results_table_and_plots(tmp_path, tasks, released_model, monkeypatch):
    chronos_dir = tmp_path / "chronos"
    _tiny_chronos_models(chronos_dir)
    out = tmp_path / "run"
    main(["--quick", "--output", str(out), "--chronos-dir", str(chronos_dir)])
    frame = pd.read_csv(out / "results.csv")
    assert {"ts", "dsr", "speed"} <= set(frame["track"])
    for (track, model), rows in frame.groupby(["track", "model"]):
        scored = rows[rows["metric"] != "not_run"]
        not_run = rows[rows["metric"] == "not_run"]
        assert np.isfinite(scored["value"].astype(float)).all() or len(not_run), (track, model)
        assert not_run["note"].astype(str).str.len().gt(0).all(), (track, model)
    ts = frame[(frame["track"] == "ts") & (frame["metric"] == "MASE")]
    assert {"seasonal_naive", "dynamix", "parroting", "auto_ets", "auto_theta", "chronos_bolt_small"} <= set(
        ts["model"]
    )
    assert "auto_arima" not in set(frame["model"])  # left out of quick mode
    not_run = frame[frame["metric"] == "not_run"]
    assert not_run.empty, not_run  # with the tiny Chronos folders every model runs
    summary = (out / "summary.md").read_text()
    assert "Leaderboard (fev rules)" in summary and "(published)" in summary and "⚠ leakage" in summary
    assert "held_out" in summary and "series_steps_per_s" in summary and "win_rate_vs_parroting" in summary
    assert set(frame["config"]) == {frame["config"].iloc[0]} and '"quick": true' in frame["config"].iloc[0]
    for plot in (
        "ts_relative_mase.png",
        "dsr_boxplots.png",
        "gallery.png",
        "speed_vs_accuracy.png",
        "leaderboard_MASE.png",
        "leaderboard_WQL.png",
        "per_task_relative_mase.png",
        "coverage_curves.png",
    ):
        assert (out / "plots" / plot).stat().st_size > 10_000
    # the speed comparison with the foundation models: every workload timed for every model, Chronos marked
    fm = frame[frame["task"].str.startswith("fm")]
    assert set(fm["model"]) == {"dynamix_ts", "dynamix", "dynamix_1path", "chronos_bolt_tiny[random]"}
    for _, rows in fm.groupby("model"):
        assert {t.split(":")[0] for t in rows["task"]} == {"fm", "fm_a", "fm_b", "fm_c"}
        assert (rows[rows["metric"] == "seconds"]["value"].astype(float) > 0).all()
    chronos = fm[fm["model"] == "chronos_bolt_tiny[random]"]
    assert chronos["note"].str.contains("architecture timing (random weights)", regex=False).all()
    params = fm[(fm["task"] == "fm:model") & (fm["metric"] == "parameters")].set_index("model")["value"]
    assert params["dynamix"] == 10256 and params["chronos_bolt_tiny[random]"] == 8_652_672
    assert "Speed against the foundation models" in summary
    before = len(frame)
    main(["--quick", "--output", str(out), "--track", "ts"])  # resumable: nothing is run twice
    assert len(pd.read_csv(out / "results.csv")) == before


@pytest.mark.parametrize(
    "name",
    [
        "chronos_bolt_tiny",
        "chronos_bolt_mini",
        "chronos_bolt_small",
        pytest.param("chronos_bolt_base", marks=pytest.mark.slow),
        pytest.param("chronos_2", marks=pytest.mark.slow),
    ],
)
def test_published_architectures_build_with_their_sizes_and_run(tmp_path, name):
    from benchmarks import architectures

    folder = architectures.build(name, tmp_path)
    params = architectures.parameter_count(folder)
    # The configurations reproduce the parameter counts published for the released models (to 1 %).
    assert abs(params / architectures.PUBLISHED_PARAMETERS[name] - 1) < 0.01, params
    model = Chronos(name, path=str(folder))
    rng = np.random.default_rng(0)
    median, quantiles = model.forecast_ts([rng.standard_normal(300).cumsum(), rng.standard_normal(50)], 20, 1)
    assert median.shape == (2, 20) and quantiles.shape == (9, 2, 20) and np.isfinite(quantiles).all()


def test_regenerated_trajectory_matches_the_stored_one():
    _require(SHARED / "data" / "dysts" / "index.json")
    stored = bench_data.load_dysts("Lorenz")
    regenerated = bench_data.regenerate_dysts("Lorenz")  # DOP853, rtol = atol = 1e-10, 50 points per period
    assert regenerated.shape == stored.shape
    np.testing.assert_allclose(regenerated[:500], stored[:500], atol=1e-4 * stored.std())


def test_fill_missing_all_is_fev_forward_fill_of_each_history():
    import pandas as pd

    from benchmarks.models import fill_missing, fill_missing_all

    rng = np.random.default_rng(0)
    histories = [np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)) for n in rng.integers(1, 30, 300)]
    histories[0][:] = np.nan  # all missing: zeros
    filled = fill_missing_all(histories)
    assert len(filled) == len(histories)
    for got, history in zip(filled, histories, strict=True):
        expected = np.nan_to_num(pd.Series(history).ffill().to_numpy(), nan=0.0)  # fev: forward fill, then 0
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(fill_missing(history), expected)
    assert np.all(filled[0] == 0.0)
    complete = [np.arange(3.0), np.ones(2)]
    assert fill_missing_all(complete) is complete
