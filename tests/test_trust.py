"""Forecasts users can rely on in sktime and darts: seasons from the data, horizon-consistent forecasts, options
that act or are refused, coherent probabilistic output, darts without needless fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from darts import TimeSeries
from sktime.datasets import load_airline
from sktime.forecasting.base import ForecastingHorizon

from dynamix_forecasting import CheckpointNotFoundError
from dynamix_forecasting.darts import DynaMixModel
from dynamix_forecasting.sktime import DynaMixForecaster


@pytest.fixture(scope="module")
def airline() -> pd.Series:
    return load_airline()


def _sine(n: int = 320) -> np.ndarray:
    t = np.arange(n)
    return 10 + 2 * np.sin(2 * np.pi * t / 20) + np.random.default_rng(0).normal(0, 0.7, n)


# 1. seasons found in the data


def test_a_season_the_index_does_not_name_is_found(airline):
    y = pd.Series(_sine())
    f = DynaMixForecaster().fit(y[:300])
    rmse = np.sqrt(np.mean((f.predict(np.arange(1, 21)).to_numpy() - y[300:].to_numpy()) ** 2))
    snaive = np.sqrt(np.mean((y[280:300].to_numpy() - y[300:].to_numpy()) ** 2))
    assert f.season_lengths_ == [20] and rmse < snaive  # RMSE 2.34 (a flat line) before
    series = TimeSeries.from_values(airline.to_numpy()[:-24])  # darts, RangeIndex
    pred = DynaMixModel().fit(series).predict(24).values()[:, 0]
    truth, history = airline.to_numpy()[-24:], airline.to_numpy()[:-24]
    snaive = np.resize(history[-12:], 24)
    assert np.mean(np.abs(pred - truth)) < np.mean(np.abs(snaive - truth))  # MAE 41 against 51 (measured)


# 2. the same forecast whatever the horizon


@pytest.mark.parametrize("mode", ["auto", "dynamics"])
def test_sktime_forecast_of_a_step_does_not_depend_on_the_horizon(airline, mode):
    f = DynaMixForecaster(mode=mode, num_samples=20, random_state=0).fit(airline[:-24])
    full = f.predict(np.arange(1, 37)).to_numpy()
    for h in (1, 5, 12, 24, 36):
        np.testing.assert_array_equal(f.predict(np.arange(1, h + 1)).to_numpy(), full[:h])
    np.testing.assert_array_equal(f.predict([2, 5]).to_numpy(), full[[1, 4]])
    intervals = f.predict_interval(np.arange(1, 37), coverage=0.9).to_numpy()
    np.testing.assert_array_equal(f.predict_interval(np.arange(1, 13), coverage=0.9).to_numpy(), intervals[:12])


def test_darts_forecast_of_a_step_does_not_depend_on_the_horizon(airline):
    series = TimeSeries.from_series(airline.to_timestamp().asfreq("MS"))[:-24]
    model = DynaMixModel().fit(series)
    full = model.predict(36).values()
    for n in range(1, 37, 5):
        np.testing.assert_array_equal(model.predict(n).values(), full[:n])
    samples = model.predict(36, num_samples=50).all_values()
    np.testing.assert_array_equal(model.predict(12, num_samples=50).all_values(), samples[:12])


# 3. options act or are refused


def test_options_of_the_other_mode_are_refused_not_ignored(airline):
    for option in ({"standardize": False}, {"fit_nonstationary": True}, {"noise": False}):
        with pytest.raises(ValueError, match="belongs to mode='dynamics'"):
            DynaMixForecaster(mode="time_series", **option).fit(airline)
    with pytest.raises(ValueError, match="num_point_samples belongs to mode='dynamics'"):
        DynaMixModel(mode="time_series", num_point_samples=10).fit(TimeSeries.from_values(airline.to_numpy()))
    # Under mode="auto" such an option selects the mode it belongs to, so it acts.
    a = DynaMixForecaster(random_state=0).fit(airline).predict([1, 2, 3]).to_numpy()
    b = DynaMixForecaster(standardize=True, random_state=0).fit(airline).predict([1, 2, 3]).to_numpy()
    assert not np.allclose(a, b)


# 4. coherent probabilistic output


def test_paths_are_trajectories_with_the_calibrated_distribution(airline):
    f = DynaMixForecaster(num_samples=2000, random_state=0).fit(airline[:-24])
    fh = np.arange(1, 25)
    q = f.predict_quantiles(fh, alpha=[0.05, 0.5, 0.95]).to_numpy()
    draws = f.predict_proba(fh).quantile([0.05, 0.5, 0.95]).to_numpy()
    scale = q[:, 2] - q[:, 0]
    assert np.max(np.abs(draws - q) / scale[:, None]) < 0.1  # within Monte Carlo error of 2,000 draws (was 43)
    paths = DynaMixModel(random_state=0).fit(TimeSeries.from_values(airline.to_numpy()[:-24]))
    values = paths.predict(24, num_samples=200).all_values()[:, 0, :]  # (H, K)
    dev = values - np.median(values, axis=1, keepdims=True)
    lag1 = np.mean([np.corrcoef(dev[1:, k], dev[:-1, k])[0, 1] for k in range(200)])
    assert lag1 > 0.5  # independent draws per step would give about 0


def test_nonnegative_and_constant_series():
    counts = np.r_[np.random.default_rng(1).poisson(3.0, 60), np.zeros(24)].astype(float)
    f = DynaMixForecaster(random_state=0).fit(pd.Series(counts))
    fh = np.arange(1, 13)
    assert f.predict(fh).min() >= 0 and f.predict_quantiles(fh, alpha=[0.05, 0.5]).to_numpy().min() >= 0
    constant = DynaMixForecaster().fit(pd.Series(np.full(50, 4.2)))
    np.testing.assert_array_equal(constant.predict(fh).to_numpy(), 4.2)
    interval = constant.predict_interval(fh, coverage=0.9).to_numpy()
    np.testing.assert_array_equal(interval, 4.2)  # documented: no evidence of variation, zero width


# 5, 6. darts without needless fits; models checked at fit


def test_darts_backtests_without_refitting_and_without_fit(airline):
    series = TimeSeries.from_series(airline.to_timestamp().asfreq("MS"))
    model = DynaMixModel()
    kw = dict(start=100, start_format="position", forecast_horizon=6, last_points_only=False)
    batched = model.historical_forecasts(series, **kw)  # retrain=True (darts' default) before any fit
    loop = model.historical_forecasts(series, retrain=False, enable_optimization=False, **kw)
    assert len(batched) == len(loop)
    for a, b in zip(batched, loop, strict=True):
        np.testing.assert_array_equal(a.values(), b.values())
    assert np.isfinite(DynaMixModel().backtest(series, start=100, start_format="position", forecast_horizon=6))


def test_a_misspelled_model_fails_at_fit(airline):
    with pytest.raises(CheckpointNotFoundError):
        DynaMixModel(model="dynamix-3d-alrnn-v9").fit(TimeSeries.from_values(airline.to_numpy()))
    with pytest.raises(CheckpointNotFoundError):
        DynaMixForecaster(model="dynamix-3d-alrnn-v9").fit(airline)
    fh = ForecastingHorizon([1, 2], is_relative=True)
    assert len(DynaMixForecaster().fit(airline).predict(fh)) == 2


# 7. exogenous channels


def test_exogenous_x_is_forecast_jointly_as_extra_channels():
    from sktime.datasets import load_uschange

    y, X = load_uschange()
    f = DynaMixForecaster(exogenous=True, random_state=0).fit(y.iloc[:-8], X=X.iloc[:-8, :2])
    pred = f.predict(np.arange(1, 9), X=X.iloc[-8:, :2])
    assert isinstance(pred, pd.Series) and pred.name == y.name and np.isfinite(pred).all()
    # The context is y and X's two columns as one 3-channel system: the same as that forecast by hand.
    from dynamix_forecasting import DynaMixPipeline

    joint = np.column_stack([y.iloc[:-8].to_numpy(), X.iloc[:-8, :2].to_numpy()])
    _, point = DynaMixPipeline.from_pretrained().predict_quantiles(joint, 8, [0.5], mode="dynamics", num_samples=100)
    np.testing.assert_allclose(pred.to_numpy(), point[:, 0])
    with pytest.raises(ValueError, match="pass X to fit"):
        DynaMixForecaster(exogenous=True).fit(y)
    with pytest.raises(ValueError, match="at most the model's N = 3"):
        DynaMixForecaster(exogenous=True).fit(y, X=X)
    with pytest.raises(ValueError, match="cannot be combined with mode='time_series'"):
        DynaMixForecaster(exogenous=True, mode="time_series").fit(y, X=X.iloc[:, :2])


def test_darts_past_covariates_as_extra_channels():
    from sktime.datasets import load_uschange

    y, X = load_uschange()
    series = TimeSeries.from_values(y.to_numpy()[:-8])
    covariates = TimeSeries.from_values(X.to_numpy()[:-8, :2])
    model = DynaMixModel(exogenous=True, random_state=0).fit(series, past_covariates=covariates)
    out = model.predict(8)  # the covariates of fit are the default of a single series
    assert out.n_components == 1 and out.n_timesteps == 8
    from dynamix_forecasting import DynaMixPipeline

    joint = np.column_stack([series.values(), covariates.values()])
    _, point = DynaMixPipeline.from_pretrained().predict_quantiles(joint, 8, [0.5], mode="dynamics", num_samples=100)
    np.testing.assert_allclose(out.values()[:, 0], point[:, 0])
    with pytest.raises(ValueError, match="Set exogenous=True"):
        DynaMixModel().fit(series, past_covariates=covariates)
    with pytest.raises(ValueError, match="pass them"):
        DynaMixModel(exogenous=True).fit(series)
