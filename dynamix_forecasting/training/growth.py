"""Growing a trained DynaMix model to more experts while keeping what it computes.

Each expert is copied ``k`` times and the gating network's output logits with it: the softmax then splits an
expert's weight equally among its copies, whose sum is the original weight, so the grown model forecasts as
the original (up to the small noise that breaks the copies' symmetry, without which they would receive
equal gradients forever). The gating MLP's hidden layer, whose width is the number of experts, gets new
units with small random weights, which start almost silent.
"""

from __future__ import annotations

import torch

from ..config import DynaMixConfig
from ..model import DynaMix


def grow_experts(model: DynaMix, experts: int, seed: int = 0, noise: float = 1e-3) -> DynaMix:
    """A copy of ``model`` with ``experts`` experts (a multiple of its own count), forecasting as it does.

    Parameters
    ----------
    model : DynaMix
        A model with almost-linear RNN experts.
    experts : int
        The new number of experts, a multiple of ``model``'s.
    seed : int, default 0
        Seed of the symmetry-breaking noise.
    noise : float, default 1e-3
        Standard deviation of that noise, relative to each weight tensor's own scale.

    Returns
    -------
    DynaMix
        The grown model, in training mode.
    """
    old = model.config.Experts
    if experts < old or experts % old:
        raise ValueError(
            f"grow_experts must be a multiple of the initial model's {old} experts (e.g. {2 * old}), got {experts}."
        )
    copies = experts // old
    config = DynaMixConfig(**{**model.config.__dict__, "Experts": experts})
    grown = DynaMix(config)
    gen = torch.Generator().manual_seed(seed)

    def jitter(t: torch.Tensor) -> torch.Tensor:
        scale = t.abs().mean().clamp_min(1e-8)
        return t + noise * scale * torch.randn(t.shape, generator=gen, dtype=t.dtype)

    src, dst = model.state_dict(), grown.state_dict()
    with torch.no_grad():
        for key, value in src.items():
            if key.startswith("experts."):
                index, name = key.split(".")[1:]
                for c in range(copies):
                    dst[f"experts.{int(index) + c * old}.{name}"] = value.clone() if c == 0 else jitter(value)
            elif key == "gating_network.mlp_layer1.weight":  # (hidden = experts, N + M)
                new = noise * value.abs().mean() * torch.randn((experts - old, value.shape[1]), generator=gen)
                dst[key] = torch.cat([value, new])
            elif key == "gating_network.mlp_layer2.weight":  # (experts, hidden)
                rows = torch.cat([value] * copies)  # each copy's logit equals its original's
                cols = noise * value.abs().mean() * torch.randn((experts, experts - old), generator=gen)
                dst[key] = torch.cat([rows, cols], dim=1)
            elif key in ("gating_network.mlp_layer1.bias", "gating_network.mlp_layer2.bias"):
                dst[key] = torch.zeros(experts, dtype=value.dtype)  # the released models keep these at zero
            else:
                dst[key] = value.clone()
    grown.load_state_dict(dst)
    return grown.train()
