"""Shared fixtures. The official weights come from ../shared/models/dynamix (or $DYNAMIX_MODEL_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dynamix_forecasting import DynaMix, DynaMixPipeline, load_model
from dynamix_forecasting.model_cache import random_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL_DIR = Path(os.environ.get("DYNAMIX_MODEL_DIR", SHARED / "models" / "dynamix"))
MODEL_FILE = MODEL_DIR / "dynamix-3d-alrnn-v1.0.safetensors"
EXAMPLES = SHARED / "data" / "dynamix-examples"
PARITY = SHARED / "reference" / "parity"
DYSTS = SHARED / "data" / "dysts"


def _require(path: Path) -> None:
    if path.exists():
        return
    message = f"{path} is missing: the official DynaMix weights/data are expected in ../shared (or $DYNAMIX_MODEL_DIR)."
    if os.environ.get("CI"):
        pytest.fail(message)  # in CI the shared folder is always there: a missing file is a failure
    pytest.skip(message)


@pytest.fixture(scope="session")
def released_model() -> DynaMix:
    _require(MODEL_FILE)
    return load_model(MODEL_FILE)


@pytest.fixture(scope="session")
def pipeline(released_model: DynaMix) -> DynaMixPipeline:
    return DynaMixPipeline(released_model)


@pytest.fixture(scope="session")
def example():
    def load(name: str) -> np.ndarray:
        path = EXAMPLES / f"{name}.npy"
        _require(path)
        return np.load(path)

    return load


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    _require(PARITY / "cases.json")
    return PARITY


@pytest.fixture(scope="session")
def dysts_dir() -> Path:
    _require(DYSTS / "index.json")
    return DYSTS


#: A tiny architecture for the adapters' ``model`` parameter (a seeded random model, no weights needed).
TINY_CONFIG = {"M": 8, "N": 3, "Experts": 2, "P": 1}


@pytest.fixture(scope="session")
def released_path(released_model: DynaMix) -> str:
    """Path of the official checkpoint, for the adapters' ``model`` parameter."""
    return str(MODEL_FILE)


@pytest.fixture
def tiny_pipeline() -> DynaMixPipeline:
    """A small randomly initialised model: fast, offline, no weights needed."""
    return DynaMixPipeline(random_model({"M": 12, "N": 3, "Experts": 4, "P": 2}))
