"""How forecasts are composed from DynaMix's experts: usage summaries, distances and clusters of systems.

The input is what :meth:`DynaMixPipeline.expert_weights` returns: the gating network's weights over the
experts at every forecast step. A system's *usage* is its time-averaged weight vector (a distribution over
the experts); systems with similar dynamics are expected to use similar mixtures (Hemmer & Durstewitz,
2025), which the Jensen-Shannon distance between usages measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import jensenshannon, squareform


def _weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim < 2:
        raise ValueError(f"Expert weights need at least (steps, experts) axes, got shape {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("Expert weights must be finite and non-negative (as expert_weights returns them).")
    return w


def expert_usage(weights: np.ndarray, step_axis: int = 0) -> np.ndarray:
    """Time-averaged expert weights: the share of each expert in a forecast.

    Parameters
    ----------
    weights : numpy.ndarray
        ``(horizon, experts)``, ``(horizon, series, experts)`` or with a leading samples axis
        ``(samples, horizon, ...)``; the experts axis is last.
    step_axis : int, default 0
        The horizon axis (1 when a samples axis leads); a leading samples axis is averaged too.

    Returns
    -------
    numpy.ndarray
        ``(experts,)`` or ``(series, experts)``; each row sums to one.
    """
    w = _weights(weights)
    usage = w.mean(axis=tuple(range(step_axis + 1)))
    return usage / usage.sum(-1, keepdims=True)


def effective_experts(usage: np.ndarray) -> np.ndarray:
    """Effective number of experts, ``exp(entropy)`` of a usage: 1 when one expert does everything, the number
    of experts when all share equally."""
    p = np.clip(_weights(np.atleast_2d(usage)), 1e-300, None)
    out = np.exp(-(p * np.log(p)).sum(-1))
    return out if np.ndim(usage) > 1 else out[0]


def step_entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the expert weights at every step: low where one expert takes over."""
    p = np.clip(_weights(weights), 1e-300, None)
    return -(p * np.log(p)).sum(-1)


def usage_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two usages."""
    return float(jensenshannon(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64), base=2))


def distance_matrix(usages: np.ndarray) -> np.ndarray:
    """Pairwise Jensen-Shannon distances ``(S, S)`` between the rows of ``usages`` ``(S, experts)``."""
    u = _weights(usages)
    n = u.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = usage_distance(u[i], u[j])
    return out


def cluster_systems(
    usages: np.ndarray,
    names: Sequence[str] | None = None,
    n_clusters: int | None = None,
    threshold: float = 0.3,
) -> tuple[dict[str, int], np.ndarray]:
    """Average-linkage clusters of systems by their usage's Jensen-Shannon distance.

    Parameters
    ----------
    usages : numpy.ndarray
        ``(S, experts)``, one usage per system (:func:`expert_usage`).
    names : sequence of str, optional
        Names of the systems (default ``"0"``, ``"1"``, ...).
    n_clusters : int, optional
        Cut the tree into this many clusters; otherwise cut at distance ``threshold``.

    Returns
    -------
    labels : dict of str to int
        Cluster (1-based) of every system.
    linkage_matrix : numpy.ndarray
        scipy's linkage matrix, for a dendrogram.
    """
    u = _weights(usages)
    if u.shape[0] < 2:
        raise ValueError("Clustering needs the usages of at least two systems.")
    names = [str(i) for i in range(u.shape[0])] if names is None else [str(n) for n in names]
    if len(names) != u.shape[0]:
        raise ValueError(f"{len(names)} names for {u.shape[0]} usages.")
    tree = linkage(squareform(distance_matrix(u), checks=False), method="average")
    labels = (
        fcluster(tree, t=n_clusters, criterion="maxclust")
        if n_clusters is not None
        else fcluster(tree, t=threshold, criterion="distance")
    )
    return dict(zip(names, (int(x) for x in labels), strict=True)), tree
