"""The weights of an almost-linear-RNN DynaMix packed once for the fast rollout backends (torch and numba)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from .model import AlmostLinearRNNExpert, DynaMix


@dataclass(frozen=True)
class PackedWeights:
    """The weights of an almost-linear-RNN DynaMix arranged once for the fast backends (float32).

    ``w_all`` holds every expert's ``W^T`` side by side, ``(M, J*M)`` with ``w_all[q, j*M + k] = W_j[k, q]``,
    so ``phi(z) @ w_all`` gives all experts' ``W phi(z)`` at once.
    """

    d: torch.Tensor  # (N, M)
    sigma: torch.Tensor  # (N,)
    inv_t1: float  # 1 / |softmax_temp1|
    w1e: torch.Tensor  # (J, N)
    w1z: torch.Tensor  # (J, M)
    b1: torch.Tensor  # (J,)
    w2: torch.Tensor  # (J, J)
    b2: torch.Tensor  # (J,)
    inv_t2: float  # 1 / |softmax_temp2|
    a: torch.Tensor  # (J, M)
    h: torch.Tensor  # (J, M)
    w_all: torch.Tensor  # (M, J*M)
    conv_weight: torch.Tensor  # (N, N, 2)
    conv_bias: torch.Tensor  # (N,)
    relu_from: int  # latent units >= relu_from pass through ReLU

    @classmethod
    def of(cls, model: DynaMix) -> PackedWeights:
        gate = model.gating_network
        n = model.N
        experts = [cast(AlmostLinearRNNExpert, e) for e in model.experts]
        b1, b2, bias = gate.mlp_layer1.bias, gate.mlp_layer2.bias, gate.conv.bias
        assert b1 is not None and b2 is not None and bias is not None  # the layers are built with biases
        with torch.no_grad():
            w1 = gate.mlp_layer1.weight.detach()
            return cls(
                d=gate.D.detach(),
                sigma=gate.sigma.detach(),
                inv_t1=1.0 / abs(float(gate.softmax_temp1)),
                w1e=w1[:, :n],
                w1z=w1[:, n:],
                b1=b1.detach(),
                w2=gate.mlp_layer2.weight.detach(),
                b2=b2.detach(),
                inv_t2=1.0 / abs(float(gate.softmax_temp2)),
                a=torch.stack([e.A.detach() for e in experts]),
                h=torch.stack([e.h.detach() for e in experts]),
                w_all=torch.cat([e.W.detach().T for e in experts], dim=1).contiguous(),
                conv_weight=gate.conv.weight.detach(),
                conv_bias=bias.detach(),
                relu_from=model.M - model.config.P,
            )
