"""Property-based checks (hypothesis): random shapes, lengths, dtypes, scales, offsets, NaN placement,
options and corrupted files through ``forecast``, both adapters and ``load_model``.

Every case must end in one of: a finite forecast of the right shape within reach of its context; a
non-finite or far-off forecast together with a ``DivergenceWarning``; or a clear ``ValueError`` /
``TypeError`` (``CheckpointNotFoundError`` for missing files). Anything else is a crash, silent garbage,
a hang (each case has a time limit) or a memory blow-up (forecasts that do not fit are refused up front;
generated inputs are small, so a large allocation shows up as a refusal, never as an attempt).
Set ``DYNAMIX_PROPERTY_REPORT=path`` to write the outcome counts as JSON.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamix_forecasting import CheckpointNotFoundError, DivergenceWarning, DynaMix, DynaMixPipeline, load_model
from dynamix_forecasting.checkpoint import BUNDLED_DIR
from dynamix_forecasting.memory import ForecastTooLargeError

OUTCOMES: Counter[str] = Counter()
ERRORS: Counter[str] = Counter()
#: Seconds one case may take before it counts as a hang. The far horizon below (10^6 steps, predict and
#: predict_interval of the sktime adapter, up to 8 sample paths) takes about 15 s on two busy cores; a hang
#: takes forever. (10^7 steps of 8 paths is 70-100 s of legitimate work there, so it is not a hang test.)
CASE_LIMIT = 60.0


PROFILE = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
CLEAR_ERRORS = (ValueError, TypeError)
#: sktime's base class answers an in-sample fh of a forecaster without in-sample predictions this way.
SKTIME_IN_SAMPLE = "can not perform in-sample prediction"

PIPELINE = DynaMixPipeline(DynaMix.random({"M": 10, "N": 3, "Experts": 3, "P": 2}, seed=1))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("DYNAMIX_PROPERTY_REPORT")
    if path:
        report = {"outcomes": dict(OUTCOMES), "errors": dict(ERRORS.most_common(40))}
        Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def _run(kind: str, call, check) -> None:
    """Run one case, classify its outcome and fail on anything but a correct result or a clear error."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except ForecastTooLargeError:
            OUTCOMES[f"{kind}: refused (memory)"] += 1
            assert time.perf_counter() - start < CASE_LIMIT, "hang before a refusal"
            return
        except (*CLEAR_ERRORS, CheckpointNotFoundError) as exc:
            OUTCOMES[f"{kind}: clear error"] += 1
            if os.environ.get("DYNAMIX_PROPERTY_ERRORS"):
                ERRORS[f"{kind}: {type(exc).__name__}: {str(exc)[:70]}"] += 1
            assert str(exc), f"an error without a message: {type(exc).__name__}"
            assert time.perf_counter() - start < CASE_LIMIT, "hang before an error"
            return
        except NotImplementedError as exc:
            if kind == "sktime" and SKTIME_IN_SAMPLE in str(exc):
                OUTCOMES[f"{kind}: clear error"] += 1
                return
            OUTCOMES[f"{kind}: CRASH"] += 1
            raise AssertionError(f"crash: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            OUTCOMES[f"{kind}: CRASH"] += 1
            raise AssertionError(f"crash: {type(exc).__name__}: {exc}") from exc
    elapsed = time.perf_counter() - start
    if elapsed > CASE_LIMIT:
        OUTCOMES[f"{kind}: HANG"] += 1
        raise AssertionError(f"case took {elapsed:.1f} s")
    warned = any(issubclass(w.category, DivergenceWarning) for w in caught)
    ok = check(result, warned)
    if not ok:
        OUTCOMES[f"{kind}: SILENT GARBAGE"] += 1
        raise AssertionError("a result that is neither right nor warned about")
    OUTCOMES[f"{kind}: {'warned' if warned else 'finite result'}"] += 1


# --------------------------------------------------------------------------- forecast
def _mostly(good, bad):
    """Valid values five times in six, so that most cases reach the rollout."""
    return st.integers(0, 5).flatmap(lambda i: bad if i == 0 else good)


@st.composite
def contexts(draw):
    layout = draw(st.sampled_from(["1d", "2d", "3d", "list", "pandas", "torch"]))
    channels = draw(st.integers(1, 5))
    length = draw(_mostly(st.integers(3, 70), st.integers(1, 2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["noise", "walk", "sine", "constant", "spiky", "integers"]))

    def series(t: int) -> np.ndarray:
        if kind == "noise":
            x = rng.standard_normal((t, channels))
        elif kind == "walk":
            x = rng.standard_normal((t, channels)).cumsum(0)
        elif kind == "sine":
            x = np.sin(np.arange(t)[:, None] / rng.uniform(0.5, 10) + rng.uniform(0, 6, channels))
        elif kind == "constant":
            x = np.full((t, channels), rng.standard_normal())
        elif kind == "spiky":
            x = rng.standard_normal((t, channels)) ** 9
        else:
            x = rng.integers(-3, 4, (t, channels)).astype(float)
        scale = 10.0 ** draw(st.floats(-30, 30))
        offset = draw(st.sampled_from([0.0, 1.0, -1e6, 1e8, 1e12]))
        return x * scale + offset

    if layout == "list":
        out: object = [
            series(draw(_mostly(st.integers(12, 70), st.integers(1, 11)))) for _ in range(draw(st.integers(1, 3)))
        ]
        arrays = out
    else:
        x = series(length)
        if layout == "3d":
            x = np.stack([x] + [series(length) for _ in range(draw(st.integers(0, 2)))], axis=1)
        if layout == "1d":
            x = x[:, 0]
        arrays = [x]
        out = x
        if layout == "pandas":
            index = draw(st.sampled_from(["range", "daily", "shuffled", "reversed"]))
            idx = pd.RangeIndex(length) if index == "range" else pd.date_range("2020-01-01", periods=length, freq="D")
            frame = pd.DataFrame(x, index=idx)
            out = (
                frame.sample(frac=1.0, random_state=0)
                if index == "shuffled"
                else frame.iloc[::-1]
                if index == "reversed"
                else frame
            )
        elif layout == "torch":
            out = torch.tensor(x, dtype=draw(st.sampled_from([torch.float32, torch.float64])))
    dtype = draw(st.sampled_from([None, np.float32, np.float16, np.int64]))
    if dtype is not None and layout not in ("pandas", "torch", "list"):
        with np.errstate(all="ignore"):
            out = np.asarray(out).astype(dtype)
        arrays = [out]
    if draw(st.booleans()) and layout not in ("list",) and draw(st.integers(0, 4)) == 0:
        bad = np.asarray(out, dtype=np.float64).copy()
        flat = bad.reshape(-1)
        if flat.size:
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        out, arrays = bad, [bad]
    return out, arrays


options = st.fixed_dictionaries(
    {},
    optional={
        "preprocessing_method": _mostly(
            st.sampled_from(["pos_embedding", "delay_embedding", "delay_embedding_random", "zero_embedding"]),
            st.just("bogus"),
        ),
        "standardize": _mostly(st.booleans(), st.sampled_from(["yes", None])),
        "fit_nonstationary": st.booleans(),
        "num_samples": _mostly(st.integers(1, 3), st.sampled_from([0, -1, 2.5, 10**8])),
        "seed": _mostly(st.one_of(st.none(), st.integers(0, 2**40)), st.sampled_from([-1, 1.5, "x"])),
        "noise": _mostly(st.booleans(), st.sampled_from(["no", 0])),
        "divergence_guard": _mostly(
            st.one_of(st.none(), st.floats(0.5, 50)), st.sampled_from([0.0, -1.0, "abc", np.nan])
        ),
        "batch_size": _mostly(st.one_of(st.none(), st.integers(1, 4), st.just(np.int64(2))), st.sampled_from([0, 1.5])),
        "backend": _mostly(st.sampled_from(["auto", "torch", "numba"]), st.just("gpu")),
        "initial_x": st.one_of(st.none(), st.none(), st.lists(st.floats(-3, 3), min_size=1, max_size=5)),
    },
)


def _within_reach(result, arrays, warned: bool, standardize: bool) -> bool:
    values = np.asarray(result.detach().cpu() if isinstance(result, torch.Tensor) else result, dtype=np.float64)
    if warned:
        return True  # non-finite or far off is allowed, but only with the warning
    if not np.isfinite(values).all():
        return False
    context = np.concatenate([np.asarray(a, dtype=np.float64).reshape(np.shape(a)[0], -1).ravel() for a in arrays])
    centre = context.mean()
    reach = np.abs(context - centre).max()
    # Without a warning a forecast stays within a few tens of context ranges (the divergence check is at
    # 10x in standardized units; un-standardized forecasts are checked in raw units).
    limit = 25 * reach + 1e-6 * (abs(centre) + 1) + (0 if standardize else 25 * (np.abs(context).max() + 1))
    return bool(np.abs(values - centre).max() <= limit)


@settings(PROFILE, max_examples=1500)
@given(data=contexts(), horizon=_mostly(st.integers(1, 40), st.sampled_from([0, -3, 10**10])), opts=options)
def test_forecast_ends_in_a_result_or_a_clear_error(data, horizon, opts):
    context, arrays = data

    def call():
        return PIPELINE.forecast(context, horizon, **opts)

    def check(result, warned):
        n = opts.get("num_samples", 1)
        if isinstance(result, torch.Tensor) != isinstance(context, torch.Tensor):
            return False
        lead = (n,) if n > 1 else ()
        if np.shape(result)[: len(lead) + 1] != (*lead, horizon):
            return False
        return _within_reach(result, arrays, warned, opts.get("standardize", True))

    _run("forecast", call, check)


# --------------------------------------------------------------------------- adapters
TINY = {"M": 8, "N": 3, "Experts": 2, "P": 1}


@st.composite
def pandas_series(draw):
    length = draw(_mostly(st.integers(12, 60), st.integers(1, 11)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.standard_normal((length, draw(st.integers(1, 4)))).cumsum(0) * 10.0 ** draw(st.floats(-20, 20))
    values += draw(st.sampled_from([0.0, 1e9]))
    if draw(st.integers(0, 5)) == 0 and values.size:
        values.reshape(-1)[draw(st.integers(0, values.size - 1))] = np.nan
    kind = draw(_mostly(st.sampled_from(["range", "monthly", "daily"]), st.just("irregular")))
    if kind == "range":
        index = pd.RangeIndex(length)
    elif kind == "monthly":
        index = pd.period_range("2000-01", periods=length, freq="M")
    elif kind == "daily":
        index = pd.date_range("2000-01-01", periods=length, freq="D")
    else:
        index = pd.DatetimeIndex(
            pd.Timestamp("2000-01-01")
            + pd.to_timedelta(np.sort(rng.choice(10 * length + 1, length, replace=False)), "D")
        )
    return pd.DataFrame(values, index=index, columns=[f"c{i}" for i in range(values.shape[1])])


@settings(PROFILE, max_examples=200)
@given(
    y=pandas_series(),
    fh=_mostly(st.lists(st.integers(1, 30), min_size=1, max_size=4), st.sampled_from([[0], [-2], [10**6]])),
    num_samples=_mostly(st.integers(1, 8), st.sampled_from([0, 2.5])),
    method=_mostly(st.sampled_from(["pos_embedding", "zero_embedding", "delay_embedding"]), st.just("bad")),
    context_length=_mostly(st.one_of(st.none(), st.integers(12, 80)), st.integers(1, 11)),
)
def test_sktime_adapter_ends_in_a_result_or_a_clear_error(y, fh, num_samples, method, context_length):
    from dynamix_forecasting.sktime import DynaMixForecaster

    def call():
        forecaster = DynaMixForecaster(mode="dynamics",
            model=TINY, num_samples=num_samples, preprocessing_method=method, context_length=context_length,
            random_state=0,
        )  # fmt: skip
        forecaster.fit(y)
        return forecaster.predict(fh=fh), forecaster.predict_interval(fh=fh, coverage=0.8)

    def check(result, warned):
        point, interval = result
        if point.shape != (len(set(fh)), y.shape[1]):
            return False
        return _within_reach(point.to_numpy(), [y.to_numpy()], warned, True) and _within_reach(
            interval.to_numpy(), [y.to_numpy()], warned, True
        )

    _run("sktime", call, check)


@settings(PROFILE, max_examples=200)
@given(
    y=pandas_series(),
    n=_mostly(st.integers(1, 30), st.sampled_from([0, -1])),
    num_samples=_mostly(st.integers(1, 6), st.just(0)),
)
def test_darts_adapter_ends_in_a_result_or_a_clear_error(y, n, num_samples):
    from darts import TimeSeries

    from dynamix_forecasting.darts import DynaMixModel

    def call():
        frame = y if not isinstance(y.index, pd.PeriodIndex) else y.set_axis(y.index.to_timestamp())
        series = (
            TimeSeries.from_dataframe(frame)
            if not isinstance(frame.index, pd.RangeIndex)
            else TimeSeries.from_values(frame.to_numpy())
        )
        return DynaMixModel(mode="dynamics", model=TINY, random_state=0).fit(series).predict(n, num_samples=num_samples)

    def check(result, warned):
        values = result.all_values()
        return values.shape[0] == n and _within_reach(values, [y.to_numpy()], warned, True)

    _run("darts", call, check)


# --------------------------------------------------------------------------- corrupted checkpoints
WEIGHT_BYTES = (BUNDLED_DIR / "dynamix-3d-alrnn-v1.0.safetensors").read_bytes()
CONFIG_TEXT = (BUNDLED_DIR / "config_3d-alrnn-v1.0.json").read_text()


def _load_and_forecast(path: Path):
    model = load_model(path)
    return DynaMixPipeline(model).forecast(np.sin(np.arange(100) / 5.0), 20, seed=0)


def _finite_or_warned(result, warned):
    return warned or bool(np.isfinite(result).all())


@settings(PROFILE, max_examples=200)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(WEIGHT_BYTES) - 1), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, len(WEIGHT_BYTES))),
)
def test_corrupted_safetensors_load_or_fail_clearly(tmp_path_factory, edits, cut):
    folder = tmp_path_factory.mktemp("st")
    raw = bytearray(WEIGHT_BYTES)
    for pos, value in edits:
        raw[pos] = value
    if cut is not None:
        raw = raw[:cut]
    (folder / "dynamix-c.safetensors").write_bytes(bytes(raw))
    (folder / "config_c.json").write_text(CONFIG_TEXT)
    _run("load_model safetensors", lambda: _load_and_forecast(folder / "dynamix-c.safetensors"), _finite_or_warned)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


@settings(PROFILE, max_examples=200)
@given(
    changes=st.dictionaries(
        st.sampled_from(["M", "N", "Experts", "P", "hidden_dim", "expert_type", "probabilistic_expert", "extra"]),
        json_values | st.sampled_from([0, 1, 2, 3, 30, 4000, 10**6]),
        max_size=3,
    ),
    drop=st.lists(st.sampled_from(["M", "N", "Experts", "P"]), max_size=2),
    wrap=st.booleans(),
)
def test_random_configs_load_or_fail_clearly(tmp_path_factory, changes, drop, wrap):
    folder = tmp_path_factory.mktemp("cfg")
    arch = json.loads(CONFIG_TEXT)["architecture"]
    arch.update(changes)
    for key in drop:
        arch.pop(key, None)
    (folder / "dynamix-c.safetensors").write_bytes(WEIGHT_BYTES)
    (folder / "config_c.json").write_text(json.dumps({"architecture": arch} if wrap else arch))

    def check(result, warned):
        # Only the released architecture may load these weights (the changes may restate it).
        released = json.loads(CONFIG_TEXT)["architecture"]
        return _finite_or_warned(result, warned) and all(arch.get(k, released[k]) == v for k, v in released.items())

    _run("load_model config", lambda: _load_and_forecast(folder / "dynamix-c.safetensors"), check)


@settings(PROFILE, max_examples=200)
@given(
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 3000)),
)
def test_corrupted_julia_files_fail_clearly(tmp_path_factory, edits, cut):
    from .test_reliability import tiny_julia_model

    path = tiny_julia_model(tmp_path_factory.mktemp("bson"))
    raw = bytearray(path.read_bytes())
    for pos, value in edits:
        if pos < len(raw):
            raw[pos] = value
    path.write_bytes(bytes(raw if cut is None else raw[:cut]))
    _run("load_model bson", lambda: _load_and_forecast(path), _finite_or_warned)
