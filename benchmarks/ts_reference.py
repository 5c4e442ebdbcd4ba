"""``python -m benchmarks.ts_reference``: freeze the time-series mode's outputs on a sample of the 17 tasks.

Writes ``tests/data/ts_mode_reference.npz``: for the first ``--per-task`` series of every task, the point
forecast and the quantiles at the benchmark's levels, with the revision that made them. The tests read the
histories from ``../shared`` and check that the mode still gives these numbers; a deliberate change of the
recipe regenerates the file (and says so in the commit).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np

from benchmarks.data import load_task, task_specs
from benchmarks.models import fill_missing
from benchmarks.scoring import QUANTILES
from dynamix_forecasting import DynaMixPipeline

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "ts_mode_reference.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-task", type=int, default=20)
    args = parser.parse_args(argv)
    pipeline = DynaMixPipeline.from_pretrained()
    arrays: dict[str, np.ndarray] = {}
    for name in task_specs():
        task = load_task(name, max_series=args.per_task)
        histories = [fill_missing(h) for h in task.histories]
        q, point = pipeline.predict_quantiles(
            histories, task.horizon, QUANTILES, mode="time_series", season_length=task.seasonality
        )
        arrays[f"{name}/point"] = np.asarray(point)[:, :, 0].T  # (S, H)
        arrays[f"{name}/quantiles"] = np.asarray(q)[:, :, 0, :].transpose(1, 0, 2)  # (S, H, Q)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    np.savez_compressed(OUT, revision=np.array(rev), **arrays)
    print(f"wrote {OUT} ({len(arrays) // 2} tasks, revision {rev})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
