"""The ``dynamix`` command line."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynamix_forecasting.cli import main

from .conftest import MODEL_FILE


def test_forecast_csv_with_time_column_samples_and_plot(tmp_path, lorenz, released_model, capsys):
    data = lorenz[:400]
    frame = pd.DataFrame(data, columns=["x", "y", "z"])
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=400, freq="h"))
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    out, png = tmp_path / "out.csv", tmp_path / "plot.png"
    code = main(
        [
            "forecast",
            str(src),
            "--horizon",
            "48",
            "--model",
            str(MODEL_FILE),
            "--samples",
            "8",
            "--seed",
            "1",
            "--output",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    result = pd.read_csv(out, index_col=0, parse_dates=True)
    assert len(result) == 48 and {"x", "x_q0.1", "z_q0.9"} <= set(result.columns)
    assert result.index[0] == pd.Timestamp("2024-01-17 16:00")
    assert (result["x_q0.1"] <= result["x_q0.9"]).all() and np.isfinite(result.to_numpy()).all()
    assert png.stat().st_size > 10_000 and (tmp_path / "plot_attractor.png").exists()


def test_forecast_reports_bad_input(tmp_path, capsys):
    src = tmp_path / "bad.csv"
    pd.DataFrame({"a": [1.0, float("nan")] * 30}).to_csv(src, index=False)
    assert main(["forecast", str(src), "--horizon", "5", "--model", str(MODEL_FILE)]) == 2
    assert "NaN" in capsys.readouterr().err


def test_demo_writes_csv_and_plots(tmp_path, released_model):
    code = main(
        ["demo", "--output-dir", str(tmp_path), "--model", str(MODEL_FILE), "--horizon", "300", "--samples", "4"]
    )
    assert code == 0
    forecast = pd.read_csv(tmp_path / "lorenz63_forecast.csv")
    assert len(forecast) == 300 and np.isfinite(forecast[["x", "y", "z"]].to_numpy()).all()
    assert (tmp_path / "lorenz63_forecast.png").exists() and (tmp_path / "lorenz63_long_attractor.png").exists()
