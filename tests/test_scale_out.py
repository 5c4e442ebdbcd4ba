"""predict_df on pandas and on local Spark, Dask and Ray: same numbers, whole series, clear errors."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from dynamix_forecasting import DynaMixPipeline
from dynamix_forecasting.long_format import ModelPayload
from dynamix_forecasting.scale_out import engine_of

LEVELS = ["predictions", "0.1", "0.5", "0.9"]


@pytest.fixture(scope="module")
def pipe() -> DynaMixPipeline:
    return DynaMixPipeline.from_pretrained()


@pytest.fixture(scope="module")
def long_df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(24):
        n = 40 + 3 * i  # unequal lengths
        t = np.arange(n)
        y = 50 + 8 * np.sin(2 * np.pi * t / 12) + 0.1 * i * t + rng.normal(0, 1, n)
        frames.append(
            pd.DataFrame(
                {"unique_id": f"item_{i:02d}", "ds": pd.date_range("2015-01-01", periods=n, freq="MS"), "y": y}
            )
        )
    df = pd.concat(frames, ignore_index=True)
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows in any order


@pytest.fixture(scope="module")
def expected(pipe, long_df) -> pd.DataFrame:
    return _sorted(pipe.predict_df(long_df, 6, season_length=12))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["unique_id", "ds"]).reset_index(drop=True)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows and numbers. Not asserted bit for bit: the workers run with their own torch thread count
    (an earlier test in this process may have changed ours), which can move the last float32 bit of the
    initial state; measured differences are about 1e-9 relative."""
    assert list(got.columns) == list(want.columns)
    assert (got["unique_id"].astype(str).to_numpy() == want["unique_id"].astype(str).to_numpy()).all()
    assert (pd.to_datetime(got["ds"]).to_numpy() == want["ds"].to_numpy()).all()
    np.testing.assert_allclose(got[LEVELS].to_numpy(dtype=np.float64), want[LEVELS].to_numpy(), rtol=1e-6, atol=0)


def test_pandas_output_matches_the_direct_forecast(pipe, long_df, expected):
    assert list(expected.columns) == ["unique_id", "ds", "predictions", *[f"{q:g}" for q in np.arange(1, 10) / 10]]
    assert expected.groupby("unique_id").size().eq(6).all() and not expected.duplicated(["unique_id", "ds"]).any()
    one = long_df[long_df.unique_id == "item_05"].sort_values("ds")
    q, point = pipe.predict_quantiles(one["y"].to_numpy(), 6, [0.1, 0.5, 0.9], mode="time_series", season_length=12)
    rows = expected[expected.unique_id == "item_05"]
    np.testing.assert_array_equal(rows["predictions"].to_numpy(), point)
    np.testing.assert_array_equal(rows[["0.1", "0.5", "0.9"]].to_numpy(), q)  # quantiles on the last axis
    last = one["ds"].max()
    assert list(rows["ds"]) == list(pd.date_range(last, periods=7, freq="MS")[1:])


def test_sorted_input_takes_the_no_sort_path_with_the_same_numbers(pipe, long_df, expected):
    from dynamix_forecasting.long_format import _already_ordered

    ordered = _sorted(long_df)
    assert _already_ordered(ordered["unique_id"], ordered["ds"])
    assert not _already_ordered(long_df["unique_id"], long_df["ds"])
    swapped = ordered.copy()
    swapped.loc[[1, 2], "ds"] = swapped.loc[[2, 1], "ds"].to_numpy()  # one series' stamps out of order
    assert not _already_ordered(swapped["unique_id"], swapped["ds"])
    pd.testing.assert_frame_equal(pipe.predict_df(ordered, 6, season_length=12), expected)


def test_integer_time_stamps_and_dynamics_mode(pipe):
    df = pd.DataFrame(
        {"id": np.repeat([7, 8], 50), "t": np.tile(np.arange(0, 100, 2), 2), "value": np.sin(np.arange(100) / 3)}
    )
    out = pipe.predict_df(
        df,
        4,
        id_column="id",
        timestamp_column="t",
        target="value",
        mode="dynamics",
        quantile_levels=[0.25, 0.75],
        num_samples=10,
    )
    assert list(out.columns) == ["id", "t", "predictions", "0.25", "0.75"]
    assert out[out.id == 7]["t"].tolist() == [100, 102, 104, 106]
    assert (out["0.25"] <= out["0.75"]).all()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.drop(columns="y"), r"no column\(s\) \['y'\]"),
        (lambda d: d.assign(y=d.y.where(d.index != 3)), "missing, non-numeric or infinite"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "duplicated time stamps"),
        (lambda d: d.assign(ds=d.ds.where(d.index != 3, pd.Timestamp("1999-01-07"))), "irregular"),
        (lambda d: d.assign(ds=d.ds.astype(str)), "datetimes or integers"),
    ],
)
def test_bad_frames_get_clear_errors(pipe, long_df, change, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pipe.predict_df(change(long_df.copy()), 3, season_length=12)


def test_unknown_frame_types_and_options_are_refused(pipe, long_df):
    with pytest.raises(TypeError, match="pandas, PySpark, Dask or Ray"):
        pipe.predict_df(long_df.to_dict(), 3)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pipe.predict_df(long_df, 3, quantile_levels=[0.5, 1.0])
    with pytest.raises(ValueError, match="horizon"):
        pipe.predict_df(long_df, 0)


def test_payload_rebuilds_the_same_model(pipe):
    payload = ModelPayload.from_pipeline(pipe)
    assert len(payload.weights) < 100_000
    rebuilt = payload.pipeline()
    assert rebuilt is payload.pipeline()  # built once per process
    for name, tensor in pipe.model.state_dict().items():
        assert np.array_equal(tensor.numpy(), rebuilt.model.state_dict()[name].numpy())


def test_spark_local_any_partitioning(pipe, long_df, expected):
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need this interpreter (torch, the package)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        sdf = spark.createDataFrame(long_df)
        assert engine_of(sdf) == "spark"
        for n in (1, 4):
            out = pipe.predict_df(sdf, 6, season_length=12, num_partitions=n)
            assert out.columns == list(expected.columns)
            _assert_same(_sorted(out.toPandas()), expected)
        with pytest.raises(ValueError, match="no column"):
            pipe.predict_df(sdf.drop("y"), 6)
    finally:
        spark.stop()


def test_dask_local_cluster(pipe, long_df, expected):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        ddf = dd.from_pandas(long_df, npartitions=5)  # series split across input partitions
        assert engine_of(ddf) == "dask"
        _assert_same(_sorted(pipe.predict_df(ddf, 6, season_length=12, num_partitions=3).compute()), expected)


def test_ray_data_local(pipe, long_df, expected):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        ds = ray.data.from_pandas(long_df).repartition(5)
        assert engine_of(ds) == "ray"
        _assert_same(_sorted(pipe.predict_df(ds, 6, season_length=12).to_pandas()), expected)
    finally:
        ray.shutdown()


def test_whole_series_partitions_skips_the_shuffle_on_dask(pipe, long_df, expected):
    import dask.dataframe as dd

    ordered = long_df.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    # Partition boundaries on series boundaries: every series lies in one partition.
    ddf = dd.from_pandas(ordered.set_index("unique_id"), npartitions=4, sort=True).reset_index()
    out = pipe.predict_df(ddf, 6, season_length=12, whole_series_partitions=True).compute()
    _assert_same(_sorted(out), expected)


def test_spark_workers_that_cannot_import_the_package_get_one_clear_error(tmp_path):
    """A local session whose workers run an interpreter without the package and torch (here a fresh virtual
    environment) is refused before any job, with the fix, instead of a Java stack trace."""
    import subprocess
    import types

    from dynamix_forecasting.scale_out import check_spark_workers

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    conf = types.SimpleNamespace(get=lambda key, default=None: bare if key == "spark.pyspark.python" else default)
    session = types.SimpleNamespace(sparkContext=types.SimpleNamespace(master="local[2]", getConf=lambda: conf))
    with pytest.raises(RuntimeError, match=r"PYSPARK_PYTHON.*sys.executable"):
        check_spark_workers(session)
    conf_ok = types.SimpleNamespace(
        get=lambda key, default=None: sys.executable if key == "spark.pyspark.python" else default
    )
    check_spark_workers(
        types.SimpleNamespace(sparkContext=types.SimpleNamespace(master="local[2]", getConf=lambda: conf_ok))
    )
