"""Architecture settings of a DynaMix model, as stored in the released ``config_*.json`` files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EXPERT_TYPES = ("almost_linear_rnn", "clipped_shallow_plrnn")
#: Keys a config file must state: the sizes that cannot all be read off the weights (``P``, the number of
#: ReLU units, changes the model without changing any tensor's shape).
REQUIRED_KEYS = ("M", "N", "Experts", "P")
#: Largest model this package builds (the released ones have about 10 K parameters): a config beyond it
#: is almost surely a typo and would exhaust memory before anything could be checked.
MAX_PARAMETERS = 50_000_000


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
        if self.parameter_count() > MAX_PARAMETERS:
            raise ValueError(
                f"DynaMixConfig {self.to_dict()['architecture']} describes a model of {self.parameter_count():,} "
                f"parameters (the released models have about 10 K; this package builds at most {MAX_PARAMETERS:,}). "
                "Check the sizes M, N, Experts and hidden_dim."
            )

    def state_dict_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name and shape of every tensor of a model with this config (the released state-dict layout)."""
        m, n, j, h = self.M, self.N, self.Experts, self.hidden_dim
        shapes: dict[str, tuple[int, ...]] = {"B": (n, m)}
        for e in range(j):
            if self.expert_type == "almost_linear_rnn":
                shapes.update({f"experts.{e}.A": (m,), f"experts.{e}.W": (m, m), f"experts.{e}.h": (m,)})
            else:
                shapes.update(
                    {f"experts.{e}.A": (m,), f"experts.{e}.W1": (m, h), f"experts.{e}.W2": (h, m),
                     f"experts.{e}.h1": (m,), f"experts.{e}.h2": (h,)}
                )  # fmt: skip
            if self.probabilistic_expert:
                shapes[f"experts.{e}.sigma"] = (1,)
        shapes.update(
            {
                "gating_network.conv.weight": (n, n, 2),
                "gating_network.conv.bias": (n,),
                "gating_network.softmax_temp1": (1,),
                "gating_network.D": (n, m),
                "gating_network.mlp_layer1.weight": (j, n + m),
                "gating_network.mlp_layer1.bias": (j,),
                "gating_network.mlp_layer2.weight": (j, j),
                "gating_network.mlp_layer2.bias": (j,),
                "gating_network.softmax_temp2": (1,),
                "gating_network.sigma": (n,),
            }
        )
        return shapes

    def parameter_count(self) -> int:
        """Number of values in the model's state dict (computed from the sizes, without listing the tensors)."""
        m, n, j, h = self.M, self.N, self.Experts, self.hidden_dim
        expert = 2 * m + m * m if self.expert_type == "almost_linear_rnn" else 2 * m + 2 * m * h + h
        expert += int(self.probabilistic_expert)
        gating = 2 * n * n + n + 1 + n * m + j * (n + m) + j + j * j + j + 1 + n
        return j * expert + gating + n * m

    def to_dict(self) -> dict[str, Any]:
        """Return the config in the released JSON layout ``{"architecture": {...}}``."""
        return {"architecture": asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, require: tuple[str, ...] = ()) -> DynaMixConfig:
        """Build a config from the released JSON layout (or from a flat dict of the same keys).

        Parameters
        ----------
        data : dict
            ``{"architecture": {...}}`` or the architecture dict itself.
        require : tuple of str, default ()
            Keys that must be present (config files must state :data:`REQUIRED_KEYS`).

        Raises
        ------
        ValueError
            If it is not a dict, keys are missing or unknown, or values are invalid.
        """
        if not isinstance(data, dict):
            raise ValueError(f"A DynaMix config must be a JSON object (dict), got {type(data).__name__}.")
        arch = data.get("architecture", data)
        if not isinstance(arch, dict):
            raise ValueError("A DynaMix config must be a dict with an 'architecture' entry.")
        known = set(cls.__dataclass_fields__)
        unknown = set(arch) - known
        if unknown:
            raise ValueError(f"Unknown DynaMix config keys {sorted(unknown)}; known keys are {sorted(known)}.")
        missing = [k for k in require if k not in arch]
        if missing:
            raise ValueError(
                f"The DynaMix config lacks {missing}: a config file must state {list(require)} "
                "(they cannot all be read off the weights)."
            )
        return cls(**arch)
