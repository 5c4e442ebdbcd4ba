"""Benchmark data: the Chronos Benchmark II tasks and the dysts trajectories (offline, from ../shared/data)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from dynamix_forecasting.training.data import integrate_dysts

DATA_ENV = "DYNAMIX_BENCH_DATA"


def data_dir() -> Path:
    """``$DYNAMIX_BENCH_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get(DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"Benchmark data not found at {path}. Set {DATA_ENV} to the folder holding chronos-bench/ and dysts/."
        )
    return path


@dataclass
class Task:
    """One Chronos Benchmark II task: each series' history and its held-out last ``horizon`` points."""

    name: str
    horizon: int
    seasonality: int
    frequency: str
    verified: dict = field(default_factory=dict)
    item_ids: list[str] = field(default_factory=list)
    histories: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)


@lru_cache(maxsize=1)
def task_specs() -> dict[str, dict]:
    """``tasks.json``'s task entries, by name."""
    return json.loads((data_dir() / "chronos-bench" / "tasks.json").read_text())["tasks"]


def load_task(name: str, max_series: int | None = None) -> Task:
    """A task's series (long-format CSV; empty targets are NaN), split into history and target."""
    specs = task_specs()
    if name not in specs:
        raise KeyError(f"Unknown task {name!r}; known tasks: {', '.join(specs)}.")
    spec = specs[name]
    frame = pd.read_csv(data_dir() / "chronos-bench" / f"{name}.csv", dtype={"item_id": str})
    task = Task(name, int(spec["horizon"]), int(spec["seasonality"]), spec["frequency"], spec.get("verified", {}))
    for item, group in frame.groupby("item_id", sort=False):
        values = group["target"].to_numpy(dtype=np.float64)
        task.item_ids.append(str(item))
        task.histories.append(values[: -task.horizon])
        task.targets.append(values[-task.horizon :])
        if max_series is not None and len(task.item_ids) >= max_series:
            break
    return task


def load_item(name: str, item_id: str) -> pd.Series:
    """One series of a task as a pandas Series with its timestamps and the task's frequency."""
    frame = pd.read_csv(data_dir() / "chronos-bench" / f"{name}.csv", dtype={"item_id": str}, parse_dates=["timestamp"])
    frame = frame[frame["item_id"] == item_id]
    if frame.empty:
        raise KeyError(f"Task {name!r} has no series {item_id!r}.")
    series = frame.set_index("timestamp")["target"].astype("float64")
    series.index.freq = task_specs()[name]["frequency"]
    return series


def reference_results() -> pd.DataFrame:
    """Published fev scores of 21 models on these tasks (``reference_results.csv``)."""
    return pd.read_csv(data_dir() / "chronos-bench" / "reference_results.csv")


@lru_cache(maxsize=1)
def dysts_index() -> dict[str, dict]:
    """``dysts/index.json``: per system ``dim``, ``period``, ``in_dynamix_training_set`` or ``error``."""
    return json.loads((data_dir() / "dysts" / "index.json").read_text())


def dysts_systems(training: bool | None = None) -> list[str]:
    """Systems with a trajectory, optionally only the training (True) or held-out (False) ones."""
    return [
        name
        for name, info in dysts_index().items()
        if "error" not in info and (training is None or bool(info.get("in_dynamix_training_set")) == training)
    ]


def load_dysts(name: str) -> np.ndarray:
    """The stored ``(12000, dim)`` trajectory of a dysts system (50 points per period, not standardized)."""
    path = data_dir() / "dysts" / f"{name}.npy"
    if not path.exists():
        raise FileNotFoundError(f"No trajectory for {name!r} in {path.parent}; run with --regenerate or pick another.")
    return np.load(path).astype(np.float64)


def regenerate_dysts(name: str, n_points: int = 12_000) -> np.ndarray:
    """Integrate a dysts system again (DOP853, rtol = atol = 1e-10, 50 points per period); needs ``dysts``."""
    return integrate_dysts(name, n_points)
