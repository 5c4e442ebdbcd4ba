"""One loaded DynaMix model per (checkpoint, device), shared by every adapter instance.

sktime and darts clone estimators freely (grid search, backtesting, ``clone``); the adapters keep
only the plain ``model`` value and ask this cache for the network, so clones share one copy in
memory and nothing is loaded until a fit needs it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .checkpoint import check_device, load_model
from .config import DynaMixConfig
from .model import DynaMix
from .pipeline import DynaMixPipeline

#: What the adapters accept as ``model``: a released name, a checkpoint path, or a config (dict or
#: DynaMixConfig: a randomly initialised model, seeded, for tests and for training from scratch).
ModelSpec = str | os.PathLike | Mapping[str, Any] | DynaMixConfig

_CACHE: dict[tuple[Any, str], DynaMix] = {}
_LOCK = threading.Lock()


def _key(spec: ModelSpec) -> Any:
    if isinstance(spec, DynaMixConfig):
        return ("config", tuple(sorted(spec.to_dict()["architecture"].items())))
    if isinstance(spec, Mapping):
        return ("config", tuple(sorted(spec.items())))
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and Path(spec).exists()):
        return ("path", str(Path(spec).resolve()))
    if isinstance(spec, str):
        return ("name", spec)
    raise TypeError(
        f"model must be a released model name, a checkpoint path or a config dict, got {type(spec).__name__}."
    )


def get_model(spec: ModelSpec, device: str | torch.device = "cpu") -> DynaMix:
    """The model for ``spec`` on ``device``, loaded on first use and shared afterwards.

    Parameters
    ----------
    spec : str, path or dict
        Released model name (e.g. ``"dynamix-3d-alrnn-v1.0"``), checkpoint path, or an
        architecture dict for a seeded random model.
    device : str or torch.device, default "cpu"
        Device to hold the model on.

    Returns
    -------
    DynaMix
        In eval mode. Shared: do not modify it in place (copy it first, e.g. for fine-tuning).
    """
    device = check_device(device)
    key = (_key(spec), str(device))
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            if isinstance(spec, DynaMixConfig | Mapping):
                model = DynaMix.random(spec if isinstance(spec, DynaMixConfig) else dict(spec)).eval().to(device)
            else:
                model = load_model(spec, device=device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _CACHE[key] = model
        return model


def cached_pipeline(spec: ModelSpec, device: str | torch.device = "cpu") -> DynaMixPipeline:
    """A :class:`DynaMixPipeline` over the cached model (the adapters look it up on every use, so they never
    hold the torch model: pickles stay small and a fresh process reloads it on first use)."""
    return DynaMixPipeline(get_model(spec, device))


def clear_model_cache() -> None:
    """Forget all cached models (they are freed once no estimator refers to them)."""
    with _LOCK:
        _CACHE.clear()
