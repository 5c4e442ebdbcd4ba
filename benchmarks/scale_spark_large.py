"""``python -m benchmarks.scale_spark_large``: one large ``predict_df`` run on Spark local mode, with its wall time
and peak memory.

The input (``--series`` synthetic series x ``--context`` points, as :func:`benchmarks.scale.make_data`) is
written to Parquet in files of ``--chunk`` series, so the driver never holds the whole long frame (1 M x 256
is 256 M rows). Spark reads the folder, ``predict_df`` forecasts ``--horizon`` steps (dynamics mode, one
noise-free path: the kernel's workload, as in :mod:`benchmarks.scale`) and the result is written to Parquet.
Memory is the peak, sampled every 0.2 s, of the summed resident memory of the whole process tree (this
Python driver, Spark's JVM and its Python workers). Writes one CSV row.

Usage::

    python -m benchmarks.scale_spark_large --series 1000000 --output benchmarks/results/scale/spark-1m.csv
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from dynamix_forecasting import DynaMixPipeline

from .scale import make_data


class PeakMemory:
    """Peak summed RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_spark_large", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=50_000, help="series per input file")
    parser.add_argument("--partitions", type=int, default=40, help="partitions of whole series")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--output", default="benchmarks/results/scale/spark-large.csv")
    args = parser.parse_args(argv)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    work = Path(tempfile.mkdtemp(prefix="dynamix-spark-large-"))
    try:
        (work / "input").mkdir()
        start = time.perf_counter()
        for k, first in enumerate(range(0, args.series, args.chunk)):
            n = min(args.chunk, args.series - first)
            frame = make_data(n, args.context, seed=k)
            frame["unique_id"] += first
            frame.to_parquet(work / "input" / f"part-{k:04d}.parquet", row_group_size=args.context * 10_000)
        print(f"wrote {args.series:,} series in {time.perf_counter() - start:.0f} s", flush=True)
        pipe = DynaMixPipeline.from_pretrained()
        options = dict(mode="dynamics", num_samples=1, noise=False, backend="numba", season_length=24)
        spark = (
            SparkSession.builder.master(f"local[{args.cores}]")
            .config("spark.driver.memory", args.driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
            .getOrCreate()
        )
        try:
            with PeakMemory() as memory:
                start = time.perf_counter()
                sdf = spark.read.parquet(str(work / "input"))
                result = pipe.predict_df(
                    sdf, args.horizon, num_partitions=args.partitions, quantile_levels=[0.1, 0.5, 0.9], **options
                )
                result.write.mode("overwrite").parquet(str(work / "output"))
                seconds = time.perf_counter() - start
            rows = spark.read.parquet(str(work / "output")).count()
        finally:
            spark.stop()
        if rows != args.series * args.horizon:
            raise SystemExit(f"expected {args.series * args.horizon:,} output rows, got {rows:,}")
        out = pd.DataFrame(
            [
                {
                    "engine": "spark",
                    "series": args.series,
                    "context": args.context,
                    "horizon": args.horizon,
                    "cores": args.cores,
                    "partitions": args.partitions,
                    "seconds": seconds,
                    "series_per_s": args.series / seconds,
                    "peak_rss_gb": memory.peak / 2**30,
                    "output_rows": rows,
                }
            ]
        )
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(args.output, index=False)
        print(out.to_string(index=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
