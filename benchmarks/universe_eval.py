"""Scores of checkpoints trained on generated corpora: the scaling curve's validation and held-out medians.

Protocol (declared in ``docs/training.md``, "A universe of chaotic systems", before any run was scored):

* ``--set validation`` chooses: the kept systems of the generator's validation corpus (seed 1, which
  no training corpus uses; 12,000 points at 50 points per period). The held-out dysts systems never
  choose anything.
* ``--set held_out`` reports: the 104 held-out dysts systems (the systems track's protocol: C = 512 and
  2,000, horizon 10,000, one path, seed 0, divergence guard 10; divergences counted without the guard).

Rows are appended per model to ``--output`` (a model already there is skipped), so runs can be scored
as they finish.

Usage::

    python -m benchmarks.universe_eval MODEL [MODEL ...] --set validation --corpus /work/corpus/val3 \
        --output benchmarks/results/universe/validation.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dynamix_forecasting.training.universe import kept

from . import data as bench_data
from .dsr_check import check, summary


def trajectories(which: str, corpus: str | None) -> dict:
    if which == "validation":
        if corpus is None:
            raise SystemExit("--set validation needs --corpus (the generator's validation corpus folder)")
        return kept(corpus)
    return {name: bench_data.load_dysts(name) for name in bench_data.dysts_systems(training=False)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.universe_eval", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="checkpoint names or paths")
    parser.add_argument("--set", choices=["validation", "held_out"], required=True)
    parser.add_argument("--corpus", help="the validation corpus folder (--set validation)")
    parser.add_argument("--output", required=True, help="CSV of per-system rows (appended)")
    args = parser.parse_args(argv)
    output = Path(args.output)
    done = pd.read_csv(output) if output.exists() else pd.DataFrame(columns=["model"])
    data = trajectories(args.set, args.corpus)
    for model in args.models:
        if model in set(done.model):
            continue
        rows = check(model, data, guard=True)
        done = pd.concat([done, rows], ignore_index=True) if len(done) else rows
        output.parent.mkdir(parents=True, exist_ok=True)
        done.to_csv(output, index=False)
    print(f"{args.set}: {len(data)} systems")
    print(summary(done[done.model.isin(args.models)]).to_string())


if __name__ == "__main__":
    main()
