"""Systems of 4-6 channels forecast jointly by a 6-D model against channel by channel and against parroting.

Protocol (declared in ``docs/training.md``, "Beyond three channels", before any run was scored): the held-out
dysts systems with 4, 5 or 6 channels (24 of the 104); the systems track's forecasts (first C = 512 and
2,000 points as context, 10,000 steps, one path, seed 0, divergence guard 10; divergences counted without the
guard). Methods:

* ``joint``: a 6-D checkpoint forecasts all channels of a system together (missing channels embedded as the
  pipeline does for fewer channels than the model's ``N``);
* ``per_channel``: the 3-D release forecasts each channel as its own univariate series (the package's behaviour
  for more channels than the model's ``N``);
* ``parroting``: context parroting on all channels.

D_stsp uses the Gaussian-mixture estimate (more than three dimensions) on all channels, D_H the mean over
channels; both as in ``dynamix_forecasting.metrics``. Rows are appended per method to ``--output``.

``--set validation --corpus corpus/val6`` scores the same methods on the kept systems of the generator's
6-channel validation corpus instead (how the 6-D runs are chosen; the held-out systems never choose).

Usage::

    python -m benchmarks.joint_eval --model6 /work/runs/universe6-scratch/checkpoint/x.safetensors \
        --output benchmarks/results/universe/joint-4to6.csv
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dynamix_forecasting import geometrical_misalignment, temporal_misalignment
from dynamix_forecasting.model_cache import cached_pipeline
from dynamix_forecasting.training.universe import kept

from . import data as bench_data
from .dsr_check import BOUND, CONTEXTS, HORIZON, diverges
from .parroting import parrot

RELEASE = "dynamix-3d-alrnn-v1.0"


def joint_systems(which: str = "held_out", corpus: str | None = None) -> dict[str, np.ndarray]:
    """The held-out dysts systems of 4 to 6 channels, or (``which="validation"``) the kept systems of a 6-channel
    validation corpus of the generator (the 6-D runs are chosen on these)."""
    if which == "validation":
        if corpus is None:
            raise SystemExit("--set validation needs --corpus (the generator's 6-channel validation corpus)")
        return kept(corpus)
    out = {}
    for name in bench_data.dysts_systems(training=False):
        trajectory = bench_data.load_dysts(name)
        if 4 <= trajectory.shape[1] <= 6:
            out[name] = trajectory
    return out


def _forecasts(method: str, model6: str | None, context: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(guarded forecast, unguarded forecast) of one context."""
    if method == "parroting":
        out = parrot(context, horizon)[0]
        return out, out
    pipeline = cached_pipeline(model6 if method == "joint" else RELEASE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per_channel warns that each channel is its own series
        free = pipeline.forecast(context, horizon, mode="dynamics", seed=0)
        guarded = pipeline.forecast(context, horizon, mode="dynamics", seed=0, divergence_guard=BOUND)
    return np.asarray(guarded), np.asarray(free)


def score(method: str, systems: dict[str, np.ndarray], model6: str | None) -> pd.DataFrame:
    rows = []
    for name, trajectory in tqdm(systems.items(), desc=method, unit="system"):
        for c in CONTEXTS:
            context, truth = trajectory[:c], trajectory[c : c + HORIZON]
            guarded, free = _forecasts(method, model6, context, truth.shape[0])
            finite = bool(np.isfinite(guarded).all())
            rows.append(
                dict(
                    method=method,
                    model=model6 if method == "joint" else (RELEASE if method == "per_channel" else ""),
                    system=name,
                    channels=trajectory.shape[1],
                    context=c,
                    D_stsp=geometrical_misalignment(guarded, truth) if finite else np.nan,
                    D_H=temporal_misalignment(guarded, truth) if finite else np.nan,
                    diverged=diverges(free, context),
                )
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.joint_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model6", help="the 6-D checkpoint (name or path) for the joint forecasts")
    parser.add_argument("--methods", default="per_channel,parroting,joint")
    parser.add_argument("--output", required=True, help="CSV of per-system rows (appended per method)")
    parser.add_argument("--set", choices=["held_out", "validation"], default="held_out")
    parser.add_argument("--corpus", help="the 6-channel validation corpus folder (--set validation)")
    args = parser.parse_args(argv)
    output = Path(args.output)
    done = pd.read_csv(output) if output.exists() else pd.DataFrame(columns=["method", "model"])
    systems = joint_systems(args.set, args.corpus)
    for method in args.methods.split(","):
        key = args.model6 if method == "joint" else (RELEASE if method == "per_channel" else "")
        if method == "joint" and not args.model6:
            raise SystemExit("--methods joint needs --model6")
        if ((done.method == method) & (done.model.fillna("") == key)).any():
            continue
        rows = score(method, systems, args.model6)
        done = pd.concat([done, rows], ignore_index=True) if len(done) else rows
        output.parent.mkdir(parents=True, exist_ok=True)
        done.to_csv(output, index=False)
    table = done.groupby(["method", "model", "context"], dropna=False).agg(
        D_stsp=("D_stsp", lambda v: float(v.fillna(np.inf).median())),
        D_H=("D_H", lambda v: float(v.fillna(np.inf).median())),
        diverged=("diverged", "sum"),
        systems=("system", "nunique"),
    )
    print(f"{len(systems)} systems ({args.set})")
    print(table.to_string())


if __name__ == "__main__":
    main()
