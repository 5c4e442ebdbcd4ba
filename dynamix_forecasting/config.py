"""Architecture settings of a DynaMix model, as stored in the released ``config_*.json`` files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EXPERT_TYPES = ("almost_linear_rnn", "clipped_shallow_plrnn")


@dataclass(frozen=True)
class DynaMixConfig:
    """Sizes and expert kind of a DynaMix model.

    Parameters
    ----------
    M : int
        Latent dimension (30 in the released models).
    N : int
        Observation dimension the model was trained for (3 or 6 in the released models).
    Experts : int
        Number of experts (10 in the released models).
    P : int
        ReLU units per almost-linear RNN expert.
    hidden_dim : int
        Hidden width of clipped-shallow-PLRNN experts (unused for AL-RNN experts).
    expert_type : str
        ``"almost_linear_rnn"`` or ``"clipped_shallow_plrnn"``.
    probabilistic_expert : bool
        Whether each expert adds Gaussian noise ``sigma_e * eps`` to its output.
    """

    M: int = 30
    N: int = 3
    Experts: int = 10
    P: int = 2
    hidden_dim: int = 50
    expert_type: str = "almost_linear_rnn"
    probabilistic_expert: bool = False

    def __post_init__(self) -> None:
        for name in ("M", "N", "Experts", "hidden_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DynaMixConfig.{name} must be a positive int, got {value!r}.")
        if not isinstance(self.P, int) or isinstance(self.P, bool) or not 0 <= self.P <= self.M:
            raise ValueError(f"DynaMixConfig.P must be an int in [0, M={self.M}], got {self.P!r}.")
        if self.N > self.M:
            raise ValueError(f"DynaMixConfig.N ({self.N}) cannot exceed the latent dimension M ({self.M}).")
        if self.expert_type not in EXPERT_TYPES:
            raise ValueError(f"Unknown expert_type {self.expert_type!r}; expected one of {EXPERT_TYPES}.")
        if not isinstance(self.probabilistic_expert, bool):
            raise ValueError("DynaMixConfig.probabilistic_expert must be a bool.")

    def to_dict(self) -> dict[str, Any]:
        """Return the config in the released JSON layout ``{"architecture": {...}}``."""
        return {"architecture": asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DynaMixConfig:
        """Build a config from the released JSON layout (or from a flat dict of the same keys).

        Raises
        ------
        ValueError
            If keys are unknown or values are invalid.
        """
        arch = data.get("architecture", data)
        if not isinstance(arch, dict):
            raise ValueError("A DynaMix config must be a dict with an 'architecture' entry.")
        known = set(cls.__dataclass_fields__)
        unknown = set(arch) - known
        if unknown:
            raise ValueError(f"Unknown DynaMix config keys {sorted(unknown)}; known keys are {sorted(known)}.")
        return cls(**arch)
