"""dynamix-forecasting: the DynaMix foundation model for zero-shot forecasting of dynamical systems."""

from .checkpoint import DEFAULT_MODEL, KNOWN_MODELS, CheckpointNotFoundError, load_model, save_model
from .config import DynaMixConfig
from .metrics import geometrical_misalignment, mase, temporal_misalignment
from .model import DynaMix
from .pipeline import DivergenceWarning, DynaMixPipeline, quantiles

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "CheckpointNotFoundError",
    "DivergenceWarning",
    "DynaMix",
    "DynaMixConfig",
    "DynaMixPipeline",
    "geometrical_misalignment",
    "load_model",
    "mase",
    "quantiles",
    "save_model",
    "temporal_misalignment",
]
