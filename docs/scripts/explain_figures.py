"""Figures and figures of docs/explain.md: expert composition of a Lorenz-63 forecast, and expert usage across
the stored 3-D dysts systems (heat map, dendrogram, a within-family versus between-family test).

Usage: ``python docs/scripts/explain_figures.py [--dysts ../shared/data/dysts] [--out docs/images]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

from dynamix_forecasting import DynaMixPipeline
from dynamix_forecasting.composition import cluster_systems, distance_matrix, effective_experts, expert_usage
from dynamix_forecasting.examples import lorenz63
from dynamix_forecasting.plots import plot_expert_composition, plot_usage_dendrogram, plot_usage_heatmap

# Families named before looking at any usage: the Sprott flows, the Lorenz-type systems (Lorenz's equations
# and their published relatives), the Chua circuits.
LORENZ_TYPE = ["Lorenz", "LorenzBounded", "Chen", "LuChen", "LuChenCheng", "ShimizuMorioka", "Rucklidge"]
CHUA = ["Chua", "MultiChua"]


def family(name: str) -> str:
    if name.startswith("Sprott"):
        return "Sprott"
    if name in LORENZ_TYPE:
        return "Lorenz-type"
    if name in CHUA:
        return "Chua"
    return "other"


def family_test(dist: np.ndarray, labels: list[str], draws: int = 5000, seed: int = 0) -> dict:
    """Mean JS distance within named families against between them; permutation p-value (labels shuffled)."""
    labels_arr = np.array(labels)
    named = labels_arr != "other"

    def gap(lab: np.ndarray) -> tuple[float, float]:
        same = (lab[:, None] == lab[None, :]) & named[:, None] & named[None, :]
        np.fill_diagonal(same, False)
        cross = named[:, None] & named[None, :] & (lab[:, None] != lab[None, :])
        return float(dist[same].mean()), float(dist[cross].mean())

    within, between = gap(labels_arr)
    rng = np.random.default_rng(seed)
    idx = np.where(named)[0]
    hits = 0
    for _ in range(draws):
        shuffled = labels_arr.copy()
        shuffled[idx] = rng.permutation(labels_arr[idx])
        w, b = gap(shuffled)
        hits += (b - w) >= (between - within)
    return {"within": within, "between": between, "p_value": (hits + 1) / (draws + 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dysts", default="../shared/data/dysts")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    out = Path(args.out)
    pipe = DynaMixPipeline.from_pretrained()

    ctx = lorenz63(2300)[:2000]
    forecast, weights = pipe.expert_weights(ctx, 600, seed=0, return_forecast=True)
    fig = plot_expert_composition(forecast, weights, context=ctx[-600:], title="Lorenz-63: forecast and its experts")
    fig.savefig(out / "explain_lorenz_composition.png", dpi=100)
    lorenz_usage = expert_usage(weights)

    index = json.loads((Path(args.dysts) / "index.json").read_text())
    names = sorted(n for n, v in index.items() if "error" not in v and v.get("dim") == 3)
    contexts = [np.load(Path(args.dysts) / f"{n}.npy")[:2000].astype(np.float64) for n in names]
    w = pipe.expert_weights(contexts, 2000, noise=False, backend="numba", divergence_guard=10.0)  # (H, S, J)
    usages = expert_usage(w)  # (S, J)
    labels = [family(n) for n in names]
    dist = distance_matrix(usages)
    test = family_test(dist, labels)
    clusters, _ = cluster_systems(usages, names, threshold=0.3)
    training = {n for n, v in index.items() if v.get("in_dynamix_training_set")}
    shown = [
        i for i, n in enumerate(names) if family(n) != "other" or n in ("Rossler", "Aizawa", "Thomas", "Halvorsen")
    ]
    shown_names = [f"{names[i]} ({labels[i]})" if labels[i] != "other" else names[i] for i in shown]
    plot_usage_heatmap(usages[shown], shown_names, title="Expert usage (forecast of 2,000 steps)").savefig(
        out / "explain_usage_heatmap.png", dpi=100
    )
    plot_usage_dendrogram(usages[shown], shown_names).savefig(out / "explain_dendrogram.png", dpi=100)
    eff = effective_experts(usages)
    summary = {
        "systems": len(names),
        "lorenz63_usage": [round(float(x), 3) for x in lorenz_usage],
        "lorenz63_effective_experts": round(float(effective_experts(lorenz_usage)), 2),
        "effective_experts_median": round(float(np.median(eff)), 2),
        "effective_experts_range": [round(float(eff.min()), 2), round(float(eff.max()), 2)],
        "family_test": {k: round(v, 4) for k, v in test.items()},
        "clusters_at_0.3": len(set(clusters.values())),
        "dominant_expert_counts": np.bincount(usages.argmax(1), minlength=usages.shape[1]).tolist(),
        "family_members": {f: [n for n in names if family(n) == f] for f in ("Sprott", "Lorenz-type", "Chua")},
        "training_set_in_shown": sorted(training & {names[i] for i in shown}),
    }
    (out / "explain_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
