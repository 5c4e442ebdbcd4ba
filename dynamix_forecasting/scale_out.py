"""``predict_df`` on pandas, PySpark, Dask and Ray Data frames: whole series per partition, one engine call each.

Each engine first co-locates every series in one partition (Spark ``repartition(n, id)``, Dask
``shuffle(on=id)``, Ray ``repartition(n, keys=[id])``), then runs :func:`~.long_format.forecast_frame` once per
partition with the model shipped as bytes (:class:`~.long_format.ModelPayload`) and built once per worker.
A series' forecast depends only on its own history and the seed (the compiled kernel computes each
series on its own), so the numbers do not depend on the engine, the partitioning or the batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd

from .long_format import FrameSpec, ModelPayload, QuantilePipeline, forecast_frame, output_meta

ENGINES = ("pandas", "spark", "dask", "ray")


def engine_of(df: Any) -> str:
    """Which engine a frame belongs to, by its type (engines are imported only when used)."""
    if isinstance(df, pd.DataFrame):
        return "pandas"
    module = type(df).__module__
    if module.startswith("pyspark.sql"):
        return "spark"
    if module.startswith("dask") and hasattr(df, "map_partitions"):
        return "dask"
    if module.startswith("ray.data"):
        return "ray"
    raise TypeError(
        f"predict_df takes a pandas, PySpark, Dask or Ray Data frame, got {type(df).__module__}.{type(df).__name__}."
    )


def predict_df(
    pipeline: QuantilePipeline,
    df: Any,
    spec: FrameSpec,
    num_partitions: int | None = None,
    whole_series_partitions: bool = False,
) -> Any:
    """Forecast a long-format frame on its own engine; returns the same kind of frame (see the module).

    ``whole_series_partitions=True`` declares that every series already lies in one partition (e.g. a table
    written partitioned or sorted by id, read back by row groups): Spark and Dask then skip the shuffle by id.
    """
    engine = engine_of(df)
    if engine == "pandas":
        return forecast_frame(df, spec, pipeline)
    if num_partitions is not None and (
        isinstance(num_partitions, bool) or not isinstance(num_partitions, int) or num_partitions < 1
    ):
        raise ValueError(f"num_partitions must be a positive int or None, got {num_partitions!r}.")
    payload = ModelPayload.from_pipeline(pipeline)
    if engine == "spark":
        return _spark(df, spec, payload, num_partitions, shuffle=not whole_series_partitions)
    if engine == "dask":
        return _dask(df, spec, payload, num_partitions, shuffle=not whole_series_partitions)
    return _ray(df, spec, payload, num_partitions)


def spark_worker_python(spark: Any) -> str | None:
    """The interpreter a local Spark session's Python workers run (None for a cluster: not checkable here)."""
    import shutil

    master = str(spark.sparkContext.master)
    if not master.startswith("local"):
        return None
    conf = spark.sparkContext.getConf()
    exe = conf.get("spark.pyspark.python", None) or os.environ.get("PYSPARK_PYTHON") or "python3"
    return shutil.which(exe) or exe


def check_spark_workers(spark: Any) -> None:
    """Fail with one clear message when a local session's Python workers cannot import this package and torch.

    Spark starts its workers with ``PYSPARK_PYTHON`` (default ``python3`` on the PATH), often another interpreter
    than the driver's; the forecast would then end in a Java stack trace with ``ModuleNotFoundError``.
    """
    import subprocess
    import sys

    exe = spark_worker_python(spark)
    # Paths compared as written: a virtual environment's python is a link to the base interpreter.
    if exe is None or os.path.abspath(exe) == os.path.abspath(sys.executable) or exe in _CHECKED_WORKERS:
        return
    probe = subprocess.run([exe, "-c", "import torch, dynamix_forecasting"], capture_output=True, text=True)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["it did not start"])[-1]
        raise RuntimeError(
            f"Spark's Python workers run {exe}, which cannot import the package ({reason}). Set "
            "os.environ['PYSPARK_PYTHON'] = sys.executable before creating the SparkSession (or the "
            "spark.pyspark.python setting) so the workers use this interpreter, or install dynamix-forecasting "
            "and torch for that one."
        )
    _CHECKED_WORKERS.add(exe)


_CHECKED_WORKERS: set[str] = set()


def _spark(df: Any, spec: FrameSpec, payload: ModelPayload, num_partitions: int | None, shuffle: bool = True) -> Any:
    from pyspark.sql import types as T

    spec.check_columns(df.columns)
    check_spark_workers(df.sparkSession)
    fields = {f.name: f for f in df.schema.fields}
    schema = T.StructType(
        [
            T.StructField(spec.id_column, fields[spec.id_column].dataType),
            T.StructField(spec.timestamp_column, fields[spec.timestamp_column].dataType),
            T.StructField("predictions", T.DoubleType()),
            *[T.StructField(name, T.DoubleType()) for name in spec.level_columns],
        ]
    )
    if num_partitions is None:
        num_partitions = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions", "8"))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Arrow hands a partition over in record batches; a series may straddle two of them, so the
        # whole partition (whole series, after the repartition by id) is gathered first.
        pieces = list(batches)
        frame = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
        if not frame.empty:
            yield _forecast_partition(frame, spec, payload)

    columns = [spec.id_column, spec.timestamp_column, spec.target]
    selected = df.select(*columns)
    whole = selected.repartition(num_partitions, spec.id_column) if shuffle else selected
    return whole.mapInPandas(run, schema)


def _dask(df: Any, spec: FrameSpec, payload: ModelPayload, num_partitions: int | None, shuffle: bool = True) -> Any:
    spec.check_columns(list(df.columns))
    meta = output_meta(dict(df.dtypes), spec)
    columns = [spec.id_column, spec.timestamp_column, spec.target]
    whole = (
        df[columns].shuffle(on=spec.id_column, npartitions=num_partitions or df.npartitions) if shuffle else df[columns]
    )
    return whole.map_partitions(_forecast_partition, spec, payload, meta=meta)


def _forecast_partition(frame: pd.DataFrame, spec: FrameSpec, payload: ModelPayload) -> pd.DataFrame:
    """One partition on a worker: the engine runs one task per core, so torch and the kernel (which takes
    torch's thread count) use one thread each; their default of all cores oversubscribes them (measured at
    200,000 series on 2 cores: each worker's forecast 12.3 s with two threads, against 7.3 s direct)."""
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    return forecast_frame(frame, spec, payload.pipeline())


def _ray(ds: Any, spec: FrameSpec, payload: ModelPayload, num_partitions: int | None) -> Any:
    import ray

    spec.check_columns(ds.columns())
    if num_partitions is None:
        num_partitions = max(1, int(ray.cluster_resources().get("CPU", 1)))
    columns = [spec.id_column, spec.timestamp_column, spec.target]
    whole = ds.select_columns(columns).repartition(num_partitions, keys=[spec.id_column])
    # batch_size=None: each call gets a whole block, i.e. whole series.
    return whole.map_batches(_forecast_partition, fn_args=(spec, payload), batch_size=None, batch_format="pandas")
