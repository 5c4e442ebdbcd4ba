"""The darts adapter: values against the engine, coherent sample paths, batched backtesting, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from darts import TimeSeries
from darts.metrics import mase
from darts.utils.timeseries_generation import sine_timeseries
from sktime.datasets import load_airline

from dynamix_forecasting import DynaMixPipeline
from dynamix_forecasting.darts import DynaMixModel

from .conftest import TINY_CONFIG as TINY


@pytest.fixture(scope="module")
def engine(released_model):
    return DynaMixPipeline(released_model)


@pytest.fixture(scope="module")
def lorenz(lorenz):
    data = lorenz
    return TimeSeries.from_times_and_values(pd.RangeIndex(800), data[:800], columns=["x", "y", "z"])


@pytest.fixture(scope="module")
def airline():
    y = load_airline()
    y.index = y.index.to_timestamp()
    y.index.freq = "MS"
    return TimeSeries.from_series(y)


def test_predict_equals_engine_forecast(released_path, engine, lorenz, airline):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=4, num_point_samples=1).fit(lorenz)
    forecast = model.predict(50)
    assert forecast.components.tolist() == ["x", "y", "z"] and forecast.start_time() == 800
    np.testing.assert_array_equal(forecast.values(), engine.forecast(lorenz.values(), 50, seed=4))
    uni = (
        DynaMixModel(mode="dynamics", model=released_path, num_point_samples=1).fit(airline).predict(12, random_state=9)
    )
    np.testing.assert_array_equal(
        uni.values()[:, 0], engine.forecast(airline.values()[:, 0], 12, mode="dynamics", seed=9)
    )
    assert uni.time_index[0] == pd.Timestamp("1961-01-01") and uni.freq_str == "MS"


def test_several_series_in_one_call(released_path, lorenz, airline):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=0).fit([lorenz[:500], lorenz[100:800]])
    with pytest.raises(ValueError, match="pass `series`"):
        model.predict(5)
    out = model.predict(20, series=[lorenz[:500], lorenz[100:800]], num_samples=3)
    assert isinstance(out, list) and len(out) == 2 and out[0].n_samples == 3
    alone = model.predict(20, series=lorenz[100:800], num_samples=3)
    np.testing.assert_allclose(out[1].all_values()[:10], alone.all_values()[:10], atol=1e-4)
    assert out[0].start_time() == 500 and out[1].start_time() == 800


def test_sample_paths_are_coherent_trajectories(released_path, engine, lorenz):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=1).fit(lorenz)
    samples = model.predict(200, num_samples=100)
    paths = samples.all_values()[:, 0, :]  # (time, samples) of x
    noise_free = engine.forecast(lorenz.values(), 200, noise=False)[:, 0]
    median = samples.quantile(0.5).values()[:, 0]
    scale = lorenz.values()[:, 0].std()
    assert np.abs(median[:10] - noise_free[:10]).max() < 0.05 * scale

    def lag1(x: np.ndarray) -> float:
        d = x - x.mean()
        return float((d[1:] * d[:-1]).sum() / (d * d).sum())

    point_ac = lag1(noise_free)
    path_ac = np.array([lag1(paths[:, k]) for k in range(paths.shape[1])])
    assert abs(np.median(path_ac) - point_ac) < 0.02
    # Per-step independent draws (each step from a different sample) would not be a trajectory.
    rng = np.random.default_rng(0)
    scrambled = paths[np.arange(200)[:, None], rng.integers(0, 100, size=(200, 100))]
    assert np.median([lag1(scrambled[:, k]) for k in range(100)]) < point_ac - 0.1
    q = samples.quantile(0.9).values()[:, 0] - samples.quantile(0.1).values()[:, 0]
    assert q[:5].mean() < q[-20:].mean()  # the fan opens with the horizon


def test_historical_forecasts_equal_window_by_window_engine_forecasts(released_path, engine, airline):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=2, num_point_samples=1).fit(airline)
    kw = dict(series=airline, start=100, start_format="position", forecast_horizon=6, retrain=False)
    windows = model.historical_forecasts(**kw, stride=4, last_points_only=False)
    assert len(windows) == len(range(100, len(airline) - 6 + 1, 4))
    values = airline.values()[:, 0]
    for j, window in enumerate(windows):
        p = 100 + 4 * j
        expected = engine.forecast(values[:p], 6, mode="dynamics", seed=2)
        assert window.start_time() == airline.time_index[p]
        np.testing.assert_allclose(window.values()[:, 0], expected, rtol=2e-5)
    last = model.historical_forecasts(**kw, last_points_only=True)
    full = model.historical_forecasts(**kw, last_points_only=False)
    np.testing.assert_allclose(last.values()[:, 0], [w.values()[-1, 0] for w in full], rtol=1e-6)
    assert last.time_index[0] == airline.time_index[105] and len(last) == len(airline) - 105
    loop = model.historical_forecasts(**kw, last_points_only=True, enable_optimization=False)
    np.testing.assert_allclose(last.values(), loop.values(), rtol=2e-5)
    retrained = model.historical_forecasts(**{**kw, "retrain": True}, last_points_only=True)
    np.testing.assert_allclose(retrained.values(), last.values(), rtol=2e-5)
    probabilistic = model.historical_forecasts(**kw, num_samples=5, last_points_only=True)
    assert probabilistic.n_samples == 5


def test_historical_forecasts_over_several_series(released_path, lorenz):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=0, context_length=300).fit(lorenz)
    out = model.historical_forecasts(
        [lorenz[:500], lorenz[200:700]], start=400, start_format="position", forecast_horizon=3, retrain=False
    )
    assert len(out) == 2 and len(out[0]) == 500 - 400 - 3 + 1 and out[0].n_components == 3


def test_backtest_mase_on_the_airline_series(released_path, airline):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=0).fit(airline)
    score = model.backtest(
        airline,
        start=96,
        start_format="position",
        forecast_horizon=12,
        stride=12,
        retrain=False,
        metric=mase,
        metric_kwargs={"m": 12},
    )
    assert np.isfinite(score) and 0.1 < score < 3.0, score


def test_daily_series_with_explicit_start_and_index_kinds():
    days = pd.date_range("2021-01-01", periods=120, freq="D")
    daily = TimeSeries.from_times_and_values(days, np.sin(np.arange(120) / 4.0).astype(np.float32))
    model = DynaMixModel(mode="dynamics", model=TINY, random_state=0).fit(daily)
    out = model.predict(7)
    assert out.dtype == np.float32 and out.time_index[0] == pd.Timestamp("2021-05-01")
    hf = model.historical_forecasts(daily, start=pd.Timestamp("2021-03-01"), forecast_horizon=5, retrain=False)
    assert hf.time_index[0] == pd.Timestamp("2021-03-05") and hf.dtype == np.float32
    ranged = TimeSeries.from_values(sine_timeseries(length=80, value_frequency=0.05).values())
    assert DynaMixModel(mode="dynamics", model=TINY).fit(ranged).predict(4).start_time() == 80
    static = ranged.with_static_covariates(pd.Series({"site": 1.0}))
    assert (
        DynaMixModel(mode="dynamics", model=TINY).fit(static).predict(3).n_timesteps == 3
    )  # static covariates are ignored


def test_save_and_load_round_trip(released_path, lorenz, tmp_path):
    model = DynaMixModel(mode="dynamics", model=released_path, random_state=5).fit(lorenz)
    path = tmp_path / "dynamix.pkl"
    model.save(path)
    assert path.stat().st_size < 200_000  # the torch model is not in the file
    loaded = DynaMixModel.load(path)  # darts' safe loader: the class is registered on import
    np.testing.assert_array_equal(loaded.predict(10).values(), model.predict(10).values())


def test_bad_input_gets_clear_errors(lorenz):
    model = DynaMixModel(mode="dynamics", model=TINY)
    gappy = lorenz.values().copy()
    gappy[10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(TimeSeries.from_values(gappy))
    with pytest.raises(ValueError, match="needs at least 3"):
        model.fit(lorenz[:2])
    with pytest.raises(ValueError, match="takes no covariates"):
        model.fit(lorenz, past_covariates=lorenz)
    model.fit(lorenz)
    with pytest.raises(ValueError, match="takes no future covariates"):
        model.predict(3, future_covariates=lorenz)
    with pytest.raises(ValueError, match="same number of components"):
        model.predict(3, series=[lorenz, lorenz["x"]])
    with pytest.raises(ValueError, match="preprocessing_method"):
        DynaMixModel(mode="dynamics", preprocessing_method="spline")
    with pytest.raises(ValueError, match="n must be a positive int"):
        model.predict(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 0.7},
        {"start": 210, "start_format": "position", "stride": 5},
        {"start": 0.7, "overlap_end": True},
        {},
    ],
)
def test_batched_windows_are_darts_windows(kwargs):
    series = TimeSeries.from_values(sine_timeseries(length=300, value_frequency=0.03).values())
    model = DynaMixModel(mode="dynamics", model=TINY, random_state=0).fit(series)
    common = dict(series=series, forecast_horizon=24, retrain=False, last_points_only=False, **kwargs)
    fast = model.historical_forecasts(**common)
    loop = model.historical_forecasts(**common, enable_optimization=False)
    assert [w.time_index.tolist() for w in fast] == [w.time_index.tolist() for w in loop]
    np.testing.assert_allclose(np.stack([w.values() for w in fast]), np.stack([w.values() for w in loop]), atol=1e-4)


def test_darts_ensembles_and_conformal_models_take_dynamix():
    from darts.models import ConformalNaiveModel, NaiveEnsembleModel, NaiveSeasonal

    series = TimeSeries.from_values(np.sin(np.arange(200) / 5.0))
    tiny = {"M": 8, "N": 3, "Experts": 2, "P": 1}
    alone = DynaMixModel(mode="dynamics", model=tiny, random_state=0).fit(series).predict(10).values()
    seasonal = NaiveSeasonal(K=31).fit(series).predict(10).values()
    ensemble = NaiveEnsembleModel([DynaMixModel(mode="dynamics", model=tiny, random_state=0), NaiveSeasonal(K=31)]).fit(
        series
    )
    np.testing.assert_allclose(ensemble.predict(10).values(), (alone + seasonal) / 2, rtol=1e-6)
    conformal = ConformalNaiveModel(
        DynaMixModel(mode="dynamics", model=tiny, random_state=0).fit(series), quantiles=[0.1, 0.5, 0.9]
    )
    paths = conformal.predict(5, series=series, num_samples=200).all_values()
    assert paths.shape == (5, 1, 200) and np.isfinite(paths).all() and paths.std(-1).min() > 0
