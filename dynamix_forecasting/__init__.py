"""dynamix-forecasting: the DynaMix foundation model for zero-shot forecasting of dynamical systems."""

from .checkpoint import DEFAULT_MODEL, KNOWN_MODELS, CheckpointNotFoundError, load_model, save_model
from .config import DynaMixConfig
from .engine import DivergenceWarning
from .metrics import geometrical_misalignment, mase, temporal_misalignment
from .model import DynaMix
from .options import ForecastOptions
from .output import quantiles
from .pipeline import DynaMixPipeline

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "CheckpointNotFoundError",
    "DivergenceWarning",
    "DynaMix",
    "DynaMixConfig",
    "DynaMixPipeline",
    "ForecastOptions",
    "geometrical_misalignment",
    "load_model",
    "mase",
    "quantiles",
    "save_model",
    "temporal_misalignment",
]
