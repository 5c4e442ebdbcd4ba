"""The time-series mode: seasonality, calibration, engine options, adapters' defaults and determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dynamix_forecasting import DynaMixPipeline
from dynamix_forecasting.adapter_parameters import season_length_from_freq
from dynamix_forecasting.ragged import Ragged
from dynamix_forecasting.seasonality import fit_adjustment, is_seasonal
from dynamix_forecasting.timeseries import (
    WINDOWS,
    Candidate,
    default_candidates,
    forecast_time_series,
    laplace_quantile,
    window_lengths,
)


def _seasonal(n: int = 120, m: int = 12, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 20 * np.sin(2 * np.pi * t / m) + 0.2 * t + rng.normal(0, 1, n)


def test_seasonality_test_and_multiplicative_indices():
    y = _seasonal()
    assert is_seasonal(y, 12)
    assert not is_seasonal(np.random.default_rng(1).normal(size=120), 12)
    assert not is_seasonal(y[:30], 12)  # fewer than three seasons
    adj = fit_adjustment(y, 12)
    assert adj is not None and adj.multiplicative
    np.testing.assert_allclose(adj.indices.mean(), 1.0)
    # The indices follow the sine: peak at position 3, trough at 9.
    assert adj.indices.argmax() == 3 and adj.indices.argmin() == 9
    adjusted = adj.adjust(y)
    assert np.std(np.diff(adjusted)) < 0.3 * np.std(np.diff(y))
    np.testing.assert_allclose(adj.restore(adjusted[-12:], len(y) - 12), y[-12:])
    additive = fit_adjustment(y - 200, 12)
    assert additive is not None and not additive.multiplicative
    np.testing.assert_allclose(additive.indices.sum(), 0.0, atol=1e-9)


def test_laplace_quantiles():
    np.testing.assert_allclose(laplace_quantile(np.array([0.5])), [0.0])
    np.testing.assert_allclose(laplace_quantile(np.array([0.25, 0.75])), [-np.log(2), np.log(2)])


def _oracle_roll(contexts, lengths, steps, method, period):
    """A stand-in model: the last value (a naive forecast), to test the recipe's arithmetic exactly. ``steps``
    are each row's steps; entries beyond them are NaN here, so the recipe must never read them."""
    out = np.repeat(contexts[:, -1:], int(steps.max()), axis=1)
    out[np.arange(out.shape[1])[None, :] >= steps[:, None]] = np.nan
    return out


def test_ragged_rows_tails_and_reductions():
    rows = Ragged.of([np.array([1.0, 2.0, 3.0]), np.array([5.0]), np.array([-1.0, 4.0])])
    np.testing.assert_array_equal(rows[2], [-1.0, 4.0])
    np.testing.assert_array_equal(rows.tails(2), [[2.0, 3.0], [np.nan, 5.0], [-1.0, 4.0]])
    np.testing.assert_array_equal(rows.reduce(np.minimum), [1.0, 5.0, -1.0])
    np.testing.assert_array_equal(rows.last(), [3.0, 5.0, 4.0])
    prefixes = rows.prefixes(np.array([0, 2, 0]), np.array([2, 1, 1]))
    np.testing.assert_array_equal(prefixes.tails(2), [[1.0, 2.0], [np.nan, -1.0], [np.nan, 1.0]])


def test_candidates_sharing_a_context_are_rolled_out_once():
    """A history shorter than several candidates' contexts is all of each: one rollout serves them all, as
    far as the furthest needs, and each gets exactly that forecast."""
    calls = []

    def roll(contexts, lengths, steps, method, period):
        calls.append((method, contexts.shape[0], steps.copy()))
        # a forecast that depends on the whole context (its sum) and the step, never on the other rows
        total = np.nansum(contexts, axis=1, keepdims=True)
        return total + np.arange(1, int(steps.max()) + 1)[None] * 0.01 * lengths[:, None]

    y = np.random.default_rng(3).normal(10, 1, 12)  # shorter than the 16-, 32- and 64-point contexts
    fc = forecast_time_series([y], 5, roll, 1)
    labels = [c.label for c in fc.candidates]
    ((method, rows, steps),) = calls
    # Two histories (the forecast's 12 points, one 4-step window's first 8), each with three distinct contexts:
    # zero16/32/64 without trend, with half the trend (16, 32), and 32 with all of it.
    assert method == "zero_embedding" and rows == 6
    assert sorted(steps.tolist()) == [4, 4, 4, 5, 5, 5]
    weights = dict(zip(labels, fc.weights[:, 0], strict=True))
    assert weights["zero16_trend0"] == weights["zero32_trend0"] == weights["zero64_trend0"]
    assert weights["zero16_trend0.5"] == weights["zero32_trend0.5"] != weights["zero32_trend1"]


def test_recipe_with_a_naive_model_is_naive2_and_calibrated():
    y = _seasonal(n=144)
    fc = forecast_time_series([y], 12, _oracle_roll, 12)
    adj = fit_adjustment(y, 12)
    naive2 = adj.restore(np.full(12, adj.adjust(y)[-1]), len(y))
    # Every candidate is the naive forecast of the adjusted series (trend candidates add their slope).
    flat = [c.trend == 0 for c in fc.candidates]
    # 6 zero-embedding and 3 positional candidates, naive, seasonal naive and the recent median
    assert len(fc.candidates) == len(default_candidates(12)) == 12
    assert [c.label for c in fc.candidates[-3:]] == ["naive", "seasonal_naive", "recent_median"]
    np.testing.assert_allclose(fc.weights.sum(0), 1.0)
    q = fc.quantiles([0.1, 0.5, 0.9])
    # the median is the point moved by the series' own median error (its error shape, in units of the spread)
    np.testing.assert_allclose(q[1], fc.point + fc._z(np.array([[0.5]]))[0][:, None] * fc.spread)
    assert np.all(q[0] < q[1]) and np.all(q[2] > q[1])
    width = q[2] - q[0]
    assert np.all(np.diff(width[0]) >= -1e-9)  # the spread grows with the step
    if all(flat):
        np.testing.assert_allclose(fc.point[0], naive2)


def test_guard_candidates_take_over_where_they_win():
    rng = np.random.default_rng(3)
    pattern = rng.normal(0, 1, 12)
    periodic = np.tile(pattern, 12) + 50.0  # seasonal naive is exact on every rolling origin
    steps = np.concatenate([np.zeros(60), np.repeat(rng.normal(0, 5, 6), 10)])  # level shifts: naive wins

    def mean_roll(contexts, lengths, steps, method, period):  # a model that forecasts the context's mean
        return np.repeat(np.nanmean(contexts, axis=1, keepdims=True), int(steps.max()), axis=1)

    fc = forecast_time_series([periodic, steps], 24, mean_roll, 12)
    labels = [c.label for c in fc.candidates]
    assert fc.weights[labels.index("seasonal_naive"), 0] > 0.999
    np.testing.assert_allclose(fc.point[0], np.tile(pattern, 2) + 50.0, atol=1e-9)
    assert int(np.argmax(fc.weights[:, 1])) == labels.index("naive")  # the largest weight
    # intermittent demand: mostly zeros, the recent median (0) beats the last value and the season
    counts = np.where(rng.random(120) < 0.15, rng.integers(1, 9, 120), 0).astype(float)
    span = int(window_lengths(np.array([120]), 1, WINDOWS)[0])
    counts[120 - span * np.arange(WINDOWS + 1) - 1] = 7.0  # a spike just before every origin: naive pays for it
    fc = forecast_time_series([counts], 6, mean_roll, 1)
    labels = [c.label for c in fc.candidates]
    assert int(np.argmax(fc.weights[:, 0])) == labels.index("recent_median")
    assert fc.point[0, 0] < 1.0
    # a history shorter than the season: seasonal naive falls back to the last value
    fc = forecast_time_series([np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0])], 4, _oracle_roll, 12)
    labels = [c.label for c in fc.candidates]
    assert "seasonal_naive" in labels  # present, but with nine points it repeats the last one


def test_error_shape_follows_the_series_own_errors():
    t = np.arange(150, dtype=float)
    rising = 10.0 + 0.5 * t + np.random.default_rng(0).normal(0, 0.2, 150)  # a flat forecast is always too low
    flat_only = [Candidate("zero_embedding", 16, 0.0), Candidate("naive", 1, 0.0)]  # no trend candidate
    fc = forecast_time_series([rising], 8, _oracle_roll, 1, candidates=flat_only)
    assert fc.shape is not None and np.all(np.diff(fc.shape[0]) >= 0)
    q = fc.quantiles([0.1, 0.5, 0.9])[:, 0]
    assert np.all(q[1] > fc.point[0])  # skewed up, as the errors were
    assert np.all((q[2] - q[1]) > (q[1] - q[0]) * 0.5)
    draws = fc.sample(20_000, seed=1)  # sample paths follow the same per-series shape
    np.testing.assert_allclose(np.quantile(draws[:, 0], [0.1, 0.5, 0.9], axis=0), q, rtol=0.03)


def test_quantiles_clip_at_zero_for_nonnegative_series_and_samples_match():
    y = np.abs(np.random.default_rng(0).normal(0, 1, 80))
    fc = forecast_time_series([y], 6, _oracle_roll, 1)
    q = fc.quantiles([0.05, 0.5])
    assert np.all(q >= 0)
    draws = fc.sample(20_000, seed=0)
    assert draws.min() >= 0
    np.testing.assert_allclose(np.quantile(draws, 0.5, axis=0), fc.quantiles([0.5])[0], rtol=0.05, atol=0.02)


def test_pipeline_options_season_length_and_context_length(pipeline):
    y = _seasonal()
    a = pipeline.forecast(y, 12, season_length=12, noise=False)
    b = pipeline.forecast(y, 12, season_length=24, noise=False)
    assert not np.allclose(a, b)
    c = pipeline.forecast(y[-48:], 12, season_length=12, noise=False)
    d = pipeline.forecast(y, 12, season_length=12, context_length=48, noise=False)
    np.testing.assert_array_equal(c, d)
    with pytest.raises(ValueError, match="season_length"):
        pipeline.forecast(y, 12, season_length=12, preprocessing_method="zero_embedding")
    with pytest.raises(ValueError, match="context_length"):
        pipeline.forecast(y, 12, context_length=2)
    with pytest.raises(ValueError, match="one int or one per series"):
        pipeline.forecast([y, y], 12, season_length=[12, 12, 12])


def test_time_series_mode_forecast_and_quantiles(pipeline):
    y = _seasonal()
    point = pipeline.forecast(y, 12, mode="time_series", season_length=12)
    q, p2 = pipeline.predict_quantiles(y, 12, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    np.testing.assert_array_equal(point, p2)
    # the median may sit off the point forecast (the series' own error shape), well inside the band
    assert q.shape == (12, 3) and np.all(q[:, 0] < q[:, 1]) and np.all(q[:, 1] < q[:, 2])
    assert np.all(q[:, 1] > point)  # this rising series was under-forecast on its rolling origins
    # The seasonal shape is forecast: the peak and trough months of the next season.
    assert point.argmax() == (3 - len(y)) % 12 and point.argmin() == (9 - len(y)) % 12
    # Scale equivariance and channels forecast one by one.
    two = pipeline.forecast(np.stack([y, 10 * y], 1), 12, mode="time_series", season_length=12)
    np.testing.assert_allclose(two[:, 0], point, rtol=1e-4)
    np.testing.assert_allclose(two[:, 1], 10 * point, rtol=1e-3)  # float32 standardization of a 10x series
    with pytest.raises(ValueError, match="belongs to mode='dynamics'"):
        pipeline.forecast(y, 12, mode="time_series", fit_nonstationary=True)
    with pytest.raises(ValueError, match="Unknown mode"):
        pipeline.forecast(y, 12, mode="ts")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pipeline.predict_quantiles(y, 12, [0.0, 0.5], mode="time_series")
    with pytest.raises(ValueError, match="at least 3"):
        pipeline.forecast(y[:2], 3, mode="time_series")


def test_default_mode_rule(pipeline, lorenz):
    """mode="auto": one channel is a time series, several are a dynamical system's state, and an option of one
    mode selects it."""
    y = _seasonal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(
            pipeline.forecast(y, 12, seed=3), pipeline.forecast(y, 12, seed=3, mode="time_series")
        )
        np.testing.assert_array_equal(
            pipeline.forecast(lorenz[:500], 12, seed=3), pipeline.forecast(lorenz[:500], 12, seed=3, mode="dynamics")
        )
        np.testing.assert_array_equal(
            pipeline.forecast(y, 12, seed=3, noise=False), pipeline.forecast(y, 12, mode="dynamics", noise=False)
        )
        q_auto, _ = pipeline.predict_quantiles(lorenz[:500, :1], 5, [0.5], interval_scale=1.0)
        q_ts, _ = pipeline.predict_quantiles(lorenz[:500, :1], 5, [0.5], mode="time_series", interval_scale=1.0)
        np.testing.assert_array_equal(q_auto, q_ts)
    with pytest.raises(ValueError, match="pass the options of one mode"):
        pipeline.forecast(y, 12, noise=False, interval_scale=2.0)
    with pytest.raises(ValueError, match="belongs to mode='time_series'"):
        pipeline.forecast(y, 12, mode="dynamics", interval_scale=2.0)


def test_season_length_from_frequency():
    assert [season_length_from_freq(f) for f in ("h", "2h", "D", "B", "W-SUN", "MS", "QS-DEC", "YS", "15min")] == [
        24, 12, 7, 5, 52, 12, 4, 1, 1
    ]  # fmt: skip
    assert season_length_from_freq(None) == 1 and season_length_from_freq(pd.offsets.MonthBegin()) == 12


def test_coverage_scoring():
    from benchmarks.scoring import quantile_coverage

    targets = [np.array([0.0, 1.0, 2.0, 3.0])]
    preds = np.stack([np.full((1, 4), 0.0)] + [np.full((1, 4), 1.5)] * 7 + [np.full((1, 4), 2.5)])
    cov = quantile_coverage(targets, preds)
    assert cov["coverage@0.1"] == 0.25 and cov["mid_coverage@0.1"] == 0.125
    assert cov["coverage@0.9"] == 0.75
    assert cov["band_10_90"] == 0.75 and cov["mid_band_10_90"] == 0.625


def test_sktime_defaults_series_type_and_randomstate():
    from sktime.datasets import load_airline

    from dynamix_forecasting.sktime import DynaMixForecaster

    y = load_airline()
    f = DynaMixForecaster(random_state=np.random.RandomState(0)).fit(y.iloc[:-12])
    assert f.mode == "auto" and f.season_lengths_ == [12]  # auto: a univariate y is a time series
    pred = f.predict(np.arange(1, 13))
    assert isinstance(pred, pd.Series)
    f.update(y.iloc[-12:-6])
    assert isinstance(f.predict([1, 2]), pd.Series)  # update on a Series keeps Series forecasts
    pipe = DynaMixPipeline.from_pretrained()
    np.testing.assert_allclose(
        pred.to_numpy(), pipe.forecast(y.iloc[:-12].to_numpy(), 12, mode="time_series", season_length=12)
    )
    iv = DynaMixForecaster().fit(y.iloc[:-24]).predict_interval(np.arange(1, 25), coverage=0.9)
    inside = (y.iloc[-24:].to_numpy() >= iv.iloc[:, 0].to_numpy()) & (
        y.iloc[-24:].to_numpy() <= iv.iloc[:, 1].to_numpy()
    )
    assert inside.mean() >= 0.75  # the old sample-path intervals covered 4 %
    gappy = y.drop(y.index[[5, 6]])
    with pytest.raises(ValueError, match="PeriodIndex with gaps"):
        DynaMixForecaster().fit(gappy)


def test_darts_point_forecast_is_deterministic_and_equals_sktime():
    from darts import TimeSeries
    from sktime.datasets import load_airline

    from dynamix_forecasting.darts import DynaMixModel
    from dynamix_forecasting.sktime import DynaMixForecaster

    y = load_airline().iloc[:-24]
    series = TimeSeries.from_series(pd.Series(y.to_numpy(), index=y.index.to_timestamp()).asfreq("MS"))
    for mode, seed in (("time_series", None), ("dynamics", 4)):
        model = DynaMixModel(mode=mode, random_state=seed).fit(series)
        a, b = model.predict(12), model.predict(12)
        np.testing.assert_array_equal(a.values(), b.values())
        sk = DynaMixForecaster(mode=mode, random_state=seed if seed is not None else 0).fit(y).predict(np.arange(1, 13))
        np.testing.assert_allclose(a.values()[:, 0], sk.to_numpy(), rtol=1e-6)
    samples = DynaMixModel().fit(series).predict(12, num_samples=50)
    assert samples.n_samples == 50 and np.all(
        np.diff(np.quantile(samples.all_values()[:, 0], [0.1, 0.9], axis=1), axis=0) > 0
    )


def test_quantiles_are_calibrated_on_random_walks(pipeline):
    # 300 random walks: the outcome should fall below each level's quantile about as often as the level says
    # (measured: 0.087, 0.194, 0.578, 0.874, 0.948 at 0.1, 0.2, 0.5, 0.8, 0.9); a spread or shape that is off by
    # a factor of two lands far outside these bounds
    rng = np.random.default_rng(0)
    walks = np.cumsum(rng.normal(0, 1, (300, 212)), axis=1) + 100
    levels = [0.1, 0.2, 0.5, 0.8, 0.9]
    q, _ = pipeline.predict_quantiles(list(walks[:, :200, None]), 12, levels, mode="time_series", season_length=1)
    q = np.asarray(q)[:, :, 0, :]  # (H, S, Q)
    truth = walks[:, 200:].T  # (H, S)
    coverage = [(truth <= q[:, :, k]).mean() for k in range(len(levels))]
    np.testing.assert_allclose(coverage, levels, atol=0.1)
    assert 0.7 <= coverage[-1] - coverage[0] <= 0.95


def test_chunks_of_series_give_the_same_forecasts_and_weights(pipeline, monkeypatch):
    import dynamix_forecasting.timeseries_mode as ts_mode

    histories = [_seasonal(n=60 + 7 * i, seed=i) for i in range(9)]
    whole = pipeline.predict_quantiles(histories, 6, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    monkeypatch.setattr(ts_mode, "TS_CHUNK_SERIES", 4)  # chunks of 4, 4 and 1 series
    chunked = pipeline.predict_quantiles(histories, 6, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
