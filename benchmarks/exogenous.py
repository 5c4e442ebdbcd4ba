"""``python -m benchmarks.exogenous``: does ``DynaMixForecaster(exogenous=True)`` help on sktime's datasets with X?

Declared before running: the first two columns of X in each dataset's order (the released model observes three
channels: y and two of X), the last ``h`` points held out, MAE of the point forecast, seed 0. Compared with the
univariate default (the time-series mode) and the univariate dynamics mode (the same mode without X).
"""

from __future__ import annotations

import warnings

import numpy as np
from sktime.datasets import load_longley, load_macroeconomic, load_uschange

from dynamix_forecasting.sktime import DynaMixForecaster


def compare(name: str, y, X, h: int) -> dict[str, float]:
    """MAE of the three set-ups on the last ``h`` points of ``y``."""
    train, test, fh = y.iloc[:-h], y.iloc[-h:].to_numpy(), np.arange(1, h + 1)
    x_cols = X.iloc[:, :2]
    runs = {
        "default (time series)": DynaMixForecaster(random_state=0).fit(train).predict(fh),
        "dynamics, y only": DynaMixForecaster(mode="dynamics", random_state=0).fit(train).predict(fh),
        "exogenous (y + 2 X)": DynaMixForecaster(exogenous=True, random_state=0)
        .fit(train, X=x_cols.iloc[:-h])
        .predict(fh, X=x_cols.iloc[-h:]),
    }
    out = {k: float(np.mean(np.abs(v.to_numpy() - test))) for k, v in runs.items()}
    print(f"{name:14s} h={h:2d} X={list(x_cols.columns)}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()))
    return out


def main() -> int:
    warnings.simplefilter("ignore")
    y, X = load_longley()
    compare("longley", y, X, 4)
    y, X = load_uschange()
    compare("uschange", y, X, 8)
    macro = load_macroeconomic()
    compare("macroeconomic", macro["realgdp"], macro.drop(columns=["realgdp"]), 8)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
