"""The DynaMix network: a gating network over the context that mixes almost-linear RNN experts.

Parameter names and shapes follow the released state dicts exactly, so an official checkpoint
loads with ``load_state_dict(strict=True)``. The per-step maths here is the plain reference
implementation: one torch operation per equation of the specification, in the published
implementation's order and layout, so that deterministic forecasts reproduce the authors' numbers
bit for bit. It is differentiable and used for training. Long noisy forecasts use the fused
rollout in :mod:`dynamix_forecasting.rollout`, which is tested to agree with :meth:`DynaMix.step`.

Shapes follow the specification: a latent state ``z`` is ``(M, B)``, a context is ``(T, B, N)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import DynaMixConfig


def _diag_of_normalized_positive_definite(m: int, generator: torch.Generator | None) -> torch.Tensor:
    # The authors initialise A as the diagonal of R^T R / M + I scaled to spectral radius 1.
    r = torch.randn(m, m, generator=generator, dtype=torch.float64)
    k = r.T @ r / m + torch.eye(m, dtype=torch.float64)
    return (torch.diag(k) / torch.linalg.eigvalsh(k).abs().max()).float()


class GatingNetwork(nn.Module):
    """Chooses the expert weights from the context and the current latent state."""

    def __init__(self, N: int, M: int, Experts: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(N, N, kernel_size=2, padding=0, bias=True)
        self.softmax_temp1 = nn.Parameter(torch.tensor([0.1]))
        self.D = nn.Parameter(torch.zeros(N, M))
        with torch.no_grad():
            self.D[:, :N] = torch.eye(N)
        self.mlp_layer1 = nn.Linear(N + M, Experts)
        self.mlp_layer2 = nn.Linear(Experts, Experts)
        # The released models were trained without these biases; they are stored as zeros.
        for layer in (self.mlp_layer1, self.mlp_layer2):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
            layer.bias.requires_grad_(False)
        self.softmax_temp2 = nn.Parameter(torch.tensor([0.1]))
        self.sigma = nn.Parameter(torch.full((N,), 0.05))

    def encode(self, context: torch.Tensor) -> torch.Tensor:
        """Convolve the context over time once per forecast: ``(T, B, N) -> (T-1, B, N)``."""
        return self.conv(context.permute(1, 2, 0)).permute(2, 0, 1)

    def forward(
        self,
        context: torch.Tensor,
        z: torch.Tensor,
        encoded: torch.Tensor | None = None,
        eps: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Expert weights ``(Experts, B)`` for latent states ``z`` ``(M, B)``.

        Parameters
        ----------
        context : torch.Tensor
            Embedded, standardized context ``(T, B, N)``.
        z : torch.Tensor
            Latent state ``(M, B)``.
        encoded : torch.Tensor, optional
            ``self.encode(context)``, passed in so it is computed once per forecast.
        eps : torch.Tensor, optional
            Standard-normal gating noise ``(N, B)``; ``None`` switches the noise off.
        mask : torch.Tensor, optional
            Boolean ``(T-1, B)``, False for padding frames of shorter contexts.
        """
        if encoded is None:
            encoded = self.encode(context)
        y = self.D @ z.detach()
        if eps is not None:
            y = y + self.sigma.unsqueeze(1) * eps
        distances = torch.sum(torch.abs(context[:-1] - y.t().unsqueeze(0)), dim=2)
        if mask is not None:
            distances = distances.masked_fill(~mask, float("inf"))
        attention = torch.softmax(-distances / torch.abs(self.softmax_temp1[0]), dim=0)
        embedding = torch.sum(encoded * attention.unsqueeze(2), dim=0).t()
        hidden = F.relu(self.mlp_layer1(torch.cat([embedding, z], dim=0).t()))
        return torch.softmax(-self.mlp_layer2(hidden).t() / torch.abs(self.softmax_temp2[0]), dim=0)


class AlmostLinearRNNExpert(nn.Module):
    """``z' = A * z + W phi(z) + h`` with ReLU on the last ``P`` latent units."""

    def __init__(self, M: int, P: int, probabilistic: bool = False) -> None:
        super().__init__()
        self.P = P
        self.A = nn.Parameter(_diag_of_normalized_positive_definite(M, None))
        self.W = nn.Parameter(torch.randn(M, M) * 0.01)
        self.h = nn.Parameter(torch.zeros(M))
        self.probabilistic = probabilistic
        if probabilistic:
            self.sigma = nn.Parameter(torch.full((1,), 0.05))

    def forward(self, z: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """One expert step for ``z`` ``(M, B)``; ``eps`` ``(M, B)`` is the expert noise if any."""
        phi = z if self.P == 0 else torch.cat([z[: z.shape[0] - self.P], F.relu(z[-self.P :])], dim=0)
        out = self.A.unsqueeze(-1) * z + self.W @ phi + self.h.unsqueeze(-1)
        if eps is not None and self.probabilistic:
            out = out + self.sigma * eps
        return out


class ClippedShallowPLRNNExpert(nn.Module):
    """``z' = A * z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1``."""

    def __init__(self, M: int, hidden_dim: int, probabilistic: bool = False) -> None:
        super().__init__()
        self.A = nn.Parameter(_diag_of_normalized_positive_definite(M, None))
        self.W1 = nn.Parameter(torch.randn(M, hidden_dim) * 0.01)
        self.W2 = nn.Parameter(torch.randn(hidden_dim, M) * 0.01)
        self.h1 = nn.Parameter(torch.zeros(M))
        self.h2 = nn.Parameter(torch.zeros(hidden_dim))
        self.probabilistic = probabilistic
        if probabilistic:
            self.sigma = nn.Parameter(torch.full((1,), 0.05))

    def forward(self, z: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """One expert step for ``z`` ``(M, B)``; ``eps`` ``(M, B)`` is the expert noise if any."""
        w2z = self.W2 @ z
        h2 = self.h2.unsqueeze(-1)
        out = self.A.unsqueeze(-1) * z + self.W1 @ (F.relu(w2z + h2) - F.relu(w2z)) + self.h1.unsqueeze(-1)
        if eps is not None and self.probabilistic:
            out = out + self.sigma * eps
        return out


class DynaMix(nn.Module):
    """DynaMix mixture of experts.

    Parameters
    ----------
    config : DynaMixConfig
        Architecture sizes and expert kind.

    Examples
    --------
    >>> import torch
    >>> from dynamix_forecasting import DynaMix, DynaMixConfig
    >>> model = DynaMix(DynaMixConfig(M=8, N=2, Experts=3, P=1))
    >>> z = model.initial_state(torch.zeros(4, 2))
    >>> tuple(model.step(z, torch.randn(20, 4, 2)).shape)
    (8, 4)
    """

    def __init__(self, config: DynaMixConfig | None = None) -> None:
        super().__init__()
        self.config = config or DynaMixConfig()
        c = self.config
        experts: list[nn.Module]
        if c.expert_type == "almost_linear_rnn":
            experts = [AlmostLinearRNNExpert(c.M, c.P, c.probabilistic_expert) for _ in range(c.Experts)]
        else:
            experts = [ClippedShallowPLRNNExpert(c.M, c.hidden_dim, c.probabilistic_expert) for _ in range(c.Experts)]
        self.experts = nn.ModuleList(experts)
        self.gating_network = GatingNetwork(c.N, c.M, c.Experts)
        bound = 1.0 / np.sqrt(c.M)
        self.B = nn.Parameter((torch.rand(c.N, c.M) * 2 - 1) * bound)
        # float32 whatever torch's default dtype is (a library may have changed it): the published arithmetic.
        self.float()

    @classmethod
    def random(cls, config: DynaMixConfig | dict | None = None, seed: int = 0) -> DynaMix:
        """A randomly initialised model, reproducible from ``seed`` (torch's global RNG is left as it was).

        Parameters
        ----------
        config : DynaMixConfig or dict, optional
            Architecture, e.g. ``{"M": 8, "N": 3, "Experts": 2, "P": 1}`` (default: the released sizes).
        seed : int, default 0
            Seed of the initialisation.

        Examples
        --------
        >>> model = DynaMix.random({"M": 8, "N": 3, "Experts": 2, "P": 1})
        >>> model.M, model.N
        (8, 3)
        """
        if config is not None and not isinstance(config, DynaMixConfig):
            config = DynaMixConfig.from_dict(dict(config))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(config)

    @property
    def N(self) -> int:
        """Observation dimension the model was trained for."""
        return self.config.N

    @property
    def M(self) -> int:
        """Latent dimension."""
        return self.config.M

    def initial_state(self, x: torch.Tensor, batch_invariant: bool = False) -> torch.Tensor:
        """Latent state ``(M, B)`` from observations ``x`` ``(B, N)``: ``B^T x`` with its first N entries set to x.

        Parameters
        ----------
        x : torch.Tensor
            Observations ``(B, N)``.
        batch_invariant : bool, default False
            Build ``B^T x`` from elementwise operations in a fixed order, so that each row's bits do not
            depend on the batch it is in (a matrix product may pick another kernel for another batch
            size). The default reproduces the published arithmetic.
        """
        if batch_invariant:
            z = x[:, :1] * self.B[0]
            for n in range(1, x.shape[1]):
                z = z + x[:, n : n + 1] * self.B[n]
            z[:, : self.N] = x
            return z.t()
        # Built as the published code does (a transposed view written in place): the memory layout
        # of z decides which GEMM kernel the first step uses, and so its last bits.
        z = torch.matmul(x, self.B).t()
        z[: self.N] = x.t()
        return z

    def step(
        self,
        z: torch.Tensor,
        context: torch.Tensor,
        encoded: torch.Tensor | None = None,
        gating_eps: torch.Tensor | None = None,
        expert_eps: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One step of the latent dynamics (reference implementation).

        Parameters
        ----------
        z : torch.Tensor
            Latent state ``(M, B)``.
        context : torch.Tensor
            Embedded, standardized context ``(T, B, N)``.
        encoded : torch.Tensor, optional
            Precomputed ``gating_network.encode(context)``.
        gating_eps : torch.Tensor, optional
            Standard-normal gating noise ``(N, B)``; ``None`` gives the noise-free step.
        expert_eps : torch.Tensor, optional
            Standard-normal expert noise ``(Experts, M, B)`` for probabilistic experts.
        mask : torch.Tensor, optional
            Boolean ``(T-1, B)`` marking real (not padded) context frames.

        Returns
        -------
        torch.Tensor
            Next latent state ``(M, B)``.
        """
        return self.step_with_weights(z, context, encoded, gating_eps, expert_eps, mask)[0]

    def step_with_weights(
        self,
        z: torch.Tensor,
        context: torch.Tensor,
        encoded: torch.Tensor | None = None,
        gating_eps: torch.Tensor | None = None,
        expert_eps: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` and the gating network's expert weights ``(Experts, B)`` of that step."""
        weights = self.gating_network(context, z, encoded=encoded, eps=gating_eps, mask=mask)
        weighted = [
            expert(z, None if expert_eps is None else expert_eps[j]) * weights[j, :].unsqueeze(0)
            for j, expert in enumerate(self.experts)
        ]
        return torch.sum(torch.stack(weighted, dim=0), dim=0), weights

    def forward(self, z: torch.Tensor, context: torch.Tensor, **kwargs: torch.Tensor | None) -> torch.Tensor:
        """Alias of :meth:`step`."""
        return self.step(z, context, **kwargs)
