"""Shared fixtures. The suite is self-contained: the released weights ship inside the package, the
authors' parity references are copied under ``tests/data``, Lorenz-63 contexts are integrated here, and
tiny random models cover everything else. Only the large benchmark data (dysts trajectories, the Chronos
tasks, the long example series) stays in ``../shared``: tests that need it skip without it, except in
CI (``CI`` set), where ``../shared`` is always present and a missing file is a failure. The app's tests
treat gradio and the system Chromium the same way (``make test`` installs both).
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: no test may wait on the network (the hub reads this at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

# Triton's interpreter is chosen when triton is first imported (its reductions are themselves jitted): on a
# machine without CUDA the fused GPU kernel's tests run in it (tests/test_triton_rollout.py).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from dynamix_forecasting import DynaMix, DynaMixPipeline, load_model
from dynamix_forecasting.checkpoint import BUNDLED_DIR
from dynamix_forecasting.examples import lorenz63

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: The released checkpoint as shipped in the package (the same file as ../shared/models/dynamix).
MODEL_FILE = BUNDLED_DIR / "dynamix-3d-alrnn-v1.0.safetensors"
EXAMPLES = SHARED / "data" / "dynamix-examples"
PARITY = Path(__file__).resolve().parent / "data" / "parity"
DYSTS = SHARED / "data" / "dysts"


def skip_outside_ci(message: str, allow_module_level: bool = False) -> NoReturn:
    """Skip with ``message`` on a machine that lacks what the test needs; in CI (``CI`` set), which always has
    the shared data, the app's extra and the system browser, fail instead: there a missing piece is a bug."""
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=allow_module_level)


def _require(path: Path) -> None:
    if not path.exists():
        skip_outside_ci(
            f"{path} is missing: this test needs the large data in ../shared (absent outside the project's machines)."
        )


@pytest.fixture(scope="session")
def released_model() -> DynaMix:
    return load_model(MODEL_FILE)


@pytest.fixture(scope="session")
def pipeline(released_model: DynaMix) -> DynaMixPipeline:
    return DynaMixPipeline(released_model)


@pytest.fixture(scope="session")
def lorenz() -> np.ndarray:
    """A standardized Lorenz-63 trajectory (12,000 x 3, about 40 points per loop), integrated with scipy."""
    return lorenz63(12_000, dt=0.02)


@pytest.fixture(scope="session")
def example():
    """The example series of the DynaMix repositories in ../shared (chua, sprottM, sine, ...)."""

    def load(name: str) -> np.ndarray:
        path = EXAMPLES / f"{name}.npy"
        _require(path)
        return np.load(path)

    return load


@pytest.fixture(scope="session")
def parity_dir() -> Path:
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
    return DynaMixPipeline(DynaMix.random({"M": 12, "N": 3, "Experts": 4, "P": 2}))
