"""New flows built from the 30 training systems: mutated parameters, couplings of two systems, random
sparse quadratic flows.

Every candidate is a small JSON-able *spec* (drawn by :func:`draw_spec` from a seed and an index, so a
corpus is reproducible entry by entry) and :func:`vector_field` turns a spec into ``f(t, y)`` for
``scipy.integrate.solve_ivp``. The training systems enter in standardized coordinates and time: for a
system with attractor mean ``m``, standard deviation ``s`` and period ``T``, ``u = (x - m) / s`` and
``tau = t / T``, so ``du/dtau = T f(m + s u) / s``. Two systems so rescaled turn at similar speeds and
over similar ranges, which is what makes their couplings meaningful:

* ``mutation``: one training system with every parameter scaled by ``1 + U(-spread, spread)``.
* ``skew``: a driver ``a`` and a response ``b``, ``db/dtau = g_B(b) + k (P a - b)`` (``P`` a signed
  permutation, ``k`` the coupling strength); the driver runs free (a skew product).
* ``diffusive``: both ways, ``da = g_A(a) + k (P^T b - a)``, ``db = g_B(b) + k (P a - b)``.
* ``quadratic``: ``dy_i/dt = sum of a few monomials of degree <= 2`` with random coefficients (in the
  spirit of Sprott's search for minimal chaotic flows).

A 3-channel candidate observes the response (couplings) or the whole flow; a 6-channel candidate
observes both systems of a coupling, or a 6-D quadratic flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .data import TRAINING_SYSTEMS

#: Share of each family among the candidates, per number of observed channels.
FAMILIES: dict[int, dict[str, float]] = {
    3: {"mutation": 0.3, "skew": 0.3, "diffusive": 0.25, "quadratic": 0.15},
    6: {"skew": 0.4, "diffusive": 0.4, "quadratic": 0.2},
}
#: Relative half-width of a mutation's parameter change (the published corpus's second regimes move one
#: parameter by 10-15 %; the project's perturbed regimes by up to 15 %: this goes farther).
MUTATION_SPREAD = 0.35
#: Coupling strengths are drawn from this range (in units of the rescaled time).
COUPLING = (0.1, 1.5)
#: Random quadratic flows: nonzero monomials per equation and the coefficients' range.
QUADRATIC_TERMS = (2, 3)
QUADRATIC_SCALE = 3.0

VectorField = Callable[[float, np.ndarray], np.ndarray]


def _flow_class(name: str) -> Any:
    import dysts.flows as flows

    return getattr(flows, name)


def _system(name: str, params: dict[str, float] | None = None) -> Any:
    cls = _flow_class(name)
    return cls(parameters=params) if params else cls()


@cache
def _skeleton_from_dysts(name: str) -> dict[str, Any]:
    """Mean, standard deviation and period of a training system's attractor (a 5,000-point probe)."""
    import warnings

    system = _system(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = np.asarray(
            system.make_trajectory(5_000, pts_per_period=50, method="DOP853", rtol=1e-10, atol=1e-10), dtype=float
        )
    return {
        "params": {k: float(v) for k, v in system.parameters.items()},
        "ic": [float(v) for v in np.asarray(system.ic, dtype=float)],
        "period": float(system.period),
        "mean": probe.mean(0).tolist(),
        "std": probe.std(0).tolist(),
    }


def skeletons(cache_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The 30 training systems' parameters, initial condition, period and attractor mean and std.

    Computed once with dysts (30 short integrations, about a minute) and cached as ``skeletons.json`` in
    ``cache_dir`` when one is given.
    """
    path = Path(cache_dir) / "skeletons.json" if cache_dir else None
    if path is not None and path.exists():
        stored = json.loads(path.read_text())
        if sorted(stored) == sorted(TRAINING_SYSTEMS):
            return stored
    out = {name: _skeleton_from_dysts(name) for name in TRAINING_SYSTEMS}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def _signed_permutation(rng: np.random.Generator, n: int) -> list[list[float]]:
    matrix = np.zeros((n, n))
    matrix[np.arange(n), rng.permutation(n)] = rng.choice([-1.0, 1.0], size=n)
    return matrix.tolist()


def _mutated(name: str, base: dict[str, Any], rng: np.random.Generator, spread: float) -> dict[str, float]:
    return {k: float(v) * (1 + rng.uniform(-spread, spread)) for k, v in base[name]["params"].items()}


def _quadratic_terms(dim: int, rng: np.random.Generator) -> list[list[float]]:
    """Rows ``[equation, j, k, coefficient]``: ``j = k = -1`` a constant, ``k = -1`` the linear term ``y_j``,
    else ``y_j y_k``. Every equation gets a linear damping term so that some draws stay bounded."""
    monomials = [(-1, -1)] + [(j, -1) for j in range(dim)] + [(j, k) for j in range(dim) for k in range(j, dim)]
    rows = []
    for i in range(dim):
        count = int(rng.integers(QUADRATIC_TERMS[0], QUADRATIC_TERMS[1] + 1))
        picks = rng.choice(len(monomials), size=count, replace=False)
        for p in picks:
            j, k = monomials[int(p)]
            if (j, k) == (i, -1):
                continue  # the damping term below
            rows.append([i, j, k, float(np.round(rng.uniform(-QUADRATIC_SCALE, QUADRATIC_SCALE), 2))])
        rows.append([i, i, -1, -float(np.round(rng.uniform(0.1, 1.5), 2))])
    return rows


def draw_spec(seed: int, index: int, dim: int, base: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Candidate number ``index`` of the corpus drawn with ``seed``: family, systems, parameters, coupling.

    The same ``(seed, index, dim)`` always gives the same spec, so corpora grow by appending and a
    manifest entry can be recomputed from its key.
    """
    if dim not in FAMILIES:
        raise ValueError(f"dim must be one of {sorted(FAMILIES)}, got {dim!r}.")
    rng = np.random.default_rng([seed, dim, index])
    families = FAMILIES[dim]
    family = str(rng.choice(list(families), p=np.asarray(list(families.values()))))
    with_params = [n for n in TRAINING_SYSTEMS if base[n]["params"]]
    spec: dict[str, Any] = {"family": family, "dim": dim}
    if family == "mutation":
        name = str(rng.choice(with_params))
        spec.update(systems=[name], params=[_mutated(name, base, rng, MUTATION_SPREAD)])
    elif family in ("skew", "diffusive"):
        a, b = (str(s) for s in rng.choice(list(TRAINING_SYSTEMS), size=2, replace=False))
        params = [
            _mutated(s, base, rng, 0.1) if base[s]["params"] and rng.random() < 0.5 else dict(base[s]["params"])
            for s in (a, b)
        ]
        spec.update(
            systems=[a, b],
            params=params,
            coupling=float(np.round(rng.uniform(*COUPLING), 3)),
            permutation=_signed_permutation(rng, 3),
        )
    else:
        spec.update(terms=_quadratic_terms(dim, rng), ic=np.round(rng.standard_normal(dim), 3).tolist())
    return spec


def _rescaled(name: str, params: dict[str, float], base: dict[str, dict[str, Any]]) -> VectorField:
    """``g(u) = T f(m + s u) / s``: a training system in standardized coordinates and time."""
    system = _system(name, params or None)
    info = base[name]
    mean, std, period = np.asarray(info["mean"]), np.asarray(info["std"]), float(info["period"])
    std = np.where(std > 0, std, 1.0)
    rhs = system.rhs

    def g(t: float, u: np.ndarray) -> np.ndarray:
        return period * np.asarray(rhs(mean + std * u, t), dtype=float) / std

    return g


def _quadratic_field(terms: list[list[float]], dim: int) -> VectorField:
    rows = np.asarray(terms, dtype=float)
    eq, j, k, c = rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2].astype(int), rows[:, 3]

    def f(t: float, y: np.ndarray) -> np.ndarray:
        padded = np.append(y, 1.0)  # index -1 reads the constant 1
        return np.bincount(eq, weights=c * padded[j] * padded[k], minlength=dim)

    return f


def vector_field(spec: dict[str, Any], base: dict[str, dict[str, Any]]) -> tuple[VectorField, np.ndarray, list[int]]:
    """The spec's ``f(t, y)``, an initial state and the observed coordinates of ``y``."""
    family, dim = spec["family"], spec["dim"]
    if family == "quadratic":
        return _quadratic_field(spec["terms"], dim), np.asarray(spec["ic"], dtype=float), list(range(dim))
    if family == "mutation":
        name = spec["systems"][0]
        info = base[name]
        u0 = (np.asarray(info["ic"]) - np.asarray(info["mean"])) / np.where(np.asarray(info["std"]) > 0, info["std"], 1)
        return _rescaled(name, spec["params"][0], base), u0, [0, 1, 2]
    ga = _rescaled(spec["systems"][0], spec["params"][0], base)
    gb = _rescaled(spec["systems"][1], spec["params"][1], base)
    perm, k, both = np.asarray(spec["permutation"]), float(spec["coupling"]), family == "diffusive"

    def f(t: float, y: np.ndarray) -> np.ndarray:
        a, b = y[:3], y[3:]
        da = ga(t, a) + (k * (perm.T @ b - a) if both else 0.0)
        db = gb(t, b) + k * (perm @ a - b)
        return np.concatenate([da, db])

    # start each system on its own attractor (its stored initial condition, standardized)
    y0 = np.concatenate(
        [
            (np.asarray(base[s]["ic"]) - np.asarray(base[s]["mean"]))
            / np.where(np.asarray(base[s]["std"]) > 0, base[s]["std"], 1)
            for s in spec["systems"]
        ]
    )
    return f, y0, ([3, 4, 5] if dim == 3 else list(range(6)))
