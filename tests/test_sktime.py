"""The sktime adapter: sktime's conformance suite, values against the engine, real sktime workflows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sktime.datasets import load_airline
from sktime.forecasting.compose import TransformedTargetForecaster
from sktime.forecasting.model_evaluation import evaluate
from sktime.forecasting.model_selection import ForecastingGridSearchCV
from sktime.performance_metrics.forecasting import MeanAbsoluteScaledError
from sktime.split import ExpandingWindowSplitter
from sktime.transformations.series.detrend import Deseasonalizer
from sktime.transformations.series.impute import Imputer
from sktime.utils.estimator_checks import check_estimator

from dynamix_forecasting import DynaMixPipeline, model_cache
from dynamix_forecasting.sktime import DynaMixForecaster

from .conftest import TINY_CONFIG as TINY


@pytest.fixture(scope="module")
def lorenz_frame(lorenz):
    data = lorenz
    return pd.DataFrame(data[:600], columns=["x", "y", "z"])


@pytest.mark.slow
def test_sktime_conformance_suite():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(DynaMixForecaster, raise_exceptions=True, verbose=False)
    assert len(results) > 800 and all(v == "PASSED" for v in results.values())


def test_subset_of_horizon_equals_rows_of_full_horizon(released_path, lorenz_frame):
    f = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=20, random_state=3).fit(lorenz_frame)
    full = f.predict(fh=[1, 2, 3, 4, 5])
    part = f.predict(fh=[2, 5])
    pd.testing.assert_frame_equal(part, full.iloc[[1, 4]])
    q_full = f.predict_quantiles(fh=range(1, 6), alpha=[0.1, 0.9])
    q_part = f.predict_quantiles(fh=[2, 5], alpha=[0.1, 0.9])
    pd.testing.assert_frame_equal(q_part, q_full.iloc[[1, 4]])


def test_point_forecast_is_the_engines_forecast(released_path, lorenz_frame):
    f = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=16, random_state=5).fit(lorenz_frame)
    pred = f.predict(fh=range(1, 31))
    engine = DynaMixPipeline.from_pretrained(released_path).forecast(
        lorenz_frame.to_numpy(), 30, num_samples=16, seed=5
    )
    np.testing.assert_allclose(pred.to_numpy(), np.median(engine, axis=0), rtol=1e-6, atol=1e-6)
    assert list(pred.columns) == ["x", "y", "z"] and list(pred.index) == list(range(600, 630))
    single = (
        DynaMixForecaster(mode="dynamics", model=released_path, num_samples=1, random_state=5)
        .fit(lorenz_frame)
        .predict(fh=range(1, 31))
    )
    one_path = DynaMixPipeline.from_pretrained(released_path).forecast(lorenz_frame.to_numpy(), 30, seed=5)
    np.testing.assert_allclose(single.to_numpy(), one_path, rtol=1e-6, atol=1e-6)


def test_panel_is_one_engine_call_and_matches_series_one_by_one(released_path, lorenz, monkeypatch):
    data = lorenz[:, 0]
    frames = {f"s{i}": pd.Series(data[i * 100 : i * 100 + 300 + 2 * i]) for i in range(50)}  # unequal lengths
    panel = pd.concat(frames, names=["series", "time"]).to_frame("x")
    calls = []
    original = DynaMixPipeline.predict_quantiles

    def counting(self, *args, **kwargs):
        calls.append(len(args[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynaMixPipeline, "predict_quantiles", counting)
    f = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=8, random_state=0).fit(panel)
    pred = f.predict(fh=range(1, 13))
    assert calls == [50]  # one batched call with all 50 series
    for key in ["s0", "s17", "s49"]:
        alone = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=8, random_state=0).fit(
            frames[key].to_frame("x")
        )
        expected = alone.predict(fh=range(1, 13))
        got = pred.loc[key]
        assert list(got.index) == list(expected.index)  # each series continues from its own end
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-4, atol=1e-4 * data.std())


def test_update_equals_fit_on_the_longer_series(released_path):
    y = load_airline()
    a = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=10, random_state=1).fit(y.iloc[:100])
    a.update(y.iloc[100:120])
    b = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=10, random_state=1).fit(y.iloc[:120])
    pd.testing.assert_series_equal(a.predict(fh=[1, 2, 3]), b.predict(fh=[1, 2, 3]))
    assert a.cutoff[0] == y.index[119]


def test_context_length_uses_the_last_points(released_path):
    y = load_airline()
    short = DynaMixForecaster(
        mode="dynamics", model=released_path, num_samples=10, context_length=48, random_state=2
    ).fit(y)
    tail = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=10, random_state=2).fit(y.iloc[-48:])
    pd.testing.assert_series_equal(short.predict(fh=[1, 6, 12]), tail.predict(fh=[1, 6, 12]))


def test_evaluate_with_expanding_window_returns_mase_per_fold(released_path):
    y = load_airline()
    cv = ExpandingWindowSplitter(initial_window=96, step_length=12, fh=list(range(1, 13)))
    forecaster = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=20, random_state=0)
    for strategy in ("refit", "update"):
        result = evaluate(forecaster, cv, y, scoring=MeanAbsoluteScaledError(sp=12), strategy=strategy)
        mase = result["test_MeanAbsoluteScaledError"].to_numpy()
        assert len(mase) == 4 and np.isfinite(mase).all()
        assert 0.05 < np.median(mase) < 3.0, mase  # a real forecast of the airline series, not noise


def test_inside_transformed_target_forecaster_and_with_an_imputer(released_path):
    y = load_airline()
    pipe = TransformedTargetForecaster(
        [
            ("deseasonalize", Deseasonalizer(sp=12, model="multiplicative")),
            (
                "dynamix",
                DynaMixForecaster(
                    mode="dynamics", model=released_path, fit_nonstationary=True, num_samples=20, random_state=0
                ),
            ),
        ]
    )
    pipe.fit(y.iloc[:-12])
    pred = pipe.predict(fh=list(range(1, 13)))
    mape = np.mean(np.abs(pred.to_numpy() - y.iloc[-12:].to_numpy()) / y.iloc[-12:].to_numpy())
    assert mape < 0.08, mape  # deseasonalized + the non-stationary mode follows the trend
    gappy = y.copy()
    gappy.iloc[[10, 50, 90]] = np.nan
    imputed = TransformedTargetForecaster(
        [
            ("impute", Imputer(method="linear")),
            ("dynamix", DynaMixForecaster(mode="dynamics", model=released_path, num_samples=5, random_state=0)),
        ]
    )
    assert np.isfinite(imputed.fit(gappy).predict(fh=[1, 2]).to_numpy()).all()


def test_grid_search_over_preprocessing():
    y = load_airline()
    cv = ExpandingWindowSplitter(initial_window=120, step_length=12, fh=[1, 2, 3])
    search = ForecastingGridSearchCV(
        DynaMixForecaster(mode="dynamics", model=TINY, num_samples=3, random_state=0),
        cv=cv,
        param_grid={"preprocessing_method": ["pos_embedding", "zero_embedding"]},
    )
    search.fit(y)
    assert search.best_params_["preprocessing_method"] in ("pos_embedding", "zero_embedding")
    assert len(search.predict(fh=[1, 2, 3])) == 3


@pytest.mark.parametrize("kind", ["period", "datetime_freq", "datetime_nofreq", "range", "int"])
def test_horizons_on_every_index_kind(kind):
    n = 60
    values = np.sin(np.arange(n) / 3.0)
    index = {
        "period": pd.period_range("2000-01", periods=n, freq="M"),
        "datetime_freq": pd.date_range("2020-01-01", periods=n, freq="D"),
        "datetime_nofreq": pd.DatetimeIndex(pd.date_range("2020-01-01", periods=n, freq="h").to_list()),
        "range": pd.RangeIndex(n),
        "int": pd.Index(np.arange(100, 100 + n)),
    }[kind]
    y = pd.Series(values, index=index)
    f = DynaMixForecaster(mode="dynamics", model=TINY, num_samples=4, random_state=0).fit(y)
    rel = f.predict(fh=[2, 5])
    absolute_fh = pd.Index([index[-1] + 2 * (index[1] - index[0]), index[-1] + 5 * (index[1] - index[0])])
    if kind == "period":
        absolute_fh = pd.PeriodIndex([index[-1] + 2, index[-1] + 5])
    from sktime.forecasting.base import ForecastingHorizon

    ab = f.predict(fh=ForecastingHorizon(absolute_fh, is_relative=False))
    np.testing.assert_array_equal(rel.to_numpy(), ab.to_numpy())
    assert list(rel.index) == list(absolute_fh)
    long = f.predict(fh=range(1, 25))
    np.testing.assert_array_equal(rel.to_numpy(), long.iloc[[1, 4]].to_numpy())


def test_hierarchical_and_multivariate_beyond_n():
    from sktime.utils._testing.hierarchical import _make_hierarchical

    y = _make_hierarchical(hierarchy_levels=(2, 3), max_timepoints=40, min_timepoints=30, n_columns=2, random_state=0)
    f = DynaMixForecaster(mode="dynamics", model=TINY, num_samples=4, random_state=0).fit(y)
    pred = f.predict(fh=[1, 2, 3])
    assert pred.shape == (18, 2) and pred.index.nlevels == 3 and np.isfinite(pred.to_numpy()).all()
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.standard_normal((50, 5)).cumsum(0), columns=list("abcde"))
    with pytest.warns(UserWarning, match="5 channels"):
        out = DynaMixForecaster(mode="dynamics", model=TINY, num_samples=4, random_state=0).fit(wide).predict(fh=[1, 2])
    assert out.shape == (2, 5) and list(out.columns) == list("abcde")


def test_probabilistic_outputs_are_consistent_and_reproducible(released_path, lorenz_frame):
    f = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=50, random_state=7).fit(lorenz_frame)
    fh = list(range(1, 41))
    q = f.predict_quantiles(fh=fh, alpha=[0.05, 0.5, 0.95])
    pred = f.predict(fh=fh)
    np.testing.assert_allclose(q.xs(0.5, axis=1, level=1).to_numpy(), pred.to_numpy())
    assert (q.xs(0.05, axis=1, level=1).to_numpy() <= q.xs(0.95, axis=1, level=1).to_numpy()).all()
    width = (q.xs(0.95, axis=1, level=1) - q.xs(0.05, axis=1, level=1)).to_numpy()
    assert width[:3].mean() < width[-5:].mean()  # uncertainty grows with the horizon
    interval = f.predict_interval(fh=fh, coverage=0.9)
    np.testing.assert_allclose(interval.iloc[:, 0], q.iloc[:, 0])
    dist = f.predict_proba(fh=fh)
    assert type(dist).__name__ == "Empirical"
    mean = dist.mean().to_numpy()  # the ensemble mean lies inside the 90 % band at every step
    assert (q.xs(0.05, axis=1, level=1).to_numpy() <= mean).all() and (
        mean <= q.xs(0.95, axis=1, level=1).to_numpy()
    ).all()
    again = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=50, random_state=7).fit(lorenz_frame)
    pd.testing.assert_frame_equal(again.predict_quantiles(fh=fh, alpha=[0.05, 0.5, 0.95]), q)
    free = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=50).fit(lorenz_frame)
    pd.testing.assert_frame_equal(free.predict(fh=fh), free.predict(fh=fh))  # one fit, one set of paths
    assert not free.predict(fh=fh).equals(pred)


def test_model_is_loaded_lazily_shared_and_dropped_on_pickle(released_path, lorenz_frame):
    model_cache.clear_model_cache()
    f = DynaMixForecaster(mode="dynamics", model=released_path, num_samples=4, random_state=0)
    assert not model_cache._CACHE  # nothing loaded in __init__
    f.fit(lorenz_frame)
    assert len(model_cache._CACHE) == 1
    g = f.clone().fit(lorenz_frame)
    assert len(model_cache._CACHE) == 1  # clones share the one model
    from sktime.base import load

    serial = f.save()  # sktime's own in-memory serialization: (class, pickled bytes)
    assert len(serial[1]) < 200_000  # the torch model is not in the pickle
    model_cache.clear_model_cache()
    restored = load(serial)
    pd.testing.assert_frame_equal(restored.predict(fh=[1, 2]), g.predict(fh=[1, 2]))


def test_bad_input_gets_clear_errors():
    y = load_airline()
    f = DynaMixForecaster(mode="dynamics", model=TINY)
    gappy = y.copy()
    gappy.iloc[5] = np.nan
    with pytest.raises(ValueError, match="missing"):
        f.fit(gappy)
    with pytest.raises(ValueError, match="at least 3"):
        DynaMixForecaster(mode="dynamics", model=TINY).fit(y.iloc[:2])
    irregular = pd.Series(
        np.arange(10.0),
        index=pd.to_datetime(
            [
                "2020-01-01",
                "2020-01-02",
                "2020-01-05",
                "2020-01-06",
                "2020-01-09",
                "2020-01-10",
                "2020-01-12",
                "2020-01-15",
                "2020-01-16",
                "2020-01-20",
            ]
        ),
    )
    with pytest.raises(ValueError, match="irregular DatetimeIndex"):
        DynaMixForecaster(mode="dynamics", model=TINY).fit(irregular)
    with pytest.raises(ValueError, match="preprocessing_method"):
        DynaMixForecaster(mode="dynamics", model=TINY, preprocessing_method="fourier").fit(y)
    with pytest.raises(ValueError, match="num_samples"):
        DynaMixForecaster(mode="dynamics", model=TINY, num_samples=0).fit(y)
    with pytest.raises(Exception, match="Could not find DynaMix model"):
        DynaMixForecaster(mode="dynamics", model="no-such-model", device="cpu").fit(y)
