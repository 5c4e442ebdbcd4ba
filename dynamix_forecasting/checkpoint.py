"""Find, load and save DynaMix checkpoints.

A model named ``dynamix-3d-alrnn-v1.0`` is two files, as on the Hugging Face hub repo
``DurstewitzLab/dynamix``: ``dynamix-3d-alrnn-v1.0.safetensors`` and ``config_3d-alrnn-v1.0.json``.
Julia checkpoints (``.bson`` from the authors' DynaMix-julia code) load too. The default model ships
inside the package (``weights/``, CC-BY-4.0, see the README there), so it loads offline.

Every file is checked before anything is built from it: the config must be a JSON object stating the
sizes, the safetensors header (read without loading the tensors) must list exactly the tensors of that
config, in a floating dtype, and the values must be finite with non-zero softmax temperatures.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import REQUIRED_KEYS, DynaMixConfig
from .julia_bson import dynamix_state_dict_from_bson
from .model import DynaMix

HUB_REPO_ID = "DurstewitzLab/dynamix"
DEFAULT_MODEL = "dynamix-3d-alrnn-v1.0"
#: Checkpoints this project trained, shipped in ``weights/``: name -> the training run that made it (its
#: ``config.json`` reproduces it) and what it is for. Model cards in ``docs/models.md``.
PROJECT_MODELS: dict[str, dict[str, str]] = {}
#: Project checkpoints that were bundled once and no longer are: name -> why, and how to rebuild one.
RETIRED_MODELS: dict[str, str] = {
    "dynamix-3d-ft-grow20": (
        "it was bundled in a 0.2.0 development version although it missed the project's ship rule (beat the "
        "release on all four held-out medians: it was 1.9 % behind on D_stsp at C = 512); see docs/models.md. "
        "Rebuild it with `dynamix train --config docs/training-runs/dynamix-3d-ft-grow20/config.json` (about 17 "
        "minutes on two cores) and load the run's checkpoint by path"
    ),
}
KNOWN_MODELS = ("dynamix-3d-alrnn-v1.0", "dynamix-6d-alrnn-v1.0", *PROJECT_MODELS)
MODEL_DIR_ENV = "DYNAMIX_MODEL_DIR"
#: Checkpoints shipped inside the package.
BUNDLED_DIR = Path(__file__).resolve().parent / "weights"
#: The released weight files this package knows, by sha256, with the architecture they were trained as:
#: a config that states another one (say ``P: 0``) would run the weights as a different model.
RELEASED_WEIGHTS = {
    "c950aef03f24e600bb159a05bf64aaea0fc89a6c66310baac624ac4b7e10ed5b": DynaMixConfig(
        M=30, N=3, Experts=10, P=2, hidden_dim=50, expert_type="almost_linear_rnn", probabilistic_expert=False
    ),
}
#: Largest config file read (a real one is a few hundred bytes).
MAX_CONFIG_BYTES = 1 << 20
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: Key of the safetensors metadata entry in which save_model records the architecture.
_METADATA_KEY = "dynamix_config"


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

    offline = bool(local_files_only)  # None and False: huggingface_hub follows HF_HUB_OFFLINE
    weights = hf_hub_download(HUB_REPO_ID, f"{name}.safetensors", cache_dir=cache_dir, local_files_only=offline)
    config = hf_hub_download(HUB_REPO_ID, config_filename(name), cache_dir=cache_dir, local_files_only=offline)
    return Path(weights), Path(config)


def _check_values(state: dict[str, torch.Tensor], source: str) -> None:
    """Finite weights and non-zero softmax temperatures (a zero temperature divides by zero at every step)."""
    for key, value in state.items():
        if not torch.is_floating_point(value):
            raise ValueError(f"Checkpoint {source}: tensor {key!r} has dtype {value.dtype}; weights must be floats.")
        if not torch.isfinite(value).all():
            raise ValueError(f"Checkpoint {source}: tensor {key!r} holds NaN/inf values; the file is corrupt.")
    for key in ("gating_network.softmax_temp1", "gating_network.softmax_temp2"):
        if key in state and bool((state[key] == 0).any()):
            raise ValueError(
                f"Checkpoint {source}: {key} is 0; the softmax temperature must be non-zero (the file is corrupt)."
            )


def _compare_shapes(found: dict[str, tuple[int, ...]], config: DynaMixConfig, source: str) -> None:
    expected = config.state_dict_shapes()
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


def _build_model(state: dict[str, torch.Tensor], config: DynaMixConfig, source: str) -> DynaMix:
    _compare_shapes({k: tuple(v.shape) for k, v in state.items()}, config, source)
    _check_values(state, source)
    model = DynaMix(config)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def _read_config(config_path: Path) -> DynaMixConfig:
    try:
        with open(config_path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"Cannot read the config {config_path}: {exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"{config_path} is larger than {MAX_CONFIG_BYTES} bytes; it is not a DynaMix config file.")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ValueError(f"{config_path} nests too deeply to be a DynaMix config file.") from None
    try:
        return DynaMixConfig.from_dict(data, require=REQUIRED_KEYS)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{config_path}: {exc}") from exc


def _load_pair(weights: Path, config_path: Path) -> DynaMix:
    config = _read_config(config_path)
    source = str(weights)
    # The header is read first (no tensor is loaded): names, shapes and dtypes must be the config's.
    try:
        with safe_open(str(weights), framework="pt") as f:
            metadata = f.metadata() or {}
            found, dtypes = {}, {}
            for key in f.keys():
                sl = f.get_slice(key)
                found[key], dtypes[key] = tuple(sl.get_shape()), sl.get_dtype()
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights} is not a valid safetensors file ({exc}).") from exc
    _compare_shapes(found, config, source)
    bad = {k: d for k, d in dtypes.items() if d not in _FLOAT_DTYPES}
    if bad:
        raise ValueError(
            f"Checkpoint {source} stores non-float tensors {dict(list(bad.items())[:5])}; weights must be floats."
        )
    if _METADATA_KEY in metadata:
        try:
            recorded = DynaMixConfig.from_dict(json.loads(metadata[_METADATA_KEY]))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"Checkpoint {source} has unreadable architecture metadata: {exc}") from exc
        if recorded != config:
            raise ValueError(
                f"Checkpoint {source} was saved as {recorded} but its config file says {config}; "
                "use the config file that was written with these weights."
            )
    released = RELEASED_WEIGHTS.get(hashlib.sha256(weights.read_bytes()).hexdigest())
    if released is not None and released != config:
        raise ValueError(
            f"{weights} holds the released DynaMix weights, trained as {released}, but its config file says "
            f"{config}; that would run them as a different model. Use the released config."
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights} is not a valid safetensors file ({exc}).") from exc
    return _build_model(state, config, source)


def load_model(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> DynaMix:
    """Load a DynaMix model by name or path.

    Resolution order: (1) a path to a directory, a ``.safetensors`` file (its config beside it)
    or a Julia ``.bson`` file; (2) ``$DYNAMIX_MODEL_DIR/<name>.safetensors``; (3) the weights bundled
    with the package (the default ``dynamix-3d-alrnn-v1.0``); (4) the Hugging Face hub repo
    ``DurstewitzLab/dynamix`` through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``).

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
        If a file is malformed, or a checkpoint's config and tensors disagree (checked before any
        tensor is loaded).
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"name_or_path must be a model name or a path, got {type(name_or_path).__name__}.")
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ValueError(
            f"name_or_path is empty; pass a model name (default {DEFAULT_MODEL!r}, known: {', '.join(KNOWN_MODELS)}) "
            "or the path of a checkpoint."
        )
    if len(text) > MAX_NAME_LENGTH:
        raise ValueError(
            f"name_or_path is {len(text)} characters long; a model name or path has at most {MAX_NAME_LENGTH}. "
            f"Pass a model name (known: {', '.join(KNOWN_MODELS)}) or the path of a checkpoint."
        )
    if text in RETIRED_MODELS:
        raise CheckpointNotFoundError(f"{text!r} is no longer bundled: {RETIRED_MODELS[text]}.")
    target = check_device(device)
    path = Path(text).expanduser()
    looked: list[str] = []
    model: DynaMix | None = None
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a path component longer than the file system allows
        raise ValueError(f"name_or_path {text[:80]!r} is not a usable path ({exc.strerror}).") from None
    if path.suffix == ".bson" or (exists and path.suffix in (".safetensors", ".bson", "")):
        if not path.exists():
            raise CheckpointNotFoundError(f"Julia checkpoint {path} does not exist.")
        if path.suffix == ".bson":
            state, arch = dynamix_state_dict_from_bson(path)
            model = _build_model({k: torch.from_numpy(v) for k, v in state.items()}, DynaMixConfig(**arch), str(path))
        elif path.is_dir():
            run_checkpoint = path / "checkpoint"
            if not any(path.glob("*.safetensors")) and run_checkpoint.is_dir():  # a training run's output folder
                path = run_checkpoint
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
            pair = _pair_in_directory(BUNDLED_DIR, name) if BUNDLED_DIR.is_dir() else None
            looked.append(f"the package's bundled weights ({BUNDLED_DIR})")
            if pair:
                model = _load_pair(*pair)
        if model is None:
            try:
                hub_cache = None if cache_dir is None else Path(cache_dir)
                model = _load_pair(*_download_from_hub(name, hub_cache, local_files_only))
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
    return model.to(target)


#: Longest model name or path :func:`load_model` accepts (file systems allow 4,096 bytes).
MAX_NAME_LENGTH = 4096


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device` that this machine has; a clear error otherwise."""
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}.")
    try:
        target = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"Unknown device {device!r} ({exc}); use 'cpu', 'cuda' or 'cuda:N'.") from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={str(device)!r}, but torch sees no CUDA device here (torch.cuda.is_available() is False); "
                "use device='cpu', or install a CUDA build of torch on a machine with a GPU."
            )
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={str(device)!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    elif target.type not in ("cpu", "mps", "meta"):
        raise ValueError(f"device={str(device)!r} is not supported; use 'cpu' or 'cuda'.")
    if target.type == "meta":
        raise ValueError("device='meta' holds no values; load the model on 'cpu' or 'cuda'.")
    return target


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
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"Refusing to save a model with NaN/inf weights (in {bad[:5]}); the training diverged.")
    arch = json.dumps(model.config.to_dict())
    # Each file is written to a temporary name and renamed: an interrupted save never leaves a half file.
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={_METADATA_KEY: arch})
    with atomic_path(config) as tmp:
        tmp.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return weights, config


class atomic_path:
    """A temporary path beside ``target`` that replaces it (``os.replace``) when the block succeeds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = Path(target)

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)
