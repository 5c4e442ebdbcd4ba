"""Screenshots of the running app for docs/app.md (headless system Chromium through selenium).

Usage: ``python docs/scripts/app_screenshots.py [--out docs/images]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from dynamix_forecasting.app import build_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    wait = WebDriverWait(driver, 120)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait.until(ec.element_to_be_clickable((By.ID, "forecast-button"))).click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "Forecast of"))
        time.sleep(2)
        driver.save_screenshot(str(Path(args.out) / "app_lorenz.png"))
        bad = Path(tempfile.mkdtemp()) / "prices.csv"
        bad.write_text("date,price\n2024-01-01,10\n2024-01-02,n/a\n2024-01-03,12\n")
        driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(bad))
        time.sleep(1)
        driver.find_element(By.ID, "forecast-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "Error"))
        time.sleep(1)
        driver.set_window_size(1400, 900)
        driver.save_screenshot(str(Path(args.out) / "app_error.png"))
    finally:
        driver.quit()
        demo.close()
    print(f"wrote {args.out}/app_lorenz.png and app_error.png")


if __name__ == "__main__":
    main()
