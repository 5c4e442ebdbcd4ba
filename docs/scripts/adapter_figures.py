"""Make the figures of docs/sktime.md and docs/darts.md (needs the official weights and the data in ../shared).

Usage: ``python docs/scripts/adapter_figures.py``; writes docs/images/sktime_*.png and darts_*.png and prints the
figures quoted in the pages.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from darts import TimeSeries
from darts.metrics import mase as darts_mase
from sktime.datasets import load_airline
from sktime.forecasting.compose import TransformedTargetForecaster
from sktime.forecasting.model_evaluation import evaluate
from sktime.performance_metrics.forecasting import MeanAbsoluteScaledError
from sktime.split import ExpandingWindowSplitter
from sktime.transformations.series.detrend import Deseasonalizer

from benchmarks.data import load_item
from dynamix_forecasting.darts import DynaMixModel
from dynamix_forecasting.sktime import DynaMixForecaster

IMAGES = Path(__file__).resolve().parents[1] / "images"


def sktime_figure() -> None:
    y = load_airline()
    train, test = y.iloc[:-24], y.iloc[-24:]
    forecaster = TransformedTargetForecaster(
        [
            ("deseasonalize", Deseasonalizer(sp=12, model="multiplicative")),
            ("dynamix", DynaMixForecaster(fit_nonstationary=True, num_samples=100, random_state=0)),
        ]
    )
    forecaster.fit(train)
    fh = list(range(1, 25))
    pred = forecaster.predict(fh=fh)
    interval = forecaster.predict_interval(fh=fh, coverage=0.8)
    mape = float(np.mean(np.abs(pred.to_numpy() - test.to_numpy()) / test.to_numpy()))

    cv = ExpandingWindowSplitter(initial_window=96, step_length=12, fh=list(range(1, 13)))
    folds = evaluate(DynaMixForecaster(num_samples=100, random_state=0), cv, y, scoring=MeanAbsoluteScaledError(sp=12))
    print("sktime: 24-month MAPE with Deseasonalizer + DynaMix:", round(mape, 4))
    print("sktime: MASE per fold (ExpandingWindowSplitter):", folds["test_MeanAbsoluteScaledError"].round(3).tolist())

    fig, ax = plt.subplots(figsize=(9, 3.6))
    t = y.index.to_timestamp()
    ax.plot(t[:-24], train.to_numpy(), color="black", lw=1, label="context")
    ax.plot(t[-24:], test.to_numpy(), color="black", lw=1, ls="--", label="truth")
    ax.plot(t[-24:], pred.to_numpy(), color="C0", lw=1.5, label="DynaMix median")
    low, high = interval.iloc[:, 0].to_numpy(), interval.iloc[:, 1].to_numpy()
    ax.fill_between(t[-24:], low, high, color="C0", alpha=0.25, label="80 % interval")
    ax.set_title(f"sktime: Deseasonalizer + DynaMixForecaster on the airline series (MAPE {mape:.1%})")
    ax.set_ylabel("passengers (thousands)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(IMAGES / "sktime_airline.png", dpi=110)
    plt.close(fig)


def darts_figure() -> None:
    ot = load_item("ETTh", "ETTh1_OT")
    series = TimeSeries.from_series(ot.iloc[-(512 + 24 * 14) :])
    model = DynaMixModel(context_length=512, random_state=0).fit(series)
    windows = model.historical_forecasts(
        series,
        start=512,
        start_format="position",
        forecast_horizon=24,
        stride=24,
        retrain=False,
        last_points_only=False,
        num_samples=100,
    )
    score = model.backtest(series, historical_forecasts=windows, metric=darts_mase, metric_kwargs={"m": 24})
    print("darts: 14 daily windows of ETTh1 OT, horizon 24, backtest MASE (m=24):", round(float(score), 3))

    fig, ax = plt.subplots(figsize=(9, 3.6))
    tail = series[-(24 * 16) :]
    ax.plot(tail.time_index, tail.values()[:, 0], color="black", lw=0.8, label="ETTh1 oil temperature")
    for j, w in enumerate(windows):
        ax.plot(
            w.time_index, w.quantile(0.5).values()[:, 0], color="C1", lw=1.2, label="median forecast" if not j else None
        )
        ax.fill_between(
            w.time_index,
            w.quantile(0.1).values()[:, 0],
            w.quantile(0.9).values()[:, 0],
            color="C1",
            alpha=0.25,
            label="10-90 %" if not j else None,
        )
    ax.set_title(f"darts: historical_forecasts, 14 windows x 24 h in one batched rollout (MASE {float(score):.2f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(IMAGES / "darts_backtest.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sktime_figure()
    darts_figure()
