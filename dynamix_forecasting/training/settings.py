"""Training settings: the published hyper-parameters as defaults, each with a one-line explanation."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def _setting(default: Any, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainingSettings:
    """Everything a training run needs; ``dynamix train --help`` lists these with their meaning."""

    # model
    M: int = _setting(30, "latent dimension")
    N: int = _setting(3, "observation dimension (channels of the data)")
    Experts: int = _setting(10, "number of almost-linear RNN experts")
    P: int = _setting(2, "ReLU units per expert")
    init: str | None = _setting(None, "checkpoint to start from (name or path) for fine-tuning; None: from scratch")
    grow_experts: int = _setting(
        0, "with init: copy each expert of the initial model to reach this many experts (a multiple), same forecasts"
    )
    freeze: str | None = _setting(None, "'experts' or 'gating' to keep those weights fixed while fine-tuning")
    # data
    data: str = _setting(
        "dynamics",
        "'dynamics': windows of chaotic trajectories (the published recipe); 'time_series': synthetic series laid "
        "out as the time-series mode sees them (see dynamix_forecasting.training.synthetic)",
    )
    ts_series: int = _setting(10_000, "data='time_series': synthetic series generated (cached in corpus_cache)")
    ts_length: int = _setting(256, "data='time_series': points per synthetic series")
    growth_share: float = _setting(0.0, "data='time_series': share of trend-dominated synthetic series")
    positional_share: float = _setting(0.4, "data='time_series': share of batches with the positional embedding")
    systems: list[str] = field(
        default_factory=list, metadata={"help": "dysts systems to train on; empty: the 30 of DynaMix's training corpus"}
    )
    trajectory_files: list[str] = field(
        default_factory=list, metadata={"help": ".npy/.csv trajectories to train on instead of dysts systems"}
    )
    regenerate: bool = _setting(False, "integrate dysts systems anew (DOP853, rtol=atol=1e-10) instead of stored ones")
    n_points: int = _setting(100_000, "points per dysts trajectory")
    windows_per_system: int = _setting(1000, "random windows drawn per trajectory")
    context_length: int = _setting(500, "context points of each window")
    context_lengths: list[int] = field(
        default_factory=list,
        metadata={
            "help": "context lengths drawn per batch (all ending where the window's context ends); empty: context_length"
        },
    )
    rotate_channels: bool = _setting(
        False, "augment: mix each window's channels by a random rotation (rescaled to unit variance)"
    )
    sequence_length: int = _setting(100, "training-sequence points of each window")
    overlap: int = _setting(50, "points the training sequence shares with the end of the context")
    input_noise: float = _setting(0.05, "std of the Gaussian noise on the teacher signal")
    # objective and optimizer
    n_interleave: int = _setting(10, "teacher forcing: replace the observed latent entries every this many steps")
    gating_noise_weight: float = _setting(0.1, "lambda of the regulariser mean(exp(-|sigma_gate| / 0.01))")
    optimizer: str = _setting("radam", "'radam', 'adam' or 'adamw'")
    weight_decay: float = _setting(0.0, "weight decay (AdamW)")
    lr_start: float = _setting(5e-3, "initial learning rate")
    lr_end: float = _setting(1e-5, "learning rate at the last epoch (exponential decay)")
    grad_clip: float = _setting(10.0, "gradient-norm clipping")
    batch_size: int = _setting(16, "sequences per batch")
    batches_per_epoch: int = _setting(50, "batches per epoch")
    epochs: int = _setting(2000, "epochs")
    # evaluation, output
    eval_every: int = _setting(50, "evaluate on the held-out systems every this many epochs (0: never)")
    eval_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "held-out trajectories (.npy) for D_stsp/D_H/MASE; empty: lorenz63/chua/sprottM.npy in $DYNAMIX_EXAMPLES_DIR"
        },
    )
    eval_context: int = _setting(2000, "context points of the evaluation forecasts")
    eval_horizon: int = _setting(2000, "steps of the evaluation forecasts")
    eval_samples: int = _setting(5, "sample paths per evaluation forecast (scores: median over paths and files)")
    checkpoint_every: int = _setting(10, "write a checkpoint (and the trainer state) every this many epochs")
    output_dir: str = _setting("dynamix-training", "folder for checkpoints, metrics.csv and TensorBoard logs")
    name: str = _setting("dynamix-3d-alrnn-trained", "model name of the written checkpoint")
    seed: int = _setting(0, "seed of the initialisation, the windows, the batches and the noise")
    device: str = _setting("cpu", "'cpu' or 'cuda'")
    threads: int = _setting(0, "CPU threads of the training step (0: all cores)")
    engine: str = _setting(
        "auto",
        "'fast': compiled forward and backward pass (CPU, almost-linear RNN experts); 'reference': autograd on "
        "DynaMix.step (any device, any experts); 'auto': fast where it applies, else reference",
    )
    corpus_dir: str | None = _setting(
        None,
        "folder of the 30 systems at the published scale (e.g. ../shared/data/dysts-train-100k): trains on the "
        "published corpus of 34 trajectories (the four second regimes are integrated once and cached in "
        "corpus_cache)",
    )
    corpus_cache: str = _setting("dynamix-corpus-cache", "folder where the second-regime trajectories are cached")
    extra_regimes: int = _setting(
        0,
        "with corpus_dir: new chaotic regimes per training system (parameters and initial condition perturbed, kept "
        "if chaotic), cached in corpus_cache",
    )
    regime_spread: float = _setting(0.15, "relative half-width of the parameter perturbation of extra_regimes")
    regime_points: int = _setting(20_000, "points per extra-regime trajectory")
    universe_dir: str | None = _setting(
        None,
        "folder of a generated corpus of new chaotic flows (dynamix generate-systems): its kept systems are added "
        "to the training data (alone, or beside corpus_dir)",
    )
    universe_systems: int = _setting(0, "with universe_dir: the first this many kept systems (0: all)")

    def __post_init__(self) -> None:
        positive = ["M", "N", "Experts", "n_points", "windows_per_system", "context_length", "sequence_length",
                    "n_interleave", "batch_size", "batches_per_epoch", "epochs", "checkpoint_every", "eval_samples",
                    "eval_context", "eval_horizon", "regime_points", "ts_series", "ts_length"]  # fmt: skip
        for key in positive:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Setting {key!r} must be a positive int, got {value!r}.")
        for key in (
            "P",
            "overlap",
            "eval_every",
            "threads",
            "seed",
            "extra_regimes",
            "grow_experts",
            "universe_systems",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Setting {key!r} must be a non-negative int, got {value!r}.")
        floats = {"input_noise": 0.0, "gating_noise_weight": 0.0, "weight_decay": 0.0, "lr_start": None,
                  "lr_end": None, "grad_clip": None, "regime_spread": 0.0, "positional_share": 0.0, "growth_share": 0.0}  # fmt: skip
        for key, low in floats.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"Setting {key!r} must be a finite number, got {value!r}.")
            if (low is None and value <= 0) or (low is not None and value < low):
                need = "positive" if low is None else "non-negative"
                raise ValueError(f"Setting {key!r} must be {need}, got {value!r}.")
        if self.P > self.M:
            raise ValueError(f"Setting 'P' ({self.P}) cannot exceed the latent dimension M ({self.M}).")
        if self.N > self.M:
            raise ValueError(f"Setting 'N' ({self.N}) cannot exceed the latent dimension M ({self.M}).")
        if self.overlap >= self.sequence_length:
            raise ValueError(f"overlap ({self.overlap}) must lie in [0, sequence_length={self.sequence_length}).")
        if self.sequence_length < 2:
            raise ValueError("sequence_length must be at least 2 (an initial observation and one target).")
        if self.context_length < 3 or self.context_length <= self.overlap:
            raise ValueError(
                f"context_length ({self.context_length}) must be at least 3 and longer than the overlap ({self.overlap}) "
                "of the training sequence with the context; raise context_length or lower overlap."
            )
        if self.engine not in ("auto", "fast", "reference"):
            raise ValueError(f"engine must be 'auto', 'fast' or 'reference', got {self.engine!r}.")
        if self.engine == "fast" and self.device.split(":")[0] != "cpu":
            raise ValueError(
                f"engine='fast' runs on the CPU; for device={self.device!r} set engine='reference' (autograd on the "
                "device)."
            )
        if not isinstance(self.context_lengths, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > self.overlap and c >= 3 for c in self.context_lengths
        ):
            raise ValueError(
                f"context_lengths must be a list of ints above the overlap ({self.overlap}), got {self.context_lengths!r}."
            )
        if not isinstance(self.rotate_channels, bool):
            raise ValueError(f"rotate_channels must be true or false, got {self.rotate_channels!r}.")
        if self.data not in ("dynamics", "time_series"):
            raise ValueError(f"data must be 'dynamics' or 'time_series', got {self.data!r}.")
        if self.data == "time_series" and self.overlap != 1:
            raise ValueError(
                f"data='time_series' continues each context from its last point; set overlap=1 (got {self.overlap})."
            )
        for key in ("positional_share", "growth_share"):
            if getattr(self, key) > 1:
                raise ValueError(f"{key} must lie in [0, 1], got {getattr(self, key)}.")
        if self.grow_experts and self.init is None:
            raise ValueError("grow_experts grows the initial checkpoint; set init too.")
        if self.extra_regimes and self.corpus_dir is None:
            raise ValueError("extra_regimes perturbs the systems of corpus_dir; set corpus_dir too.")
        if self.universe_systems and self.universe_dir is None:
            raise ValueError("universe_systems counts the systems of universe_dir; set universe_dir too.")
        if self.universe_dir is not None and (self.systems or self.trajectory_files):
            raise ValueError("universe_dir adds to corpus_dir (or stands alone); drop systems and trajectory_files.")
        if self.universe_dir is not None and not (Path(self.universe_dir) / "manifest.json").exists():
            raise ValueError(
                f"universe_dir {self.universe_dir!r} holds no manifest.json; generate the corpus first "
                "(dynamix generate-systems --cache ...)."
            )
        if self.corpus_dir is not None and (self.systems or self.trajectory_files):
            raise ValueError("corpus_dir replaces systems and trajectory_files; set only one of them.")
        if self.optimizer not in ("radam", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'radam', 'adam' or 'adamw', got {self.optimizer!r}.")
        if self.freeze not in (None, "experts", "gating"):
            raise ValueError(f"freeze must be None, 'experts' or 'gating', got {self.freeze!r}.")
        if not 0 < self.lr_end <= self.lr_start:
            raise ValueError(f"Need 0 < lr_end <= lr_start, got {self.lr_end} and {self.lr_start}.")
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}.")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError("device='cuda' but torch sees no CUDA device; use device='cpu'.")
        for key in ("systems", "trajectory_files", "eval_files"):
            value = getattr(self, key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"Setting {key!r} must be a list of strings, got {value!r}.")
        for key in ("output_dir", "name"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ValueError(f"Setting {key!r} must be a non-empty string, got {getattr(self, key)!r}.")
        if self.init is not None and not isinstance(self.init, str):
            raise ValueError(f"Setting 'init' must be a checkpoint name or path, got {self.init!r}.")

    @classmethod
    def help_text(cls) -> str:
        """One line per setting: name, default, meaning."""
        lines = []
        for f in fields(cls):
            factory = f.default_factory
            default = factory() if f.default is MISSING and callable(factory) else f.default
            shown = "-" if default is None else json.dumps(default)
            lines.append(f"  {f.name:<20} {shown:<26} {f.metadata['help']}")
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingSettings:
        """Settings from a dict; unknown keys are an error naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training settings {unknown}; known settings: {sorted(known)}.")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path | None, overrides: list[str] | None = None) -> TrainingSettings:
        """Settings from a JSON file (None: the defaults) with ``key=value`` overrides (values parsed as JSON)."""
        try:
            values: dict[str, Any] = json.loads(Path(path).read_text()) if path else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"Cannot read the settings file {path}: {exc}") from exc
        if not isinstance(values, dict):
            raise ValueError(
                f"The settings file {path} must hold a JSON object of settings, got {type(values).__name__}."
            )
        types = {f.name: f.type for f in fields(cls)}
        for item in overrides or []:
            if "=" not in item:
                raise ValueError(f"Override {item!r} must look like key=value.")
            key, raw = item.split("=", 1)
            if key not in types:
                raise ValueError(f"Unknown training setting {key!r} in --override; see dynamix train --help.")
            try:
                values[key] = json.loads(raw)
            except json.JSONDecodeError:
                values[key] = raw  # plain strings need no quotes
        return cls.from_dict(values)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")
