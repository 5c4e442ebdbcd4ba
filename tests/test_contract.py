"""One options object, one contract at every entry point, the pipeline in parts, and the package's own errors."""

from __future__ import annotations

import ast
import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dynamix_forecasting import DynaMix, DynaMixPipeline, ForecastOptions, load_model, quantiles
from dynamix_forecasting.options import DYNAMICS_ONLY, check_levels
from dynamix_forecasting.seasonality import estimate_season_length
from dynamix_forecasting.training.data import TRAINING_SYSTEMS, published_systems

from .conftest import DYSTS, MODEL_FILE, _require

PACKAGE = Path(__file__).resolve().parents[1] / "dynamix_forecasting"


def _seasonal(n: int = 120, period: int = 12) -> np.ndarray:
    t = np.arange(n)
    return 50 + 10 * np.sin(2 * np.pi * t / period) + 0.2 * t + np.random.default_rng(0).normal(0, 1, n)


# --------------------------------------------------------------------------- the options object


def test_options_are_checked_once_with_clear_errors():
    assert ForecastOptions() == ForecastOptions(mode="auto", seed=0)
    with pytest.raises(TypeError, match=r"Unknown forecast option\(s\) \['horizon_len'\]"):
        ForecastOptions.of(horizon_len=3)
    with pytest.raises(ValueError, match="Unknown mode 'ts'"):
        ForecastOptions(mode="ts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown preprocessing_method"):
        ForecastOptions(preprocessing_method="pca")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="num_samples must be a positive int"):
        ForecastOptions(num_samples=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="noise must be True or False"):
        ForecastOptions(noise="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="belongs to mode='dynamics'"):
        ForecastOptions(mode="time_series", standardize=False)
    with pytest.raises(ValueError, match="initial_x cannot be combined"):
        ForecastOptions(initial_x=[1.0], fit_nonstationary=True)
    options = ForecastOptions(season_length=[12, np.int64(24)], initial_x=np.zeros(3))
    assert options.season_length == (12, 24) and options.replace(seed=3).seed == 3
    assert options == ForecastOptions(season_length=(12, 24), initial_x=[0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="options must be a ForecastOptions"):
        ForecastOptions.of({"mode": "dynamics"})  # type: ignore[arg-type]


def test_the_default_mode_rule_lives_in_one_place():
    auto = ForecastOptions()
    assert auto.resolve(1).mode == "time_series" and auto.resolve(3).mode == "dynamics"
    for name in DYNAMICS_ONLY:
        value = [0.0] if name == "initial_x" else ("zero_embedding" if name == "preprocessing_method" else False)
        assert ForecastOptions(**{name: value}).resolve(1).mode == "dynamics", name
    assert ForecastOptions(interval_scale=1.2).resolve(3).mode == "time_series"
    assert ForecastOptions(mode="dynamics").resolve(1).mode == "dynamics"


def test_quantile_levels_have_one_rule():
    assert check_levels([0.1, 0.9]) == (0.1, 0.9)
    for bad in ([0.0, 0.5], [1.0], [], [[0.1]]):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            check_levels(bad)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        quantiles(np.zeros((5, 3)), [0.5, 1.0])


# --------------------------------------------------------------------------- one contract


def test_every_entry_point_has_the_same_defaults():
    from dynamix_forecasting.app import run_forecast
    from dynamix_forecasting.cli import build_parser
    from dynamix_forecasting.darts import DynaMixModel
    from dynamix_forecasting.sktime import DynaMixForecaster

    for cls in (DynaMixForecaster, DynaMixModel):
        params = inspect.signature(cls.__init__).parameters
        assert params["mode"].default == "auto", cls
        for name in ("preprocessing_method", "standardize", "fit_nonstationary", "noise"):
            assert params[name].default is None, (cls, name)  # not set: the mode's published default
    assert inspect.signature(run_forecast).parameters["mode"].default == "auto"
    args = build_parser().parse_args(["forecast", "x.csv", "--horizon", "3"])
    assert args.mode == "auto" and args.seed == 0 and args.preprocessing is None
    assert ForecastOptions().seed == 0 and ForecastOptions().mode == "auto"
    for method in ("forecast", "sample_paths", "expert_weights", "predict_quantiles", "predict_df"):
        params = inspect.signature(getattr(DynaMixPipeline, method)).parameters
        assert "options" in params and "horizon" in params, method


def test_quantiles_sit_on_the_last_axis_everywhere(pipeline, lorenz):
    q, point = pipeline.predict_quantiles(lorenz[:300], 5, [0.1, 0.5, 0.9], num_samples=20)
    assert q.shape == (5, 3, 3) and point.shape == (5, 3)
    np.testing.assert_allclose(q[..., 1], point)
    qs, ps = pipeline.predict_quantiles(_seasonal(), 6, [0.25, 0.75])
    assert qs.shape == (6, 2) and ps.shape == (6,) and np.all(qs[:, 0] < qs[:, 1])
    paths = pipeline.forecast(lorenz[:300], 5, num_samples=20)
    np.testing.assert_allclose(quantiles(paths, [0.1, 0.5, 0.9]), q)


def test_options_object_and_keywords_are_the_same_call(pipeline):
    y = _seasonal()
    options = ForecastOptions(mode="time_series", season_length=12)
    np.testing.assert_array_equal(pipeline.forecast(y, 6, options), pipeline.forecast(y, 6, season_length=12))
    np.testing.assert_array_equal(
        pipeline.forecast(y, 6, options, context_length=48), pipeline.forecast(y[-48:], 6, options)
    )


# --------------------------------------------------------------------------- the three bugs


def test_time_series_mode_runs_models_the_fast_kernels_do_not_cover():
    model = DynaMix.random({"M": 8, "N": 3, "Experts": 2, "P": 1, "expert_type": "clipped_shallow_plrnn"}, seed=0)
    out = DynaMixPipeline(model).forecast(_seasonal(), 6, season_length=12)
    assert out.shape == (6,) and np.isfinite(out).all()


def test_an_array_initial_x_gets_the_modes_rule_not_numpys(pipeline):
    y = _seasonal()
    with pytest.raises(ValueError, match=r"initial_x=.*belongs to mode='dynamics'"):
        pipeline.forecast(y, 6, mode="time_series", initial_x=np.array([50.0]))
    out = pipeline.forecast(y, 6, initial_x=np.array([50.0]), noise=False)  # auto: an initial state is dynamics
    assert out.shape == (6,) and np.isfinite(out).all()


def test_mixed_season_lengths_are_forecast_per_group(pipeline):
    a, b = _seasonal(120, 12), _seasonal(96, 4)
    both = pipeline.forecast([a, b], 6, season_length=[12, 4])
    alone = [pipeline.forecast(a, 6, season_length=12), pipeline.forecast(b, 6, season_length=4)]
    np.testing.assert_array_equal(both[:, 0, 0], alone[0])
    np.testing.assert_array_equal(both[:, 1, 0], alone[1])


def test_time_series_forecasts_are_the_same_bits_in_any_batch(pipeline):
    series = [_seasonal(60 + 7 * i) for i in range(9)]
    batch = pipeline.forecast(series, 8, season_length=12)
    for i in (0, 4, 8):
        np.testing.assert_array_equal(batch[:, i, 0], pipeline.forecast(series[i], 8, season_length=12))


# --------------------------------------------------------------------------- seasons from the data


def test_season_is_estimated_from_the_history_where_none_is_given(pipeline):
    rng = np.random.default_rng(0)
    t = np.arange(320)
    y = 10 + 2 * np.sin(2 * np.pi * t / 20) + rng.normal(0, 0.7, t.size)
    assert estimate_season_length(y[:300]) == 20 and pipeline.season_lengths(y[:300]) == [20]
    rmse = np.sqrt(np.mean((pipeline.forecast(y[:300], 20) - y[300:]) ** 2))
    snaive = np.sqrt(np.mean((y[280:300] - y[300:]) ** 2))
    assert rmse < snaive  # was a flat line (RMSE 2.3) before the season was estimated
    noise_found = [estimate_season_length(rng.normal(size=200)) > 1 for _ in range(100)]
    assert np.mean(noise_found) <= 0.1  # white noise rarely shows a season
    assert estimate_season_length(np.full(50, 3.0)) == 1 and estimate_season_length(np.arange(5.0)) == 1


def test_sktime_on_a_range_index_finds_the_airline_season():
    from sktime.datasets import load_airline

    from dynamix_forecasting.sktime import DynaMixForecaster

    y = load_airline()
    train, test = y.iloc[:-24], y.iloc[-24:].to_numpy()
    by_month = DynaMixForecaster().fit(train).predict(np.arange(1, 25)).to_numpy()
    by_range = DynaMixForecaster().fit(train.reset_index(drop=True))
    assert by_range.season_lengths_ == [12]
    np.testing.assert_allclose(by_range.predict(np.arange(1, 25)).to_numpy(), by_month)
    assert np.mean(np.abs(by_month - test) / test) < 0.14  # MAPE; 16.5 % on a RangeIndex before


# --------------------------------------------------------------------------- the package's own errors


def test_foreign_errors_become_the_packages_own(pipeline, tmp_path):
    with pytest.raises(ValueError, match="meta device"):
        pipeline.forecast(torch.empty(50, 3, device="meta"), 3)
    half = quantiles(torch.randn(20, 4, dtype=torch.float16), [0.1, 0.9])
    assert half.dtype == torch.float16 and half.shape == (4, 2)
    with pytest.raises(ValueError, match="axis=5 is out of range"):
        quantiles(np.zeros((5, 3)), 0.5, axis=5)
    with pytest.raises(ValueError, match="characters long"):
        load_model("x" * 5000)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            load_model(MODEL_FILE, device="cuda")
    (tmp_path / "dynamix-deep.safetensors").write_bytes(MODEL_FILE.read_bytes())
    (tmp_path / "config_deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"deep|larger than"):
        load_model(tmp_path / "dynamix-deep.safetensors")


# --------------------------------------------------------------------------- new users: training


def test_training_systems_are_known_without_stored_data(monkeypatch):
    monkeypatch.delenv("DYNAMIX_DYSTS_DIR", raising=False)
    assert published_systems() == list(TRAINING_SYSTEMS) and len(TRAINING_SYSTEMS) == 30
    _require(DYSTS / "index.json")
    index = json.loads((DYSTS / "index.json").read_text())
    stored = sorted(n for n, i in index.items() if i.get("in_dynamix_training_set") and "error" not in i)
    assert stored == sorted(TRAINING_SYSTEMS)


# --------------------------------------------------------------------------- the layout


def _imports() -> dict[str, set[str]]:
    """Every module's imports of other package modules, function-level ones included."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for candidate in [target, *(f"{target}.{a.name}" for a in node.names)]:
                    if candidate in modules and candidate != name and not modules[candidate].name == "__init__.py":
                        edges[name].add(candidate)
    return edges


def test_no_import_cycles_and_small_modules():
    edges = _imports()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*stack[stack.index(nxt) :], nxt])}")
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in edges:
        if module not in state:
            visit(module, [module])
    assert "dynamix_forecasting.pipeline" not in edges["dynamix_forecasting.long_format"]
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 500, {k: v for k, v in sizes.items() if v > 500}


def test_predict_df_uses_the_same_options(pipeline):
    frame = pd.DataFrame(
        {"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=120, freq="MS"), "y": _seasonal()}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pipeline.predict_df(frame, 6, options=ForecastOptions(season_length=12), quantile_levels=[0.5])
    q, point = pipeline.predict_quantiles(_seasonal(), 6, [0.5], season_length=12)
    np.testing.assert_array_equal(out["predictions"].to_numpy(), point)
    np.testing.assert_array_equal(out["0.5"].to_numpy(), q[:, 0])


# --------------------------------------------------------------------------- the batched time-series mode


_FROZEN_RUN = """
import sys
import numpy as np
from benchmarks.data import load_task, task_specs
from benchmarks.models import fill_missing
from benchmarks.scoring import QUANTILES
from dynamix_forecasting import DynaMixPipeline

pipeline, out = DynaMixPipeline.from_pretrained(), {}
for name in task_specs():
    task = load_task(name, max_series=20)
    q, point = pipeline.predict_quantiles(
        [fill_missing(h) for h in task.histories], task.horizon, QUANTILES, season_length=task.seasonality
    )
    out[f"{name}/point"] = np.asarray(point)[:, :, 0].T
    out[f"{name}/quantiles"] = np.asarray(q)[:, :, 0, :].transpose(1, 0, 2)
np.savez(sys.argv[1], **out)
"""


def test_batched_time_series_mode_reproduces_the_frozen_outputs(pipeline, tmp_path):
    """The time-series mode, batched over all series of a call, gives the frozen outputs of
    ``benchmarks/ts_reference.py`` (20 series of each of the 17 tasks; the series-by-series implementation's
    numbers before the recipe changed on purpose) to float64 rounding.

    Computed in a fresh process once this one has compiled the kernels: the compiled kernel as numba's cache
    holds it rounds a little differently from the copy compiled in the process that compiles it (fast-math
    float32; measured: up to 0.3 of a series' std on nn5's long horizon), and the frozen outputs come from the
    cached kernel. Within one process, a series' forecast is the same bits in any batch (tested above).
    """
    import subprocess
    import sys

    from .conftest import REPO, SHARED

    _require(SHARED / "data" / "chronos-bench" / "tasks.json")
    pipeline.forecast(np.sin(np.arange(60.0) / 3), 2)  # compiles (and caches) every kernel the mode uses
    run = subprocess.run(
        [sys.executable, "-c", _FROZEN_RUN, str(tmp_path / "now.npz")], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    now = np.load(tmp_path / "now.npz")
    reference = np.load(Path(__file__).parent / "data" / "ts_mode_reference.npz")
    for key in now.files:
        name = key.split("/")[0]
        scale = np.abs(reference[f"{name}/point"]).max(axis=1, keepdims=True) + 1e-12
        if key.endswith("quantiles"):
            scale = scale[:, :, None]
        np.testing.assert_allclose(now[key] / scale, reference[key] / scale, atol=1e-9, err_msg=key)


def test_forecasts_do_not_depend_on_torchs_default_dtype(pipeline, lorenz):
    """Another library may set torch's default dtype to float64 (and not set it back): the waves of the positional
    embedding and newly built models stay float32, so forecasts keep their bits."""
    y = _seasonal()
    before = (pipeline.forecast(y, 12, season_length=12), pipeline.forecast(lorenz[:300], 12, noise=False))
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        from dynamix_forecasting.preprocessing import _phases, _waves

        _phases.cache_clear()
        _waves.cache_clear()
        assert next(DynaMix.random({"M": 8, "N": 3, "Experts": 2, "P": 1}).parameters()).dtype == torch.float32
        after = (pipeline.forecast(y, 12, season_length=12), pipeline.forecast(lorenz[:300], 12, noise=False))
    finally:
        torch.set_default_dtype(previous)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
