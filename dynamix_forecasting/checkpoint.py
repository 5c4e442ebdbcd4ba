"""Find, load and save DynaMix checkpoints.

A model named ``dynamix-3d-alrnn-v1.0`` is two files, as on the Hugging Face hub repo
``DurstewitzLab/dynamix``: ``dynamix-3d-alrnn-v1.0.safetensors`` and ``config_3d-alrnn-v1.0.json``.
Julia checkpoints (``.bson`` from the authors' DynaMix-julia code) load too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import DynaMixConfig
from .julia_bson import dynamix_state_dict_from_bson
from .model import DynaMix

HUB_REPO_ID = "DurstewitzLab/dynamix"
DEFAULT_MODEL = "dynamix-3d-alrnn-v1.0"
KNOWN_MODELS = ("dynamix-3d-alrnn-v1.0", "dynamix-6d-alrnn-v1.0")
MODEL_DIR_ENV = "DYNAMIX_MODEL_DIR"


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint of the requested name was found locally or on the hub."""


def config_filename(name: str) -> str:
    """Config file name for a model name: ``dynamix-3d-alrnn-v1.0`` -> ``config_3d-alrnn-v1.0.json``."""
    return f"config_{name.removeprefix('dynamix-')}.json"


def _pair_in_directory(directory: Path, name: str | None) -> tuple[Path, Path] | None:
    if name is None:
        candidates = sorted(directory.glob("*.safetensors"))
        if len(candidates) != 1:
            raise ValueError(
                f"{directory} holds {len(candidates)} .safetensors files; pass the file itself "
                f"or a name, e.g. load_model('{directory / DEFAULT_MODEL}.safetensors')."
            )
        weights = candidates[0]
    else:
        weights = directory / f"{name}.safetensors"
    config = weights.with_name(config_filename(weights.stem))
    if weights.is_file():
        if not config.is_file():
            raise CheckpointNotFoundError(f"Found {weights} but not its config {config.name} beside it.")
        return weights, config
    return None


def _download_from_hub(name: str, cache_dir: str | Path | None, local_files_only: bool | None) -> tuple[Path, Path]:
    from huggingface_hub import hf_hub_download

    kwargs: dict[str, object] = {"repo_id": HUB_REPO_ID, "cache_dir": cache_dir}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    weights = hf_hub_download(filename=f"{name}.safetensors", **kwargs)
    config = hf_hub_download(filename=config_filename(name), **kwargs)
    return Path(weights), Path(config)


def _build_model(state: dict[str, torch.Tensor], config: DynaMixConfig, source: str) -> DynaMix:
    model = DynaMix(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing tensors {missing[:5]}")
        if unexpected:
            details.append(f"unexpected tensors {unexpected[:5]}")
        if wrong:
            details.append(
                "shape mismatches "
                + ", ".join(f"{k}: config wants {expected[k]}, file has {found[k]}" for k in wrong[:5])
            )
        raise ValueError(
            f"Checkpoint {source} does not match its config {config}: " + "; ".join(details) + ". "
            "Check that the config file belongs to these weights."
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def _load_pair(weights: Path, config_path: Path) -> DynaMix:
    try:
        config = DynaMixConfig.from_dict(json.loads(config_path.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
    return _build_model(load_file(str(weights)), config, str(weights))


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> DynaMix:
    """Load a DynaMix model by name or path.

    Resolution order: (1) a path to a directory, a ``.safetensors`` file (its config beside it)
    or a Julia ``.bson`` file; (2) ``$DYNAMIX_MODEL_DIR/<name>.safetensors``; (3) the Hugging Face
    hub repo ``DurstewitzLab/dynamix`` through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``).

    Parameters
    ----------
    name_or_path : str or path-like, default "dynamix-3d-alrnn-v1.0"
        A released model name (see ``KNOWN_MODELS``) or a local path.
    device : str or torch.device, default "cpu"
        Where to put the model.
    cache_dir : path-like, optional
        Hugging Face cache directory for downloads.
    local_files_only : bool, optional
        Only use the hub cache, never the network (``None``: follow ``HF_HUB_OFFLINE``).

    Returns
    -------
    DynaMix
        The model in eval mode.

    Raises
    ------
    CheckpointNotFoundError
        If the model is neither local nor reachable; the message lists where it looked.
    ValueError
        If a checkpoint's config and tensors disagree.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    looked: list[str] = []
    model: DynaMix | None = None
    if path.suffix == ".bson" or (path.exists() and path.suffix in (".safetensors", ".bson", "")):
        if not path.exists():
            raise CheckpointNotFoundError(f"Julia checkpoint {path} does not exist.")
        if path.suffix == ".bson":
            state, arch = dynamix_state_dict_from_bson(path)
            model = _build_model({k: torch.from_numpy(v) for k, v in state.items()}, DynaMixConfig(**arch), str(path))
        elif path.is_dir():
            pair = _pair_in_directory(path, None)
            model = _load_pair(*pair) if pair else None
        else:
            pair = _pair_in_directory(path.parent, path.stem)
            model = _load_pair(*pair) if pair else None
        looked.append(str(path))
    elif path.suffix == ".safetensors":
        raise CheckpointNotFoundError(f"Checkpoint file {path} does not exist.")
    if model is None:
        name = path.name.removesuffix(".safetensors")
        env_dir = os.environ.get(MODEL_DIR_ENV)
        if env_dir:
            pair = _pair_in_directory(Path(env_dir).expanduser(), name)
            looked.append(f"${MODEL_DIR_ENV}={env_dir}")
            if pair:
                model = _load_pair(*pair)
        else:
            looked.append(f"${MODEL_DIR_ENV} (not set)")
        if model is None:
            try:
                model = _load_pair(*_download_from_hub(name, cache_dir, local_files_only))
            except Exception as exc:
                looked.append(f"the Hugging Face hub repo {HUB_REPO_ID} ({type(exc).__name__})")
                known = ", ".join(KNOWN_MODELS)
                raise CheckpointNotFoundError(
                    f"Could not find DynaMix model {text!r}. Looked in: {'; '.join(looked)}. "
                    f"Known released names: {known}. Without network, download the two files "
                    f"'{name}.safetensors' and '{config_filename(name)}' from {HUB_REPO_ID} into a folder "
                    f"and set {MODEL_DIR_ENV} to it (export {MODEL_DIR_ENV}=/path/to/folder), "
                    "or pass the path of the .safetensors file."
                ) from exc
    return model.to(device)


def save_model(model: DynaMix, directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write a model in the released two-file layout.

    Parameters
    ----------
    model : DynaMix
        The model to save.
    directory : path-like
        Target folder (created if missing).
    name : str
        Model name, e.g. ``"dynamix-3d-alrnn-finetuned"``; gives ``<name>.safetensors`` and
        ``config_<name without the dynamix- prefix>.json``.

    Returns
    -------
    tuple of pathlib.Path
        The weights file and the config file.
    """
    if not name or "/" in name or name.endswith(".safetensors"):
        raise ValueError(f"Model name {name!r} must be a plain file stem such as 'dynamix-3d-custom'.")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    config = out / config_filename(name)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights))
    config.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return weights, config
