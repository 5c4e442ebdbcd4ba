"""The local web app: its forecast function, its error paths through the gradio API client, and a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import time

import numpy as np
import pandas as pd
import pytest

from dynamix_forecasting import app as app_module
from dynamix_forecasting.app import EXAMPLES, run_forecast
from dynamix_forecasting.examples import lorenz63

from .conftest import skip_outside_ci

try:
    import gradio  # noqa: F401
except ImportError:
    skip_outside_ci("the app's extra is not installed (pip install -e '.[app]'; make test does)", True)


@pytest.fixture(scope="module")
def lorenz_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "lorenz.csv"
    pd.DataFrame(lorenz63(800), columns=["x", "y", "z"]).to_csv(path, index=False)
    return str(path)


def test_example_forecast_with_band_attractor_and_composition():
    result = run_forecast(None, EXAMPLES[0], horizon=200, samples=8, seed=1)
    assert result.message.startswith("Forecast of **Lorenz-63"), result.message
    assert set(result.figures) == {"forecast", "attractor", "composition"}
    table = pd.read_csv(result.csv_path, index_col=0)
    assert table.shape == (200, 3 * 4)  # point + three quantiles per channel
    assert (table["x_q0.1"] <= table["x_q0.9"]).all() and np.isfinite(table.to_numpy()).all()
    again = run_forecast(None, EXAMPLES[0], horizon=200, samples=8, seed=1)
    pd.testing.assert_frame_equal(table, pd.read_csv(again.csv_path, index_col=0))  # seeded


def test_time_series_mode_on_the_seasonal_example():
    result = run_forecast(None, EXAMPLES[1], horizon=24, mode="time_series", season_length=12)
    assert set(result.figures) == {"forecast"}  # one channel: no attractor; the mode mixes forecasts
    table = pd.read_csv(result.csv_path, index_col=0)
    assert table.shape == (24, 4) and (table["value_q0.1"] < table["value_q0.9"]).all()
    assert table["value"].iloc[:12].mean() > 100  # the level of the series, not a collapse to zero


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("a,b\n1,x\n2,y\n", "not numeric"),
        ("a\n" + "\n".join(["1"] * 30 + ["nan"]) + "\n", "missing or non-finite"),
        ("a\n1\n2\n3\n", "at least 20"),
    ],
)
def test_bad_uploads_get_a_message_not_a_traceback(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run_forecast(str(path), None, horizon=10)
    assert result.message.startswith("**Error:**") and message in result.message, result.message
    assert result.csv_path is None and not result.figures


def test_too_large_files_and_bad_options_are_refused(lorenz_csv, monkeypatch):
    monkeypatch.setattr(app_module, "MAX_FILE_BYTES", 1000)
    assert "MB" in run_forecast(lorenz_csv, None).message
    monkeypatch.undo()
    assert "Horizon" in run_forecast(lorenz_csv, None, horizon=0).message
    assert "Horizon" in run_forecast(lorenz_csv, None, horizon="ten").message
    assert "Upload a CSV" in run_forecast(None, None).message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    port = _free_port()
    demo = app_module.build_app()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_api_client_forecasts_and_reports_errors(served, lorenz_csv, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    message, plot, _, _, csv_path = client.predict(
        handle_file(lorenz_csv), None, 100, "pos_embedding", 0, 4, "dynamics", 0, api_name="/forecast"
    )
    assert message.startswith("Forecast of **lorenz.csv**") and plot is not None
    assert pd.read_csv(csv_path, index_col=0).shape == (100, 12)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    message, plot, _, _, csv_path = client.predict(
        handle_file(str(bad)), None, 100, "pos_embedding", 0, 4, "dynamics", 0, api_name="/forecast"
    )
    assert message.startswith("**Error:**") and "not numeric" in message and csv_path is None


def _chrome():
    driver_path = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not (driver_path and browser):
        skip_outside_ci(
            "no system Chromium/chromedriver (install the chromium and chromium-driver packages; make test does "
            "where apt-get can)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_real_browser_uploads_a_csv_and_sees_the_plot(served, lorenz_csv):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chrome()
    try:
        driver.get(served)
        wait = WebDriverWait(driver, 60)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]")))
        upload.send_keys(lorenz_csv)
        time.sleep(1.0)  # the upload finishes before the click reads it
        wait.until(ec.element_to_be_clickable((By.ID, "forecast-button"))).click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "Forecast of"))
        assert "lorenz.csv" in driver.find_element(By.ID, "message").text
        plot = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#forecast-plot img")))
        assert plot.size["width"] > 200
    finally:
        driver.quit()


def test_app_command_refuses_bad_options_before_serving(capsys):
    from dynamix_forecasting.cli import main as cli_main

    assert cli_main(["app", "--port", "0"]) == 2 and "--port" in capsys.readouterr().err
    assert cli_main(["app", "--model", "no-such-model"]) == 2 and "no-such-model" in capsys.readouterr().err
