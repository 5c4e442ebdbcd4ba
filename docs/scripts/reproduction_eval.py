"""Evaluate a trained checkpoint like the released one, side by side (docs/training.md, "From-scratch reproduction").

1. The paper's three examples (Lorenz-63 with 2,000 context points, Chua 1,028, Sprott M 512), horizon 10,000,
   noise on: D_stsp, D_H and MASE@10 as medians over 5 sample paths (seed 0).
2. The benchmark's systems track: median D_stsp and D_H over the held-out dysts systems at C = 512 and 2,000,
   read from two ``python -m benchmarks --track dsr`` result folders (the released model's and the trained one's).

Usage::

    python docs/scripts/reproduction_eval.py CHECKPOINT --released-results benchmarks/results/leaderboard \
        --trained-results benchmarks/results/archive/reproduction --output docs/training-runs/reproduction/evaluation.md
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dynamix_forecasting import (
    DynaMixPipeline,
    geometrical_misalignment,
    mase,
    temporal_misalignment,
)

EXAMPLES = {"lorenz63": 2000, "chua": 1028, "sprottM": 512}


def example_scores(pipeline: DynaMixPipeline, examples_dir: Path, horizon: int = 10_000, paths: int = 5) -> dict:
    out = {}
    for name, context in EXAMPLES.items():
        data = np.load(examples_dir / f"{name}.npy")
        truth = data[context : context + horizon]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecasts = pipeline.forecast(data[:context], truth.shape[0], mode="dynamics", num_samples=paths, seed=0)
        forecasts = np.asarray(forecasts).reshape(paths, *truth.shape)
        scores = {"D_stsp": [], "D_H": [], "MASE@10": []}
        for f in forecasts:
            finite = np.isfinite(f).all()
            scores["D_stsp"].append(geometrical_misalignment(f, truth) if finite else np.inf)
            scores["D_H"].append(temporal_misalignment(f, truth) if finite else np.inf)
            scores["MASE@10"].append(mase(f, truth, steps=10) if finite else np.inf)
        out[name] = {k: float(np.median(v)) for k, v in scores.items()}
    return out


def held_out_medians(results: Path, model_prefix: str) -> dict:
    frame = pd.read_csv(results / "results.csv")
    frame = frame[(frame.track == "dsr") & (frame.group == "held_out") & frame.model.str.startswith(model_prefix)]
    frame = frame[~frame.model.str.contains("#seed", regex=False)]  # the first seed, as the trained model's run
    if "config" in frame.columns and frame["config"].notna().any():
        frame = frame[frame["config"] == frame["config"].dropna().iloc[-1]]  # the latest configuration's rows
    frame = frame.assign(context=frame.task.str.split("@").str[1].astype(int))
    out = {}
    for (context, metric), rows in frame.groupby(["context", "metric"]):
        values = rows.value.to_numpy(dtype=float)
        out.setdefault(int(context), {})[metric] = {
            "median": float(np.nanmedian(values)),
            "systems": len(values),
            "non_finite": int((~np.isfinite(values)).sum()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--released", default="dynamix-3d-alrnn-v1.0")
    parser.add_argument("--examples-dir", default="../shared/data/dynamix-examples")
    parser.add_argument("--released-results", default="benchmarks/results/leaderboard")
    parser.add_argument("--trained-results", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    models = {"released": args.released, "trained": args.checkpoint}
    examples = {
        k: example_scores(DynaMixPipeline.from_pretrained(v), Path(args.examples_dir)) for k, v in models.items()
    }
    held = {
        "released": held_out_medians(Path(args.released_results), "dynamix"),
        "trained": held_out_medians(Path(args.trained_results), "dynamix"),
        "parroting": held_out_medians(Path(args.released_results), "parroting"),
    }
    lines = ["| system (context) | metric | released | trained |", "|---|---|---|---|"]
    for name, context in EXAMPLES.items():
        for metric in ("D_stsp", "D_H", "MASE@10"):
            r, t = examples["released"][name][metric], examples["trained"][name][metric]
            lines.append(f"| {name} ({context}) | {metric} | {r:.3f} | {t:.3f} |")
    lines += ["", "| held-out systems, median | released | trained | trained / released | parroting |",
              "|---|---|---|---|---|"]  # fmt: skip
    for context in sorted(held["released"]):
        for metric in ("D_stsp", "D_H", "MASE@10"):
            r = held["released"][context][metric]["median"]
            t = held["trained"].get(context, {}).get(metric, {}).get("median", float("nan"))
            p = held["parroting"][context][metric]["median"]
            lines.append(f"| C = {context}: {metric} | {r:.3f} | {t:.3f} | {t / r:.2f} | {p:.3f} |")
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    Path(args.output).with_suffix(".json").write_text(json.dumps({"examples": examples, "held_out": held}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
